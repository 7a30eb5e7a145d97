//! Catch-up-then-live subscriptions over the global order. Because the writer makes positions
//! visible strictly in order, "read everything after my position" never misses an event that
//! commits later; the subscription only has to know when to read again: at once when this
//! process (or, on PostgreSQL, any node) commits, and at the latest after `POLL_INTERVAL`.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::StoreError;
use crate::record::Record;
use crate::Store;

/// Records fetched per read while catching up.
pub const SUBSCRIBE_PAGE_MAX: usize = 1000;
/// The longest a follower waits without a notification before it reads again (another process
/// writing to the same SQLite file does not notify).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A live, resumable follower of the whole log.
#[derive(Debug)]
pub struct Subscription {
    store: Store,
    position: u64,
    buffer: VecDeque<Record>,
    committed: watch::Receiver<u64>,
}

impl Subscription {
    pub(crate) fn new(store: Store, after: u64, committed: watch::Receiver<u64>) -> Subscription {
        Subscription {
            store,
            position: after,
            buffer: VecDeque::new(),
            committed,
        }
    }

    /// The position of the last record returned (or the starting point).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next record in global order, waiting for it if need be. An error (the database is
    /// unreachable) loses nothing: call again to resume from the same position.
    pub async fn next(&mut self) -> Result<Record, StoreError> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                if record.position != self.position + 1 {
                    let found = record.position;
                    self.buffer.clear();
                    return Err(StoreError::Corrupt {
                        message: format!(
                            "the log skips from position {} to {found}: a record was removed",
                            self.position
                        ),
                    });
                }
                self.position = record.position;
                return Ok(record);
            }
            // Mark the current value seen before reading, so a commit that lands after the read
            // wakes the wait below.
            self.committed.borrow_and_update();
            let records = self
                .store
                .read_all(self.position, SUBSCRIBE_PAGE_MAX)
                .await?;
            if records.is_empty() {
                let _ = tokio::time::timeout(POLL_INTERVAL, self.committed.changed()).await;
            } else {
                self.buffer.extend(records);
            }
        }
    }

    /// The records available right now (at most one page), without waiting; empty when caught up.
    pub async fn poll_available(&mut self) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::new();
        if self.buffer.is_empty() {
            self.buffer.extend(
                self.store
                    .read_all(self.position, SUBSCRIBE_PAGE_MAX)
                    .await?,
            );
        }
        while !self.buffer.is_empty() {
            records.push(self.next().await?);
        }
        Ok(records)
    }
}
