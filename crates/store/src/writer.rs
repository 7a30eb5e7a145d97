//! Group commit: one task per store owns the write connection. Callers queue appends and await
//! their own outcome; the task drains whatever is queued into one transaction (one fsync), and
//! answers each caller separately. The task is spawned, never polled by a caller, so a caller that
//! goes away (an HTTP client disconnecting) can never cancel a transaction halfway.
//!
//! The task is a two-stage pipeline. While one batch is in the database, the next is gathered
//! and planned (positions, both hash chains, the rows) from the writer's memory of stream heads,
//! piece by piece whenever the database's answers wake the task, as if the batch in the database
//! had committed: the database's work is then the serial chain,
//! not the planning, hashing and answering around it. That plan is speculative. It is written
//! only after the batch before it committed exactly as it was planned from memory; if that one
//! failed, or was planned again from the database (a unique index said memory was stale), the
//! heads both batches taught memory are forgotten, and the next batch is planned again (from
//! the database when memory no longer knows the log head). A batch is only sent to the database
//! once the one before it has committed, so positions stay contiguous and every caller is
//! answered after its own batch is durable, in order.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::error::{AppendError, StoreError};
use crate::heads::StreamHeads;
use crate::plan::{self, Append, Known, LogHead, Plan};
use crate::record::{AppendOutcome, Record};

/// Most appends queued for the writer; further callers wait for room (backpressure).
pub const APPEND_QUEUE_MAX: usize = 4096;
/// Most appends in one group commit transaction.
pub const BATCH_APPENDS_MAX: usize = 1024;
/// Most events in one group commit transaction (an append larger than this still goes alone).
pub const BATCH_EVENTS_MAX: usize = 4096;

/// Committed batches, as the records readers will see, for followers in this process: they
/// take them from here instead of reading the database again.
pub(crate) type Tail = broadcast::Sender<Arc<[Record]>>;

/// Committed batches kept for followers that fall behind; one that falls further reads the
/// database instead.
pub const TAIL_BATCHES_MAX: usize = 1024;

/// A batch on its way to the database: planned from memory, or to be planned from what the
/// database says inside the write transaction.
#[derive(Debug)]
pub(crate) enum Batch {
    Planned(Plan),
    Unplanned(Vec<Append>),
}

impl Batch {
    pub fn appends(&self) -> &[Append] {
        match self {
            Batch::Planned(plan) => &plan.appends,
            Batch::Unplanned(appends) => appends,
        }
    }

    pub fn into_appends(self) -> Vec<Append> {
        match self {
            Batch::Planned(plan) => plan.into_appends(),
            Batch::Unplanned(appends) => appends,
        }
    }

    /// Takes the appends out, leaving an empty batch.
    pub fn take_appends(&mut self) -> Vec<Append> {
        std::mem::replace(self, Batch::Unplanned(Vec::new())).into_appends()
    }

    /// Plans `appends` (taken out with `take_appends`) from what the database said inside the
    /// write transaction, holds the plan and lends it back; when the look-up failed, holds the
    /// appends again and returns its error.
    pub fn plan_from_database(
        &mut self,
        appends: Vec<Append>,
        looked_up: Result<(LogHead, Known), StoreError>,
    ) -> Result<&Plan, StoreError> {
        let (head, known) = match looked_up {
            Ok(found) => found,
            Err(error) => {
                *self = Batch::Unplanned(appends);
                return Err(error);
            }
        };
        let now_micros = jiff::Timestamp::now().as_microsecond();
        *self = Batch::Planned(plan::plan(head, &known, appends, now_micros));
        match self {
            Batch::Planned(plan) => Ok(plan),
            Batch::Unplanned(_) => unreachable!("just planned"),
        }
    }
}

/// What a backend's write of one batch left: the connection, if still usable, and the batch
/// (planned from memory as it was sent, or holding the plan made from the database; a batch
/// that failed may hold either).
pub(crate) struct Written<C> {
    pub conn: Option<C>,
    pub batch: Batch,
    /// `Ok(true)`: committed as planned from memory; `Ok(false)`: planned from the database
    /// and committed (the batch holds that plan).
    pub result: Result<bool, StoreError>,
}

/// A backend's write transaction for one batch: all or nothing. The future owns the connection
/// and the batch, so the writer can keep it running while it plans the next batch.
pub(crate) trait Backend: Send + 'static {
    type Conn: Send + 'static;

    /// Opens the write connection again after a failure left the last one unusable.
    fn connect(&self) -> impl Future<Output = Result<Self::Conn, StoreError>> + Send;

    fn write(
        conn: Self::Conn,
        batch: Batch,
    ) -> impl Future<Output = Written<Self::Conn>> + Send + 'static;
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
    /// Batches planned from memory while the batch before them was in the database, then
    /// planned again because that one did not commit as planned. (A plan given up while its
    /// batch is still being gathered, because memory could not cover an append, is not
    /// counted: that batch goes to the database as it would have without the pipeline.)
    pub discarded_plans: AtomicU64,
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

/// What the queue held, up to a batch's bounds, planned as it came.
struct Gathered {
    batch: Batch,
    replies: Vec<Reply>,
    flushes: Vec<oneshot::Sender<()>>,
    events: usize,
}

impl Gathered {
    fn empty() -> Gathered {
        Gathered {
            batch: Batch::Unplanned(Vec::new()),
            replies: Vec::new(),
            flushes: Vec::new(),
            events: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.flushes.is_empty()
    }

    fn full(&self) -> bool {
        self.replies.len() >= BATCH_APPENDS_MAX || self.events >= BATCH_EVENTS_MAX
    }

    /// Takes `first` and whatever else is queued now, up to the batch's bounds, and plans the
    /// new appends onto the batch.
    fn take(&mut self, first: Msg, queue: &mut mpsc::Receiver<Msg>, heads: &mut StreamHeads) {
        let mut appends = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(append, reply) => {
                    self.events += append.events.len();
                    appends.push(append);
                    self.replies.push(reply);
                }
                Msg::Flush(done) => self.flushes.push(done),
                Msg::Hint(hinted) => heads.hint(hinted),
            }
            if !self.full() {
                next = queue.try_recv().ok();
            }
        }
        if !appends.is_empty() {
            self.batch.extend(heads, appends);
        }
    }

    /// Takes whatever is queued now, if there is room.
    fn take_queued(&mut self, queue: &mut mpsc::Receiver<Msg>, heads: &mut StreamHeads) {
        if self.full() {
            return;
        }
        if let Ok(first) = queue.try_recv() {
            self.take(first, queue, heads);
        }
    }
}

impl Batch {
    /// Plans `appends` onto the batch from memory when memory covers them and the plan is one to
    /// trust (every append succeeds as new), and learns the heads they leave at once, so that
    /// what comes next can be planned on them before they commit. Otherwise the whole batch is
    /// to be planned from the database: what memory learned from its earlier pieces is
    /// forgotten, and memory of the log head is void until the batch commits.
    fn extend(&mut self, heads: &mut StreamHeads, appends: Vec<Append>) {
        let now_micros = jiff::Timestamp::now().as_microsecond();
        match self {
            Batch::Unplanned(planless) if planless.is_empty() => {
                if let Some(head) = heads.log_head.filter(|_| heads.covers(&appends)) {
                    let plan = plan::plan(head, &*heads, appends, now_micros);
                    if StreamHeads::trusts(&plan.outcomes) {
                        heads.learn(&plan, 0);
                        *self = Batch::Planned(plan);
                        return;
                    }
                    *planless = plan.into_appends();
                } else {
                    *planless = appends;
                }
                heads.log_head = None;
            }
            Batch::Unplanned(planless) => planless.extend(appends),
            Batch::Planned(plan) => {
                if heads.covers(&appends) {
                    let (outcomes_from, rows_from) = (plan.outcomes.len(), plan.rows.len());
                    plan::extend(plan, &*heads, appends, now_micros);
                    if StreamHeads::trusts(&plan.outcomes[outcomes_from..]) {
                        heads.learn(plan, rows_from);
                        return;
                    }
                } else {
                    plan.appends.extend(appends);
                }
                let appends = self.take_appends();
                heads.forget(&appends);
                heads.log_head = None;
                *self = Batch::Unplanned(appends);
            }
        }
    }
}

type Writing<C> = Pin<Box<dyn Future<Output = Written<C>> + Send>>;

/// The batch in the database, and who waits for it.
struct InFlight<C> {
    writing: Writing<C>,
    replies: Vec<Reply>,
    flushes: Vec<oneshot::Sender<()>>,
    /// Planned from memory: memory already holds the heads it leaves.
    speculative: bool,
}

/// Where the task sends what it answered.
struct Outlets {
    committed: watch::Sender<u64>,
    tail: Tail,
    stats: Arc<WriterStats>,
}

pub(crate) async fn run<B: Backend>(
    backend: B,
    conn: B::Conn,
    mut queue: mpsc::Receiver<Msg>,
    committed: watch::Sender<u64>,
    tail: Tail,
    stats: Arc<WriterStats>,
) {
    let outlets = Outlets {
        committed,
        tail,
        stats,
    };
    let mut heads = StreamHeads::default();
    let mut conn = Some(conn);
    let mut in_flight: Option<InFlight<B::Conn>> = None;
    // Gathered (and planned) while the batch before it is in the database.
    let mut next = Gathered::empty();
    loop {
        let Some(flight) = in_flight.as_mut() else {
            if next.is_empty() {
                match queue.recv().await {
                    Some(first) => next.take(first, &mut queue, &mut heads),
                    None => return,
                }
            }
            let gathered = std::mem::replace(&mut next, Gathered::empty());
            in_flight = dispatch(&backend, &mut conn, &mut heads, gathered, &outlets).await;
            continue;
        };
        // Whenever the database's answers wake this task (SQLite's worker answers each
        // statement of a batch in turn), what was queued meanwhile is taken and planned. The
        // queue itself does not wake it: one wake per append, from another thread, cost more
        // than the planning it would overlap.
        let written = std::future::poll_fn(|cx| {
            if let Poll::Ready(written) = flight.writing.as_mut().poll(cx) {
                return Poll::Ready(written);
            }
            next.take_queued(&mut queue, &mut heads);
            Poll::Pending
        })
        .await;
        let flight = in_flight.take().expect("a batch was in flight");
        conn = written.conn;
        if matches!(written.result, Ok(true)) {
            // Committed as planned: what the next batch was planned on holds.
            next.take_queued(&mut queue, &mut heads);
        } else {
            // Memory learned what this batch and the one planned after it would leave; neither
            // holds now. Forgotten heads only cost plans from the database.
            if let Batch::Planned(_) = next.batch {
                heads.forget(next.batch.appends());
                outlets
                    .stats
                    .discarded_plans
                    .fetch_add(1, Ordering::Relaxed);
            }
            if flight.speculative {
                heads.forget(written.batch.appends());
            }
            match (&written.result, &written.batch) {
                (Ok(_), Batch::Planned(plan)) => heads.learn(plan, 0),
                _ => heads.log_head = None,
            }
            let appends = next.batch.take_appends();
            if !appends.is_empty() {
                next.batch.extend(&mut heads, appends);
            }
            next.take_queued(&mut queue, &mut heads);
        }
        // The next batch goes to the database before this one's callers are answered, so that
        // the database works while this task answers (unless the connection must be opened
        // again first: then in order, this batch's answers first).
        if conn.is_some() && !next.batch.appends().is_empty() {
            let gathered = std::mem::replace(&mut next, Gathered::empty());
            in_flight = dispatch(&backend, &mut conn, &mut heads, gathered, &outlets).await;
        }
        answer(
            flight.replies,
            flight.flushes,
            written.batch,
            written.result,
            &outlets,
        );
        if in_flight.is_none() && !next.is_empty() {
            let gathered = std::mem::replace(&mut next, Gathered::empty());
            in_flight = dispatch(&backend, &mut conn, &mut heads, gathered, &outlets).await;
        }
    }
}

/// Sends a batch to the database and polls it once, so that the backend starts on it (SQLite's
/// worker thread, PostgreSQL's socket) before this task turns to anything else. A batch of
/// flushes alone is answered at once: it is only dispatched when nothing is in flight.
async fn dispatch<B: Backend>(
    backend: &B,
    conn: &mut Option<B::Conn>,
    heads: &mut StreamHeads,
    gathered: Gathered,
    outlets: &Outlets,
) -> Option<InFlight<B::Conn>> {
    let Gathered {
        batch,
        replies,
        flushes,
        ..
    } = gathered;
    if batch.appends().is_empty() {
        // Only flushes (and hints, taken already): everything queued before them is answered.
        for done in flushes {
            let _ = done.send(());
        }
        return None;
    }
    let speculative = matches!(batch, Batch::Planned(_));
    let open = match conn.take() {
        Some(open) => open,
        None => match backend.connect().await {
            Ok(open) => open,
            Err(error) => {
                if speculative {
                    heads.forget(batch.appends());
                }
                heads.log_head = None;
                answer(replies, flushes, batch, Err(error), outlets);
                return None;
            }
        },
    };
    let mut writing: Writing<B::Conn> = Box::pin(B::write(open, batch));
    let polled = std::future::poll_fn(|cx| Poll::Ready(writing.as_mut().poll(cx))).await;
    if let Poll::Ready(written) = polled {
        // Written without waiting (it failed at once): settled as any other.
        writing = Box::pin(std::future::ready(written));
    }
    Some(InFlight {
        writing,
        replies,
        flushes,
        speculative,
    })
}

/// Answers a batch's callers with their outcomes (or the batch's error), hands the records to
/// followers in this process, and counts.
fn answer(
    replies: Vec<Reply>,
    flushes: Vec<oneshot::Sender<()>>,
    batch: Batch,
    result: Result<bool, StoreError>,
    outlets: &Outlets,
) {
    let stats = &outlets.stats;
    match (result, batch) {
        (Ok(from_memory), Batch::Planned(plan)) => {
            if from_memory {
                stats.planned_from_memory.fetch_add(1, Ordering::Relaxed);
            }
            let appends = plan.appends.len();
            let head = plan.head;
            let (outcomes, records) = plan.into_outcomes_and_records();
            assert_eq!(outcomes.len(), replies.len(), "one outcome per append");
            let events_written = records.len();
            if !records.is_empty() {
                // No receiver is fine: nobody follows in this process.
                let _ = outlets.tail.send(Arc::from(records));
            }
            outlets.committed.send_if_modified(|current| {
                let newer = head.position > *current;
                if newer {
                    *current = head.position;
                }
                newer
            });
            stats.batches.fetch_add(1, Ordering::Relaxed);
            let bucket = BATCH_SIZE_BUCKETS
                .iter()
                .position(|bound| appends as u64 <= *bound)
                .unwrap_or(BATCH_SIZE_BUCKETS.len() - 1);
            stats.batch_sizes[bucket].fetch_add(1, Ordering::Relaxed);
            stats.appends.fetch_add(appends as u64, Ordering::Relaxed);
            stats
                .events
                .fetch_add(events_written as u64, Ordering::Relaxed);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A caller that went away still had its append committed; nothing to do.
                let _ = reply.send(outcome);
            }
        }
        (Ok(_), Batch::Unplanned(_)) => unreachable!("a committed batch holds its plan"),
        (Err(error), batch) => {
            tracing::warn!(%error, appends = batch.appends().len(), "group commit failed");
            stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            for reply in replies {
                let _ = reply.send(Err(AppendError::Store(error.clone())));
            }
        }
    }
    for done in flushes {
        let _ = done.send(());
    }
}

#[cfg(test)]
mod tests;
