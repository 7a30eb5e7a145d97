//! The writer's memory of stream heads, for the group commit fast path: a batch whose streams
//! are all new (`NoStream`) or remembered is planned without reading anything but the log head,
//! and the unique indexes on `(stream_id, stream_version)` and on the first event of each command
//! id catch any memory that another writer made stale; the batch is then rolled back and planned
//! again from the database. A fast plan that rejects an append, or answers it as a duplicate, is
//! never trusted either: rejections are decided on what the database says.

use std::collections::HashMap;

use crate::plan::{Append, Known, LogHead, Plan, StreamHead};

/// Most stream heads remembered; past it the memory starts over (it is only a fast path).
pub const STREAM_HEADS_MAX: usize = 100_000;

#[derive(Debug, Default)]
pub(crate) struct StreamHeads {
    heads: HashMap<String, StreamHead>,
    /// The log head as this writer left it. Where the lock does not serialize on reading it
    /// (SQLite: the insert itself takes the write lock), a stale head is caught by the primary
    /// key on positions: any other writer since took the next position.
    pub log_head: Option<LogHead>,
}

impl StreamHeads {
    /// What the memory says about the batch's streams, if it can plan the whole batch.
    pub fn known(&self, appends: &[Append]) -> Option<Known> {
        let mut known = Known::default();
        for append in appends {
            match self.heads.get(append.stream.as_str()) {
                Some(head) => {
                    known.streams.insert(append.stream.to_string(), *head);
                }
                // A new stream needs no memory; the unique index says if it was not new.
                None if append.expected == crate::ExpectedVersion::NoStream => {}
                None => return None,
            }
        }
        Some(known)
    }

    /// Whether a plan made from memory can be written as it is: every append succeeds as new.
    pub fn trusts(plan: &Plan<'_>) -> bool {
        plan.outcomes
            .iter()
            .all(|outcome| matches!(outcome, Ok(outcome) if !outcome.duplicate))
    }

    /// Remembers the heads a committed plan left.
    pub fn learn(&mut self, plan: &Plan<'_>) {
        self.log_head = Some(plan.head);
        if self.heads.len() + plan.rows.len() > STREAM_HEADS_MAX {
            self.heads.clear();
        }
        for row in &plan.rows {
            self.heads.insert(
                row.stream.to_string(),
                StreamHead {
                    version: row.stream_version,
                    stream_hash: row.stream_hash,
                },
            );
        }
    }
}
