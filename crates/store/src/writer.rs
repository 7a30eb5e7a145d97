//! Group commit: one task per store owns the write connection. Callers queue appends and await
//! their own outcome; the task drains whatever is queued into one transaction (one fsync), and
//! answers each caller separately. The task is spawned, never polled by a caller, so a caller that
//! goes away (an HTTP client disconnecting) can never cancel a transaction halfway.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::error::{AppendError, StoreError};
use crate::plan::{Append, LogHead, Plan};
use crate::record::{AppendOutcome, Record};

/// Most appends queued for the writer; further callers wait for room (backpressure).
pub const APPEND_QUEUE_MAX: usize = 4096;
/// Most appends in one group commit transaction.
pub const BATCH_APPENDS_MAX: usize = 1024;
/// Most events in one group commit transaction (an append larger than this still goes alone).
pub const BATCH_EVENTS_MAX: usize = 4096;

/// What a committed batch produced.
#[derive(Debug)]
pub(crate) struct Committed {
    pub outcomes: Vec<Result<AppendOutcome, AppendError>>,
    pub head: LogHead,
    /// The records written (duplicates and conflicts write none).
    pub records: Vec<Record>,
    /// Planned from the writer's memory of stream heads, without reading them back.
    pub from_memory: bool,
}

impl Committed {
    pub fn new(plan: Plan, from_memory: bool) -> Committed {
        let head = plan.head;
        let (outcomes, records) = plan.into_outcomes_and_records();
        Committed {
            outcomes,
            head,
            records,
            from_memory,
        }
    }
}

/// Committed batches, as the records readers will see, for followers in this process: they
/// take them from here instead of reading the database again.
pub(crate) type Tail = broadcast::Sender<Arc<[Record]>>;

/// Committed batches kept for followers that fall behind; one that falls further reads the
/// database instead.
pub const TAIL_BATCHES_MAX: usize = 1024;

/// A backend's write transaction for one batch: all or nothing.
pub(crate) trait BatchCommit: Send + 'static {
    fn commit(
        &mut self,
        appends: Vec<Append>,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send;

    /// Stream heads read from the log, as hints for the fast path (`StreamHeads::hint`).
    fn hint(&mut self, heads: Vec<(String, u64, crate::Hash)>);
}

pub(crate) type Reply = oneshot::Sender<Result<AppendOutcome, AppendError>>;

#[derive(Debug)]
pub(crate) enum Msg {
    Append(Append, Reply),
    /// Answered once everything queued before it has been committed or failed.
    Flush(oneshot::Sender<()>),
    /// Stream heads a reader saw (stream, version, stream hash): hints for the fast path.
    Hint(Vec<(String, u64, crate::Hash)>),
}

/// Upper bounds of the batch size histogram's buckets, in appends per group commit.
pub const BATCH_SIZE_BUCKETS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/// Counters for metrics and for the benchmark's batch size.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Committed batches by size: `batch_sizes[i]` counts batches of at most
    /// `BATCH_SIZE_BUCKETS[i]` appends (and more than the bucket before).
    pub batch_sizes: [AtomicU64; BATCH_SIZE_BUCKETS.len()],
    pub batches: AtomicU64,
    /// Appends answered by committed batches, including conflicts and duplicates.
    pub appends: AtomicU64,
    /// Events written.
    pub events: AtomicU64,
    pub failed_batches: AtomicU64,
    /// Committed batches planned from memory (the fast path); the rest read the heads back.
    pub planned_from_memory: AtomicU64,
}

impl WriterStats {
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.appends.load(Ordering::Relaxed),
            self.events.load(Ordering::Relaxed),
            self.failed_batches.load(Ordering::Relaxed),
        )
    }
}

pub(crate) async fn run<W: BatchCommit>(
    mut writer: W,
    mut queue: mpsc::Receiver<Msg>,
    committed: watch::Sender<u64>,
    tail: Tail,
    stats: Arc<WriterStats>,
) {
    let mut appends: Vec<Append> = Vec::new();
    let mut replies: Vec<Reply> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut events = 0;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(append, reply) => {
                    events += append.events.len();
                    appends.push(append);
                    replies.push(reply);
                }
                Msg::Flush(done) => flushes.push(done),
                Msg::Hint(heads) => writer.hint(heads),
            }
            if appends.len() < BATCH_APPENDS_MAX && events < BATCH_EVENTS_MAX {
                next = queue.try_recv().ok();
            }
        }
        if !appends.is_empty() {
            let batch_appends = appends.len();
            match writer.commit(std::mem::take(&mut appends)).await {
                Ok(Committed {
                    outcomes,
                    head,
                    records,
                    from_memory,
                }) => {
                    if from_memory {
                        stats.planned_from_memory.fetch_add(1, Ordering::Relaxed);
                    }
                    assert_eq!(outcomes.len(), replies.len(), "one outcome per append");
                    let events_written = records.len();
                    if !records.is_empty() {
                        // No receiver is fine: nobody follows in this process.
                        let _ = tail.send(Arc::from(records));
                    }
                    committed.send_if_modified(|current| {
                        let newer = head.position > *current;
                        if newer {
                            *current = head.position;
                        }
                        newer
                    });
                    stats.batches.fetch_add(1, Ordering::Relaxed);
                    let bucket = BATCH_SIZE_BUCKETS
                        .iter()
                        .position(|bound| batch_appends as u64 <= *bound)
                        .unwrap_or(BATCH_SIZE_BUCKETS.len() - 1);
                    stats.batch_sizes[bucket].fetch_add(1, Ordering::Relaxed);
                    stats
                        .appends
                        .fetch_add(batch_appends as u64, Ordering::Relaxed);
                    stats
                        .events
                        .fetch_add(events_written as u64, Ordering::Relaxed);
                    for (reply, outcome) in replies.drain(..).zip(outcomes) {
                        // A caller that went away still had its append committed; nothing to do.
                        let _ = reply.send(outcome);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, appends = batch_appends, "group commit failed");
                    stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                    for reply in replies.drain(..) {
                        let _ = reply.send(Err(AppendError::Store(error.clone())));
                    }
                }
            }
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}
