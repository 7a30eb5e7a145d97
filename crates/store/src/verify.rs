//! Chain verification: walks the log in global order, recomputes every record's stream hash and
//! global hash from the stored bytes, and reports the first record where the stored log and the
//! chains disagree: a changed byte, a missing or reordered record, or a truncated tail.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::StoreError;
use crate::hash::{self, HashInput, GENESIS};
use crate::record::{Hash, StreamId};
use crate::Store;

/// Records read per page during verification.
const VERIFY_PAGE: usize = 5_000;

/// Where and how a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The position at which the stored log stops matching its chains.
    pub position: u64,
    pub stream_id: Option<String>,
    pub reason: String,
}

/// The result of a verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub from: u64,
    pub to: u64,
    pub checked: u64,
    /// The global hash of the last record checked, hex: keep it somewhere else, and a later
    /// verification proves the log up to there was not rewritten wholesale.
    pub last_global_hash: String,
    pub first_break: Option<ChainBreak>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

pub(crate) async fn verify(
    store: &Store,
    from: u64,
    to: Option<u64>,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<VerifyReport, StoreError> {
    let head = store.log_head().await?;
    let from = from.max(1);
    let to = to.unwrap_or(head.position).min(head.position);
    let total = (to + 1).saturating_sub(from);
    let mut report = VerifyReport {
        from,
        to,
        checked: 0,
        last_global_hash: hash::hex(&GENESIS),
        first_break: None,
    };
    let broken = |position: u64, stream_id: Option<&str>, reason: String| ChainBreak {
        position,
        stream_id: stream_id.map(str::to_owned),
        reason,
    };
    if from > to {
        // An empty range (it starts past the head): nothing to check, nothing broken.
        return Ok(report);
    }
    // The anchor: the stored global hash just before the range (trusted, as the range's start).
    let mut prev_global = GENESIS;
    if from > 1 {
        match store.read_all(from - 2, 1).await?.pop() {
            Some(record) if record.position == from - 1 => prev_global = record.global_hash,
            _ => {
                report.first_break = Some(broken(
                    from - 1,
                    None,
                    format!("position {} is missing", from - 1),
                ));
                return Ok(report);
            }
        }
    }
    report.last_global_hash = hash::hex(&prev_global);
    let mut streams: HashMap<String, (u64, Hash)> = HashMap::new();
    let mut position = from - 1;
    while position < to {
        let records = store.read_all(position, VERIFY_PAGE).await?;
        if records.is_empty() {
            report.first_break = Some(broken(
                position + 1,
                None,
                format!(
                    "the log ends at position {position} but its head says {}",
                    head.position
                ),
            ));
            return Ok(report);
        }
        for record in records {
            if record.position > to {
                break;
            }
            let stream = Some(record.stream_id.as_str());
            if record.position != position + 1 {
                report.first_break = Some(broken(
                    position + 1,
                    None,
                    format!("position {} is missing", position + 1),
                ));
                return Ok(report);
            }
            let (prev_version, prev_stream_hash) = match streams.get(&record.stream_id) {
                Some(prev) => *prev,
                None if record.stream_version <= 1 => (0, GENESIS),
                None => {
                    // The stream began before the range: anchor on its stored previous record.
                    let stream_id = StreamId::new(record.stream_id.clone()).map_err(|error| {
                        StoreError::Corrupt {
                            message: format!("stored stream id: {error}"),
                        }
                    })?;
                    match store
                        .read_stream(&stream_id, record.stream_version - 1, 1)
                        .await?
                        .pop()
                    {
                        Some(prev) if prev.stream_version == record.stream_version - 1 => {
                            (prev.stream_version, prev.stream_hash)
                        }
                        _ => (0, GENESIS),
                    }
                }
            };
            if record.stream_version != prev_version + 1 {
                report.first_break = Some(broken(
                    record.position,
                    stream,
                    format!(
                        "stream version {} follows version {prev_version} of the same stream",
                        record.stream_version
                    ),
                ));
                return Ok(report);
            }
            let stream_hash = hash::stream_hash(
                &prev_stream_hash,
                &HashInput {
                    stream_id: &record.stream_id,
                    stream_version: record.stream_version,
                    event_id: record.event_id,
                    event_type: &record.event_type,
                    schema_version: record.schema_version,
                    recorded_at_micros: record.recorded_at.as_microsecond(),
                    command_id: record.command_id,
                    payload: record.payload.as_bytes(),
                    metadata: record.metadata.as_bytes(),
                },
            );
            if stream_hash != record.stream_hash {
                report.first_break = Some(broken(
                    record.position,
                    stream,
                    "the stream hash does not match the record's contents".to_owned(),
                ));
                return Ok(report);
            }
            let global_hash = hash::global_hash(&prev_global, record.position, &stream_hash);
            if global_hash != record.global_hash {
                report.first_break = Some(broken(
                    record.position,
                    stream,
                    "the global hash does not follow from the previous record".to_owned(),
                ));
                return Ok(report);
            }
            streams.insert(record.stream_id, (record.stream_version, stream_hash));
            prev_global = global_hash;
            position = record.position;
            report.checked += 1;
        }
        progress(report.checked, total);
    }
    report.last_global_hash = hash::hex(&prev_global);
    if to == head.position && to > 0 && prev_global != head.global_hash {
        report.first_break = Some(broken(
            to,
            None,
            "the last record's global hash differs from the log head: the tail was altered"
                .to_owned(),
        ));
    }
    Ok(report)
}
