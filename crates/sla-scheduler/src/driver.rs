//! The thin tokio driver: follows the log into its sources, sleeps until the next deadline, and
//! issues due work through a `CommandSink` (the API's decider, as the System actor). It trusts
//! no memory across restarts or leadership changes: each time it becomes leader it builds fresh
//! sources and folds the whole log, so every overdue timer fires after downtime, in due order,
//! once — the command ids make a repeated fire a no-op in the store.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use store::{Store, StoreError, Subscription};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::leader::Leadership;
use crate::source::{TimerSource, Work};

/// Most work items taken out of the sources per round.
pub const ROUND_WORK_MAX: usize = 10_000;
/// Most tickets whose work is in flight at once (work for one ticket is issued in order).
pub const TICKETS_IN_FLIGHT_MAX: usize = 256;
/// The longest the driver sleeps without looking at the clock again.
pub const IDLE_WAKE_MAX: Duration = Duration::from_secs(1);
/// How often a leader checks it still holds its lock.
pub const LEADER_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// How far ahead of their due time the tickets of timers are read into memory (`prefetch`): a
/// burst of 100,000 timers due in one second then fires from memory instead of reading 100,000
/// tickets after they fell due.
pub const PREFETCH_AHEAD: SignedDuration = SignedDuration::from_secs(15);
/// Most tickets prefetched in one step; the driver fires what is due between steps.
pub const PREFETCH_STEP_MAX: usize = 2_000;

/// The wall clock, injected: `docket serve` passes the system clock, tests a manual one.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// What became of one work item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issued {
    /// Events were appended, the last at this position.
    Appended { position: u64 },
    /// The command id had been appended before: nothing written.
    Duplicate,
    /// The domain decided there was nothing to record (already warned, already breached).
    Unchanged,
    /// The domain refused it (the clock moved meanwhile); the log will say what is next.
    Rejected { rule: String },
}

/// Why a work item could not be issued now (the database is away): it is retried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("issuing scheduled work failed: {message}")]
pub struct SinkError {
    pub message: String,
}

/// What became of one work item of a batch, and when it was processed.
pub type BatchOutcome = (Work, Result<Issued, SinkError>, Timestamp);

/// The rest of a round that `CommandSink::start_batch` started: its outcomes, as they come.
pub type Settling = std::pin::Pin<Box<dyn Future<Output = Vec<BatchOutcome>> + Send>>;

/// Where work goes: the domain's decider and the store, as the System actor.
pub trait CommandSink: Send + Sync + 'static {
    fn issue(&self, work: &Work) -> impl Future<Output = Result<Issued, SinkError>> + Send;

    /// Reads `tickets` (whose timers fall due within `PREFETCH_AHEAD`) into memory ahead of
    /// time, so that their work, when due, is decided without reading the log. Only a hint: a
    /// ticket that changes meanwhile must still be decided on its latest version (the append's
    /// expected version guards it). By default nothing.
    fn prefetch(&self, tickets: Vec<domain::TicketId>) -> impl Future<Output = ()> + Send {
        let _ = tickets;
        async {}
    }

    /// Issues a round of work, oldest first, the work of one ticket in order; answers for every
    /// item, in any order, with when it was processed (a failed item is retried next round).
    /// By default one `issue` per item, different tickets concurrently; the API's sink decides
    /// the whole round against the tickets it holds and appends it in multi-stream batches.
    fn issue_batch(
        self: Arc<Self>,
        clock: Arc<dyn Clock>,
        work: Vec<Work>,
    ) -> impl Future<Output = Vec<BatchOutcome>> + Send
    where
        Self: Sized,
    {
        issue_each(self, clock, work)
    }

    /// Starts a round of work (as `issue_batch` would issue it) and returns once what can be
    /// queued is queued, with the rest of the round to await: the driver takes and starts the
    /// next round while this one commits, so that the log's writer is not left idle between
    /// rounds. A round started later must not overtake this one: a ticket whose work is still
    /// in flight here is issued after it. By default nothing is started early: the returned
    /// future issues the whole round with `issue_batch`.
    fn start_batch(
        self: Arc<Self>,
        clock: Arc<dyn Clock>,
        work: Vec<Work>,
    ) -> impl Future<Output = Settling> + Send
    where
        Self: Sized,
    {
        let settling: Settling = Box::pin(self.issue_batch(clock, work));
        std::future::ready(settling)
    }
}

/// One work item as processed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub source: &'static str,
    pub command: &'static str,
    pub due_at: Timestamp,
    pub processed_at: Timestamp,
    pub issued: Issued,
}

/// Scheduler state for the metrics endpoint; shared, cheap to read.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    pub leader: AtomicBool,
    pub timers: AtomicU64,
    pub fired: AtomicU64,
    pub failed: AtomicU64,
    /// Due → processed of the last work item, in milliseconds.
    pub last_lag_ms: AtomicI64,
    pub position: AtomicU64,
}

/// Follows the log and fires due work while it leads.
#[derive(Debug)]
pub struct Driver<S> {
    sink: Arc<S>,
    clock: Arc<dyn Clock>,
    sources: Vec<Box<dyn TimerSource>>,
    subscription: Subscription,
    stats: Arc<SchedulerStats>,
    /// Work that failed transiently, retried first next round.
    retry: Vec<Work>,
    /// The last prefetch step was full: more tickets fall due within `PREFETCH_AHEAD`.
    prefetch_pending: bool,
    /// Most work items per round (`ROUND_WORK_MAX`; tests use small rounds to overlap them).
    round_work_max: usize,
}

impl std::fmt::Debug for dyn TimerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimerSource({})", self.name())
    }
}

impl<S: CommandSink> Driver<S> {
    /// A driver that will fold the log from its start.
    pub fn new(
        store: &Store,
        sink: Arc<S>,
        clock: Arc<dyn Clock>,
        sources: Vec<Box<dyn TimerSource>>,
        stats: Arc<SchedulerStats>,
    ) -> Driver<S> {
        Driver {
            sink,
            clock,
            sources,
            subscription: store.subscribe(0),
            stats,
            retry: Vec::new(),
            prefetch_pending: false,
            round_work_max: ROUND_WORK_MAX,
        }
    }

    /// Rounds of at most `round_work_max` items (at least 1, at most `ROUND_WORK_MAX`): tests
    /// use small ones so that rounds overlap.
    pub fn with_round_work_max(self, round_work_max: usize) -> Driver<S> {
        Driver {
            round_work_max: round_work_max.clamp(1, ROUND_WORK_MAX),
            ..self
        }
    }

    /// Folds every record committed so far into the sources; returns how many.
    pub async fn catch_up(&mut self) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let records = self.subscription.poll_available().await?;
            if records.is_empty() {
                break;
            }
            total += records.len();
            for record in &records {
                for source in &mut self.sources {
                    source.observe(record);
                }
            }
        }
        self.stats
            .position
            .store(self.subscription.position(), Ordering::Relaxed);
        Ok(total)
    }

    /// Folds what the subscription holds without reading the database (what the in-process
    /// tail brought), unless it may have missed something (at the start, after the tail
    /// lagged): then it reads like `catch_up`. The loop calls this on every wake, so a
    /// caught-up leader costs no query per batch the process commits.
    pub async fn follow(&mut self) -> Result<usize, StoreError> {
        if self.subscription.may_have_missed() {
            return self.catch_up().await;
        }
        let records = self.subscription.take_buffered()?;
        for record in &records {
            for source in &mut self.sources {
                source.observe(record);
            }
        }
        self.stats
            .position
            .store(self.subscription.position(), Ordering::Relaxed);
        Ok(records.len())
    }

    /// How many times the driver read the log (a caught-up driver reads none per batch).
    pub fn log_reads(&self) -> u64 {
        self.subscription.database_reads()
    }

    /// The earliest deadline of any source.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.sources
            .iter()
            .filter_map(|source| source.next_deadline())
            .min()
    }

    /// Bytes the sources hold, by structure, as far as they count them.
    pub fn held_bytes(&self) -> usize {
        self.sources.iter().map(|source| source.held_bytes()).sum()
    }

    pub fn timers(&self) -> usize {
        self.sources.iter().map(|source| source.timers()).sum()
    }

    /// Issues everything due now, in due order across sources, and returns what was done. Work
    /// of one ticket is issued one item after the other; different tickets in parallel, at most
    /// `TICKETS_IN_FLIGHT_MAX` at once. Rounds of at most `ROUND_WORK_MAX` items overlap two
    /// deep: the next round is taken and started (`CommandSink::start_batch`) before the one
    /// in flight is awaited, without the work of tickets that round holds (it waits for the
    /// round after, behind any retry of theirs): a ticket's later item never overtakes an
    /// earlier one that failed, and a round never holds what the round before it still needs
    /// (the API's sink holds each ticket's turn until its round is settled; a round's fallback
    /// waiting for a turn the next round held would wait forever). A round with failures ends
    /// the call once the round started after it is done too; failed items are retried first
    /// next time.
    pub async fn fire(&mut self) -> Vec<Fired> {
        let mut fired = Vec::new();
        let mut in_flight: Option<(Settling, HashSet<domain::TicketId>)> = None;
        loop {
            let now = self.clock.now();
            let mut work = std::mem::take(&mut self.retry);
            for source in &mut self.sources {
                let left = self.round_work_max.saturating_sub(work.len());
                work.extend(source.fire_due(now, left));
            }
            if work.is_empty() {
                break;
            }
            work.sort_by_key(|item| item.due_at);
            if let Some((_, busy)) = &in_flight {
                let (free, held) = work
                    .into_iter()
                    .partition(|item| !busy.contains(&item.ticket));
                work = free;
                self.retry = held;
            }
            let previous = if work.is_empty() {
                in_flight.take()
            } else {
                let tickets = work.iter().map(|item| item.ticket).collect();
                let started = self
                    .sink
                    .clone()
                    .start_batch(self.clock.clone(), work)
                    .await;
                in_flight.replace((started, tickets))
            };
            if let Some((settling, _)) = previous {
                let (done, failed) = tally(&self.stats, settling.await);
                fired.extend(done);
                if !failed.is_empty() {
                    self.retry.extend(failed);
                    break;
                }
            }
        }
        if let Some((settling, _)) = in_flight {
            let (done, failed) = tally(&self.stats, settling.await);
            fired.extend(done);
            self.retry.extend(failed);
        }
        self.retry.sort_by_key(|item| item.due_at);
        self.stats
            .timers
            .store(self.timers() as u64, Ordering::Relaxed);
        fired
    }

    /// One step of reading ahead: asks the sink to read the tickets of the next
    /// `PREFETCH_STEP_MAX` timers due within `PREFETCH_AHEAD` that no step announced yet.
    /// Returns how many tickets it asked for; while steps come back full, `sleep_for` says not
    /// to sleep.
    pub async fn prefetch(&mut self) -> usize {
        let before = self.clock.now() + PREFETCH_AHEAD;
        let mut tickets = Vec::new();
        for source in &mut self.sources {
            let left = PREFETCH_STEP_MAX - tickets.len();
            tickets.extend(source.upcoming(before, left));
        }
        let count = tickets.len();
        self.prefetch_pending = count >= PREFETCH_STEP_MAX;
        if count > 0 {
            self.sink.prefetch(tickets).await;
        }
        count
    }

    /// How long to sleep before the next deadline, at most `IDLE_WAKE_MAX` (none while
    /// prefetching is behind).
    pub fn sleep_for(&self) -> Duration {
        if !self.retry.is_empty() {
            return Duration::from_millis(500);
        }
        if self.prefetch_pending {
            return Duration::ZERO;
        }
        let Some(deadline) = self.next_deadline() else {
            return IDLE_WAKE_MAX;
        };
        let wait = deadline.duration_since(self.clock.now());
        if wait <= SignedDuration::ZERO {
            return Duration::ZERO;
        }
        wait.unsigned_abs().min(IDLE_WAKE_MAX)
    }

    /// Runs until `stop` says so or the leadership check fails.
    async fn run_while_leading(
        &mut self,
        leader: &mut crate::leader::Leader,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut last_check = tokio::time::Instant::now();
        // Read the database at the start and after a wake by the clock (another process may
        // have written); otherwise fold what the tail brings.
        let mut read_log = true;
        loop {
            if *stop.borrow() {
                return;
            }
            if last_check.elapsed() >= LEADER_CHECK_INTERVAL {
                if !leader.still_leading().await {
                    tracing::warn!("sla scheduler: lost leadership");
                    return;
                }
                last_check = tokio::time::Instant::now();
            }
            let caught_up = if read_log {
                self.catch_up().await
            } else {
                self.follow().await
            };
            if let Err(error) = caught_up {
                tracing::warn!(%error, "sla scheduler: reading the log failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                read_log = true;
                continue;
            }
            read_log = false;
            self.fire().await;
            self.prefetch().await;
            if self.prefetch_pending {
                // More tickets to read ahead: step again at once, folding the tail (a wake by
                // the clock would read the log back).
                continue;
            }
            let wait = self.sleep_for().min(LEADER_CHECK_INTERVAL);
            tokio::select! {
                next = self.subscription.next() => {
                    if let Ok(record) = next {
                        for source in &mut self.sources {
                            source.observe(&record);
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => read_log = true,
                changed = stop.changed() => {
                    // A dropped sender stops the scheduler too.
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Runs the scheduler for the life of the process: waits to lead, then builds fresh sources,
/// folds the log and fires; on losing the lead, drops everything and waits again.
pub async fn run<S, F>(
    store: Store,
    sink: Arc<S>,
    clock: Arc<dyn Clock>,
    make_sources: F,
    leadership: Leadership,
    stats: Arc<SchedulerStats>,
    mut stop: watch::Receiver<bool>,
) where
    S: CommandSink,
    F: Fn() -> Vec<Box<dyn TimerSource>> + Send + 'static,
{
    loop {
        let mut leader = tokio::select! {
            leader = leadership.acquire() => leader,
            _ = stop.changed() => return,
        };
        if *stop.borrow() {
            return;
        }
        stats.leader.store(true, Ordering::Relaxed);
        tracing::info!("sla scheduler: leading");
        let mut driver = Driver::new(
            &store,
            sink.clone(),
            clock.clone(),
            make_sources(),
            stats.clone(),
        );
        driver.run_while_leading(&mut leader, &mut stop).await;
        stats.leader.store(false, Ordering::Relaxed);
        leader.release().await;
        if *stop.borrow() {
            return;
        }
    }
}

/// The default `issue_batch`: one `issue` per item; the work of one ticket one item after the
/// other (stopping at its first failure), different tickets concurrently, at most
/// `TICKETS_IN_FLIGHT_MAX` at once.
pub async fn issue_each<S: CommandSink>(
    sink: Arc<S>,
    clock: Arc<dyn Clock>,
    work: Vec<Work>,
) -> Vec<BatchOutcome> {
    // Group by ticket, keeping due order inside each group and between first items.
    let mut groups: BTreeMap<(Timestamp, usize), Vec<Work>> = BTreeMap::new();
    let mut first: std::collections::HashMap<domain::TicketId, (Timestamp, usize)> =
        std::collections::HashMap::new();
    for (n, item) in work.into_iter().enumerate() {
        let key = *first.entry(item.ticket).or_insert((item.due_at, n));
        groups.entry(key).or_default().push(item);
    }
    let mut outcomes = Vec::new();
    let mut tasks = JoinSet::new();
    let mut groups = groups.into_values();
    loop {
        while tasks.len() < TICKETS_IN_FLIGHT_MAX {
            let Some(group) = groups.next() else { break };
            let sink = sink.clone();
            let clock = clock.clone();
            tasks.spawn(async move {
                let mut outcomes = Vec::new();
                let mut items = group.into_iter();
                while let Some(item) = items.next() {
                    let issued = sink.issue(&item).await;
                    let failed = issued.is_err();
                    outcomes.push((item, issued, clock.now()));
                    if failed {
                        // The rest of this ticket's work waits for the failed item's retry.
                        for rest in items.by_ref() {
                            let error = SinkError {
                                message: "an earlier item of the same ticket failed".to_owned(),
                            };
                            outcomes.push((rest, Err(error), clock.now()));
                        }
                    }
                }
                outcomes
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok(group) => outcomes.extend(group),
            Err(error) => tracing::error!(%error, "a scheduler task panicked"),
        }
    }
    outcomes
}

/// Splits a round's outcomes into what was done and what to retry, in due order, and counts
/// them.
fn tally(stats: &SchedulerStats, outcomes: Vec<BatchOutcome>) -> (Vec<Fired>, Vec<Work>) {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (item, issued, processed_at) in outcomes {
        match issued {
            Ok(issued) => done.push(Fired {
                source: item.source,
                command: item.command.name(),
                due_at: item.due_at,
                processed_at,
                issued,
            }),
            Err(error) => {
                tracing::warn!(%error, ticket = %item.ticket.0, "scheduled work failed; retrying");
                failed.push(item);
            }
        }
    }
    failed.sort_by_key(|item| item.due_at);
    for item in &done {
        let lag = item.processed_at.duration_since(item.due_at);
        stats
            .last_lag_ms
            .store(lag.as_millis() as i64, Ordering::Relaxed);
    }
    stats.fired.fetch_add(done.len() as u64, Ordering::Relaxed);
    stats
        .failed
        .fetch_add(failed.len() as u64, Ordering::Relaxed);
    (done, failed)
}
