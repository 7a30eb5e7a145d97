//! What a write transaction reads before it plans: the log head, the head of every stream in the
//! batch, and the earlier appends of the batch's command ids. Both backends return these as rows
//! of one shape, `(kind, stream_id, command_id, a, hash, b, c)`, decoded here:
//!
//! - `h`: the log head: `a` = position, `hash` = global hash, `b` = recorded_at;
//! - `s`: a stream head: `stream_id`, `a` = version, `hash` = stream hash;
//! - `c`: a committed command: `command_id`, `stream_id`, `a` = stream version after it,
//!   `b` = first position, `c` = last position.

use sqlx::{ColumnIndex, Decode, Row, Type};
use uuid::Uuid;

use crate::error::StoreError;
use crate::plan::{CommittedCommand, Known, LogHead, StreamHead};

/// `(position, global_hash, recorded_at)` of the `log_head` row.
pub(crate) fn decode_head<R>(row: &R) -> Result<LogHead, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(LogHead {
        position: crate::to_u64(row.try_get(0)?)?,
        global_hash: crate::to_hash(row.try_get(1)?)?,
        recorded_at_micros: row.try_get(2)?,
    })
}

/// `(stream_id, stream version after, first position, last position)` of an earlier append, as
/// both backends' `find_command` select it.
pub(crate) fn decode_command<R>(row: &R) -> Result<(String, crate::AppendOutcome), StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let outcome = crate::AppendOutcome {
        stream_version: crate::to_u64(row.try_get(1)?)?,
        first_position: crate::to_u64(row.try_get(2)?)?,
        last_position: crate::to_u64(row.try_get(3)?)?,
        duplicate: true,
    };
    Ok((row.try_get(0)?, outcome))
}

pub(crate) fn decode<R>(rows: &[R]) -> Result<(LogHead, Known), StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Uuid: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut head = None;
    let mut known = Known::default();
    let missing = |what: &str| StoreError::Corrupt {
        message: format!("lookup row without {what}"),
    };
    for row in rows {
        let kind: String = row.try_get(0)?;
        let stream_id: Option<String> = row.try_get(1)?;
        let a: Option<i64> = row.try_get(3)?;
        let a = crate::to_u64(a.ok_or_else(|| missing("a"))?)?;
        match kind.as_str() {
            "h" => {
                let hash: Option<Vec<u8>> = row.try_get(4)?;
                let recorded_at: Option<i64> = row.try_get(5)?;
                head = Some(LogHead {
                    position: a,
                    global_hash: crate::to_hash(hash.ok_or_else(|| missing("head hash"))?)?,
                    recorded_at_micros: recorded_at.ok_or_else(|| missing("recorded_at"))?,
                });
            }
            "s" => {
                let hash: Option<Vec<u8>> = row.try_get(4)?;
                known.streams.insert(
                    stream_id.ok_or_else(|| missing("stream id"))?,
                    StreamHead {
                        version: a,
                        stream_hash: crate::to_hash(hash.ok_or_else(|| missing("stream hash"))?)?,
                    },
                );
            }
            "c" => {
                let command_id: Option<Uuid> = row.try_get(2)?;
                let first: Option<i64> = row.try_get(5)?;
                let last: Option<i64> = row.try_get(6)?;
                known.commands.insert(
                    command_id.ok_or_else(|| missing("command id"))?,
                    CommittedCommand {
                        stream_id: stream_id.ok_or_else(|| missing("stream id"))?,
                        stream_version: a,
                        first_position: crate::to_u64(first.ok_or_else(|| missing("first"))?)?,
                        last_position: crate::to_u64(last.ok_or_else(|| missing("last"))?)?,
                    },
                );
            }
            other => {
                return Err(StoreError::Corrupt {
                    message: format!("lookup row kind {other:?}"),
                })
            }
        }
    }
    let head = head.ok_or_else(|| StoreError::Corrupt {
        message: "the log_head row is missing".to_owned(),
    })?;
    Ok((head, known))
}
