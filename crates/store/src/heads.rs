//! The writer's memory of stream heads, for the group commit fast path: a batch whose streams
//! are all new (`NoStream`) or remembered is planned without reading anything but the log head,
//! and the unique indexes on `(stream_id, stream_version)` and on the first event of each command
//! id catch any memory that another writer made stale; the batch is then rolled back and planned
//! again from the database. A fast plan that rejects an append, or answers it as a duplicate, is
//! never trusted either: rejections are decided on what the database says.

use std::collections::HashMap;

use crate::plan::{Append, Known, LogHead, Plan, StreamHead};

/// Most stream heads remembered; past it the memory starts over (it is only a fast path). About
/// 130 bytes each: 32 MiB at most.
pub const STREAM_HEADS_MAX: usize = 250_000;

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

    /// Remembers the heads a committed plan left.
    pub fn learn(&mut self, plan: &Plan<'_>) {
        self.log_head = Some(plan.head);
        let new_streams = plan
            .rows
            .iter()
            .filter(|row| !self.heads.contains_key(row.stream.as_str()))
            .count();
        if self.heads.len() + new_streams > STREAM_HEADS_MAX {
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
