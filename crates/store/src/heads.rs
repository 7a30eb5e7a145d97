//! The writer's memory of stream heads, for the group commit fast path: a batch whose streams
//! are all new (`NoStream`) or remembered is planned without reading anything but the log head,
//! and the unique indexes on `(stream_id, stream_version)` and on the first event of each command
//! id catch any memory that another writer made stale; the batch is then rolled back and planned
//! again from the database. A fast plan that rejects an append, or answers it as a duplicate, is
//! never trusted either: rejections are decided on what the database says.
//!
//! Memory learns a batch's heads when the batch is planned, before it commits, so that the next
//! batch can be planned while it is in the database (`writer`); when a batch does not commit as
//! planned, the writer makes memory forget what that batch and the one planned on it taught.

use crate::error::AppendError;
use crate::plan::{Append, CommittedCommand, LogHead, Lookup, Map, Plan, StreamHead};
use crate::record::AppendOutcome;

/// Most stream heads remembered; past it the memory starts over (it is only a fast path). About
/// 130 bytes each: 32 MiB at most.
pub const STREAM_HEADS_MAX: usize = 250_000;

#[derive(Debug, Default)]
pub(crate) struct StreamHeads {
    heads: Map<String, StreamHead>,
    /// The log head after the last batch this writer planned from memory (committed, or in the
    /// database and forgotten if it does not commit as planned). Where the lock does not
    /// serialize on reading it (SQLite: the insert itself takes the write lock), a stale head
    /// is caught by the primary key on positions: any other writer since took the next
    /// position.
    pub log_head: Option<LogHead>,
}

/// Memory plans no duplicates: it keeps no command ids (the unique index on them says).
impl Lookup for StreamHeads {
    fn stream(&self, stream: &str) -> Option<StreamHead> {
        self.heads.get(stream).copied()
    }

    fn command(&self, _: &uuid::Uuid) -> Option<&CommittedCommand> {
        None
    }
}

impl StreamHeads {
    /// Whether memory can plan the whole batch: every stream is remembered or meant to be new.
    pub fn covers(&self, appends: &[Append]) -> bool {
        appends.iter().all(|append| {
            // A new stream needs no memory; the unique index says if it was not new.
            append.expected == crate::ExpectedVersion::NoStream
                || self.heads.contains_key(append.stream.as_str())
        })
    }

    /// Whether (a piece of) a plan made from memory can be written as it is: every append
    /// succeeds as new.
    pub fn trusts(outcomes: &[Result<AppendOutcome, AppendError>]) -> bool {
        outcomes
            .iter()
            .all(|outcome| matches!(outcome, Ok(outcome) if !outcome.duplicate))
    }

    /// Takes heads read from the log as hints (a reader about to append to these streams, e.g.
    /// the SLA scheduler reading a burst's tickets ahead). A hint never replaces a newer head;
    /// a stale one only costs a plan from the database (the unique index or the plan's
    /// conflict says so).
    pub fn hint(&mut self, heads: Vec<(String, u64, crate::Hash)>) {
        let new_streams = heads
            .iter()
            .filter(|(stream, ..)| !self.heads.contains_key(stream.as_str()))
            .count();
        if self.heads.len() + new_streams > STREAM_HEADS_MAX {
            self.heads.clear();
        }
        for (stream, version, stream_hash) in heads {
            let head = StreamHead {
                version,
                stream_hash,
            };
            self.heads
                .entry(stream)
                .and_modify(|known| {
                    if known.version < version {
                        *known = head;
                    }
                })
                .or_insert(head);
        }
    }

    /// Forgets the heads of the appends' streams: what memory learned of them rested on a batch
    /// that did not commit as planned.
    pub fn forget(&mut self, appends: &[Append]) {
        for append in appends {
            self.heads.remove(append.stream.as_str());
        }
    }

    /// Remembers the heads a plan leaves, from its row `rows_from` on (the writer's plans are
    /// learned before they commit, piece by piece: see `writer`). A stream already remembered
    /// (the burst's appends to existing tickets) costs no allocation.
    pub fn learn(&mut self, plan: &Plan, rows_from: usize) {
        self.log_head = Some(plan.head);
        let rows = &plan.rows[rows_from..];
        let new_streams = rows
            .iter()
            .filter(|row| {
                !self
                    .heads
                    .contains_key(plan.event_of(row).0.stream.as_str())
            })
            .count();
        if self.heads.len() + new_streams > STREAM_HEADS_MAX {
            self.heads.clear();
        }
        for row in rows {
            let head = StreamHead {
                version: row.stream_version,
                stream_hash: row.stream_hash,
            };
            let stream = plan.event_of(row).0.stream.as_str();
            match self.heads.get_mut(stream) {
                Some(known) => *known = head,
                None => {
                    self.heads.insert(stream.to_owned(), head);
                }
            }
        }
    }
}
