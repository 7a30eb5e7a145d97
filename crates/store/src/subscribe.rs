//! Catch-up-then-live subscriptions over the global order. Because the writer makes positions
//! visible strictly in order, "read everything after my position" never misses an event that
//! commits later; the subscription only has to know when to read again. Batches this process
//! commits arrive through the in-process tail, and are taken from there when they continue
//! exactly where the subscription stands; anything else (another process's commits, a follower
//! that fell behind) is read from the database. A commit in another node wakes the subscription
//! through PostgreSQL's notifications, and `POLL_INTERVAL` bounds the wait in every case.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::{broadcast, watch};

use crate::error::StoreError;
use crate::record::Record;
use crate::Store;

/// Records fetched per read while catching up.
pub const SUBSCRIBE_PAGE_MAX: usize = 1000;
/// The longest a follower waits without a notification before it reads again (another process
/// writing to the same SQLite file does not notify).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A record of a batch that followers share: the tail's batches go to every follower of the
/// process, and copying each record (its payload and metadata text) for each of them cost as
/// much as a fold. Derefs to the record. It keeps its whole batch alive (up to a writer's
/// batch): fold it and let it go, or copy it (`to_record`) to keep it.
#[derive(Clone, Debug)]
pub struct SharedRecord {
    batch: Arc<[Record]>,
    index: usize,
}

impl std::ops::Deref for SharedRecord {
    type Target = Record;
    fn deref(&self) -> &Record {
        &self.batch[self.index]
    }
}

impl std::borrow::Borrow<Record> for SharedRecord {
    fn borrow(&self) -> &Record {
        self
    }
}

impl SharedRecord {
    /// Each record of `batch`, from `from` on.
    fn all(batch: &Arc<[Record]>, from: usize) -> impl Iterator<Item = SharedRecord> + '_ {
        (from..batch.len()).map(|index| SharedRecord {
            batch: batch.clone(),
            index,
        })
    }

    /// The record itself, copied.
    pub fn to_record(&self) -> Record {
        (**self).clone()
    }
}

/// A record a subscription holds: one of the tail's shared batches, or one it read from the
/// database itself (moved out as it is, never copied, by `next`).
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a short-lived buffer of at most a page; boxing would cost an allocation per record read"
)]
enum Buffered {
    Owned(Record),
    Shared(SharedRecord),
}

impl Buffered {
    fn position(&self) -> u64 {
        match self {
            Buffered::Owned(record) => record.position,
            Buffered::Shared(record) => record.position,
        }
    }

    fn into_record(self) -> Record {
        match self {
            Buffered::Owned(record) => record,
            Buffered::Shared(record) => record.to_record(),
        }
    }

    fn into_shared(self) -> SharedRecord {
        match self {
            Buffered::Owned(record) => SharedRecord {
                batch: Arc::from([record]),
                index: 0,
            },
            Buffered::Shared(record) => record,
        }
    }
}

/// A live, resumable follower of the whole log.
#[derive(Debug)]
pub struct Subscription {
    store: Store,
    position: u64,
    buffer: VecDeque<Buffered>,
    committed: watch::Receiver<u64>,
    tail: broadcast::Receiver<Arc<[Record]>>,
    /// Whether the database may hold records that neither the tail nor the committed position
    /// announced: at the start, after the tail lagged, and when a poll interval passed (another
    /// process may write to the same SQLite file without telling us).
    unsure: bool,
    /// Reads of the database so far: a caught-up follower should not read per batch.
    database_reads: u64,
}

impl Subscription {
    pub(crate) fn new(
        store: Store,
        after: u64,
        committed: watch::Receiver<u64>,
        tail: broadcast::Receiver<Arc<[Record]>>,
    ) -> Subscription {
        Subscription {
            store,
            position: after,
            buffer: VecDeque::new(),
            committed,
            tail,
            unsure: true,
            database_reads: 0,
        }
    }

    /// The position of the last record returned (or the starting point).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// How many times this subscription read the database.
    pub fn database_reads(&self) -> u64 {
        self.database_reads
    }

    /// Takes the part of a batch from the tail that continues the buffer exactly, if any.
    fn take(&mut self, batch: &Arc<[Record]>) {
        let end = self.buffer.back().map_or(self.position, Buffered::position);
        if let (Some(first), Some(last)) = (batch.first(), batch.last()) {
            if first.position <= end + 1 && end < last.position {
                let skip = usize::try_from(end + 1 - first.position).expect("a batch is small");
                self.buffer
                    .extend(SharedRecord::all(batch, skip).map(Buffered::Shared));
            }
        }
    }

    /// Drains what the tail holds without waiting.
    fn drain_tail(&mut self) {
        loop {
            match self.tail.try_recv() {
                Ok(batch) => self.take(&batch),
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
                // Missed batches are read from the database.
                Err(TryRecvError::Lagged(_)) => self.unsure = true,
            }
        }
    }

    /// Reads the database after the buffer's end into the buffer; how many records came.
    async fn read_into_buffer(&mut self) -> Result<usize, StoreError> {
        self.database_reads += 1;
        let records = self
            .store
            .read_all(self.position, SUBSCRIBE_PAGE_MAX)
            .await?;
        let read = records.len();
        self.buffer.extend(records.into_iter().map(Buffered::Owned));
        Ok(read)
    }

    /// The next record in global order, waiting for it if need be. An error (the database is
    /// unreachable) loses nothing: call again to resume from the same position.
    pub async fn next(&mut self) -> Result<Record, StoreError> {
        self.next_buffered().await.map(Buffered::into_record)
    }

    /// `next`, sharing a record of the tail with the process's other followers instead of
    /// copying it.
    pub async fn next_shared(&mut self) -> Result<SharedRecord, StoreError> {
        self.next_buffered().await.map(Buffered::into_shared)
    }

    /// The error for a record that does not continue the subscription's position.
    fn gap(&mut self, found: u64) -> StoreError {
        self.buffer.clear();
        self.unsure = true;
        StoreError::Corrupt {
            message: format!(
                "the log skips from position {} to {found}: a record was removed",
                self.position
            ),
        }
    }

    async fn next_buffered(&mut self) -> Result<Buffered, StoreError> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                if record.position() != self.position + 1 {
                    return Err(self.gap(record.position()));
                }
                self.position = record.position();
                return Ok(record);
            }
            // Mark the current value seen before draining the tail, so a commit that lands later
            // wakes the wait below. The writer puts a batch on the tail before it moves the
            // committed position, so on SQLite every batch up to `committed` is on the tail by
            // now. On PostgreSQL `committed` also moves on notifications, which may announce the
            // next batch (sent to the database before this one is answered) before this one is
            // on the tail: the subscription then reads the database, and `take` drops what the
            // tail brings twice. Nothing is lost or repeated; it only costs a query.
            let committed = *self.committed.borrow_and_update();
            self.drain_tail();
            if !self.buffer.is_empty() {
                continue;
            }
            // Only read the database when there may be something the tail did not bring: on
            // the happy path a caught-up follower costs no query per batch.
            if self.unsure || committed > self.position {
                if self.read_into_buffer().await? > 0 {
                    continue;
                }
                self.unsure = false;
            }
            let wait = async {
                tokio::select! {
                    batch = self.tail.recv() => match batch {
                        Ok(batch) => { self.take(&batch); }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        // The store is closing; the watch below still works.
                        Err(broadcast::error::RecvError::Closed) => { let _ = self.committed.changed().await; }
                    },
                    _ = self.committed.changed() => {}
                }
            };
            if tokio::time::timeout(POLL_INTERVAL, wait).await.is_err() {
                self.unsure = true;
            }
        }
    }

    /// The records already at hand (buffered, or on the in-process tail), without waiting and
    /// without reading the database: what a follower folds together with the record `next`
    /// returned. A gap after some of them returns those; the next call reports it.
    pub fn take_buffered(&mut self) -> Result<Vec<Record>, StoreError> {
        Ok(self
            .pop_buffered()?
            .into_iter()
            .map(Buffered::into_record)
            .collect())
    }

    /// `take_buffered`, sharing the tail's records with the process's other followers.
    pub fn take_buffered_shared(&mut self) -> Result<Vec<SharedRecord>, StoreError> {
        Ok(self
            .pop_buffered()?
            .into_iter()
            .map(Buffered::into_shared)
            .collect())
    }

    /// Pops what continues the position, up to a gap (reported now only if nothing came before it).
    fn pop_buffered(&mut self) -> Result<Vec<Buffered>, StoreError> {
        self.drain_tail();
        let mut records = Vec::with_capacity(self.buffer.len());
        while let Some(record) = self.buffer.pop_front() {
            if record.position() != self.position + 1 {
                if records.is_empty() {
                    return Err(self.gap(record.position()));
                }
                // Return what continues the position; the gap is reported next time (before,
                // the records taken were dropped with the error while the position had moved
                // past them).
                self.buffer.push_front(record);
                break;
            }
            self.position = record.position();
            records.push(record);
        }
        Ok(records)
    }

    /// Whether the database may hold records after `position` that the in-process tail did not
    /// bring: at the start, after the tail lagged or a poll interval passed, or when the
    /// committed position is ahead of what the tail delivered. A follower that folds what
    /// `next` and `take_buffered` bring reads the database (`poll_available`) only then.
    pub fn may_have_missed(&mut self) -> bool {
        self.drain_tail();
        let end = self.buffer.back().map_or(self.position, Buffered::position);
        self.unsure || *self.committed.borrow() > end
    }

    /// The records available right now (at most one page), without waiting; empty when caught up.
    pub async fn poll_available(&mut self) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::new();
        self.drain_tail();
        if self.buffer.is_empty() {
            // A short page is everything committed when it was read; what commits later comes
            // through the tail (or the committed position, or the next poll interval).
            if self.read_into_buffer().await? < SUBSCRIBE_PAGE_MAX {
                self.unsure = false;
            }
        }
        while !self.buffer.is_empty() {
            records.push(self.next().await?);
        }
        Ok(records)
    }
}
