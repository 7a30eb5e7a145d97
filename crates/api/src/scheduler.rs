//! The scheduler's way into the domain: `ApiSink` issues due work (SLA warnings, breaches,
//! recomputes; time-based automations) as the System actor through the same decide-and-append
//! path as every other command, and `AppState::start_scheduler` runs the driver in the
//! background, with the node's leadership, and keeps its stats for `/metrics`.

use std::sync::{Arc, Mutex};

use domain::{CommandContext, Event, Ticket, TicketId};
use jiff::Timestamp;
use serde_json::json;
use serde_json::value::{to_raw_value, RawValue};
use sla_scheduler::{
    BatchOutcome, CommandSink, Issued, Leadership, Policies, SchedulerStats, Settling, SinkError,
    SlaSource, TimerSource, Work,
};
use store::{AppendError, ExpectedVersion, NewEvent, StreamId};
use tokio::sync::watch;
use uuid::Uuid;

use crate::cache::{Map, Set, TicketTurn};
use crate::error::ApiError;
use crate::tickets::{catch_up, stream_id, system_command, CommandMetadata, SystemOutcome};
use crate::AppState;

/// Makes the extra timer sources (time-based automations) a new leader folds the log into.
pub type SourceFactory = Arc<dyn Fn() -> Vec<Box<dyn TimerSource>> + Send + Sync>;

/// Issues scheduled work through the API's decider.
#[derive(Clone, Debug)]
pub struct ApiSink {
    state: AppState,
    chunk_work_max: usize,
    prefetched: Arc<Mutex<Prefetched>>,
}

/// Most tickets held read ahead of their timers (`CommandSink::prefetch`); beyond it, tickets
/// are read when their work falls due.
pub const PREFETCHED_MAX: usize = 250_000;
/// How long a ticket read ahead is kept for a timer that did not fire (it was answered, or its
/// due time moved).
pub const PREFETCHED_KEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Tickets read ahead of their timers, with when they were read; a batch takes them out. Only a
/// starting point: a batch decides on the cached ticket instead when that one is newer, and the
/// append's expected version turns a ticket changed elsewhere into a conflict, decided again on
/// the per-command path.
#[derive(Debug, Default)]
struct Prefetched {
    tickets: Map<TicketId, (Ticket, std::time::Instant)>,
    swept: Option<std::time::Instant>,
}

impl Prefetched {
    /// Drops what was kept longer than `PREFETCHED_KEEP`, at most once per `PREFETCHED_KEEP`.
    fn sweep(&mut self) {
        let now = std::time::Instant::now();
        if self
            .swept
            .is_some_and(|swept| now.duration_since(swept) < PREFETCHED_KEEP)
        {
            return;
        }
        self.swept = Some(now);
        self.tickets
            .retain(|_, (_, read)| now.duration_since(*read) < PREFETCHED_KEEP);
    }
}

impl ApiSink {
    pub fn new(state: AppState) -> ApiSink {
        ApiSink {
            state,
            chunk_work_max: BATCH_CHUNK_WORK_MAX,
            prefetched: Arc::default(),
        }
    }

    /// How many tickets are held read ahead (tests, benchmarks).
    pub fn prefetched(&self) -> usize {
        self.lock_prefetched().tickets.len()
    }

    fn lock_prefetched(&self) -> std::sync::MutexGuard<'_, Prefetched> {
        self.prefetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The ticket a batch decides on: the cached one or the one read ahead, whichever is newer
    /// (the one read ahead is taken out either way).
    fn take_ticket(&self, ticket_id: TicketId) -> Option<Ticket> {
        let ahead = self
            .lock_prefetched()
            .tickets
            .remove(&ticket_id)
            .map(|(ticket, _)| ticket);
        match (self.state.inner.tickets.get(ticket_id), ahead) {
            (Some(cached), Some(ahead)) if ahead.version > cached.version => Some(ahead),
            (cached, ahead) => cached.or(ahead),
        }
    }

    /// Batches of at most `chunk_work_max` items (at least 1, at most `BATCH_CHUNK_WORK_MAX`):
    /// tests use small ones to cross chunk boundaries.
    pub fn with_chunk_work_max(self, chunk_work_max: usize) -> ApiSink {
        ApiSink {
            chunk_work_max: chunk_work_max.clamp(1, BATCH_CHUNK_WORK_MAX),
            ..self
        }
    }
}

impl CommandSink for ApiSink {
    async fn prefetch(&self, tickets: Vec<TicketId>) {
        let mut wanted: Vec<TicketId> = {
            let mut prefetched = self.lock_prefetched();
            prefetched.sweep();
            let room = PREFETCHED_MAX.saturating_sub(prefetched.tickets.len());
            let mut seen = Set::default();
            tickets
                .into_iter()
                .filter(|ticket_id| {
                    !prefetched.tickets.contains_key(ticket_id) && seen.insert(*ticket_id)
                })
                .take(room)
                .collect()
        };
        // The cache holds the newest version of what this process wrote: no read for those.
        wanted.retain(|ticket_id| !self.state.inner.tickets.contains(*ticket_id));
        if wanted.is_empty() {
            return;
        }
        let mut read: Map<TicketId, Ticket> = wanted
            .iter()
            .map(|ticket_id| (*ticket_id, Ticket::initial()))
            .collect();
        if let Err(error) = fold_streams(&self.state, &wanted, &mut read).await {
            // Only a hint: the work reads its tickets when it falls due.
            tracing::warn!(%error, "sla scheduler: reading tickets ahead failed");
            return;
        }
        let now = std::time::Instant::now();
        let mut prefetched = self.lock_prefetched();
        for (ticket_id, ticket) in read {
            if ticket.version > 0 {
                prefetched.tickets.insert(ticket_id, (ticket, now));
            }
        }
    }

    async fn issue_batch(
        self: Arc<Self>,
        clock: Arc<dyn sla_scheduler::Clock>,
        work: Vec<Work>,
    ) -> Vec<BatchOutcome> {
        start_batch(&self, clock, work).await.await
    }

    async fn start_batch(
        self: Arc<Self>,
        clock: Arc<dyn sla_scheduler::Clock>,
        work: Vec<Work>,
    ) -> Settling {
        start_batch(&self, clock, work).await
    }

    async fn issue(&self, work: &Work) -> Result<Issued, SinkError> {
        let scheduler = work.metadata();
        match system_command(
            &self.state,
            work.ticket,
            &work.command,
            work.command_id,
            scheduler,
        )
        .await
        {
            Ok(SystemOutcome::Appended { position }) => Ok(Issued::Appended { position }),
            Ok(SystemOutcome::Duplicate) => Ok(Issued::Duplicate),
            Ok(SystemOutcome::Unchanged) => Ok(Issued::Unchanged),
            Err(ApiError::Rejected(rejection)) => Ok(Issued::Rejected {
                rule: rejection.to_string(),
            }),
            Err(ApiError::NotFound(message)) => Ok(Issued::Rejected { rule: message }),
            Err(error) => Err(SinkError {
                message: error.to_string(),
            }),
        }
    }
}

/// The batched path of a round of scheduled work (a burst of warnings and breaches). Per item
/// it is what the per-command path does — decide on the ticket as the System actor, append with
/// the ticket's version and the work's command id — but for the whole round at once: tickets
/// not in the cache are read with one query per `store::READ_STREAMS_MAX` streams, each
/// ticket's first item is decided against them, and the appends are queued back to back so
/// that group commit writes them in multi-stream transactions, `BATCH_CHUNK_WORK_MAX` items at
/// a time (a chunk commits while the next is read and decided). The store keeps its invariants
/// (versions, hash chain, command id idempotency), so the outcome is the per-command path's.
/// Anything else — a rejection or a no-op (confirmed against the log there), a version
/// conflict, a reused command id, a ticket whose turn a command in flight holds — goes the
/// per-command path, as do each ticket's later items (after its first has been answered).
/// Returns once every append the batch decided is queued, with the rest to await: the
/// outcomes as the appends commit, then the per-command path for what fell back. The batch
/// holds its tickets' turns until then, so a round started meanwhile sends their work the
/// per-command path, which waits for them.
async fn start_batch(
    sink: &ApiSink,
    clock: Arc<dyn sla_scheduler::Clock>,
    work: Vec<Work>,
) -> Settling {
    let state = &sink.state;
    let mut outcomes: Vec<BatchOutcome> = Vec::with_capacity(work.len());
    let issuer_json = json!({"role": "system", "id": "scheduler"});
    let actor = domain::Actor {
        id: domain::ActorId(Uuid::nil()),
        role: domain::Role::System,
    };
    // Tickets whose first item was seen (their later items take the per-command path), and
    // tickets that could not be read (their items are retried next round).
    // Sized for the round at once: grown step by step, their rehashing showed in the profile
    // of a burst.
    let mut fallen: Set<TicketId> = Set::with_capacity_and_hasher(work.len(), Default::default());
    let mut failed: Set<TicketId> = Set::default();
    let mut fallback: Vec<Work> = Vec::new();
    let mut settling = Vec::new();
    // The batch takes its tickets' turns (without waiting: it holds many at once), so that it
    // does not race a command in flight on the same ticket to the same version; a ticket whose
    // turn is taken goes the per-command path, which waits for it. The turns are held until
    // the appends are answered and cached.
    let mut turns: Map<TicketId, TicketTurn> =
        Map::with_capacity_and_hasher(work.len(), Default::default());
    // Chunk by chunk: the appends of one chunk commit while the next is read and decided.
    let mut work = work.into_iter().peekable();
    while work.peek().is_some() {
        let chunk: Vec<Work> = work.by_ref().take(sink.chunk_work_max).collect();
        let mut tickets: Map<TicketId, Ticket> =
            Map::with_capacity_and_hasher(chunk.len(), Default::default());
        let mut missing: Vec<TicketId> = Vec::new();
        for item in &chunk {
            if fallen.contains(&item.ticket) || failed.contains(&item.ticket) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = turns.entry(item.ticket) {
                match state.inner.ticket_turns.try_turn(item.ticket) {
                    Some(turn) => {
                        entry.insert(turn);
                    }
                    None => {
                        fallen.insert(item.ticket);
                        continue;
                    }
                }
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = tickets.entry(item.ticket) {
                match sink.take_ticket(item.ticket) {
                    Some(ticket) => {
                        entry.insert(ticket);
                    }
                    None => {
                        entry.insert(Ticket::initial());
                        missing.push(item.ticket);
                    }
                }
            }
        }
        if let Err(error) = load_many(state, &missing, &mut tickets).await {
            tracing::warn!(%error, "sla scheduler: reading tickets for a batch failed");
            failed.extend(tickets.drain().map(|(ticket_id, _)| ticket_id));
        }
        // Decide, in due order; queue each append at once.
        let at = state.now();
        let mut event_ids = EventIds::new();
        let mut batched: Vec<Planned> = Vec::with_capacity(chunk.len());
        for item in chunk {
            if failed.contains(&item.ticket) {
                let error = SinkError {
                    message: "reading the ticket failed".to_owned(),
                };
                outcomes.push((item, Err(error), clock.now()));
                continue;
            }
            if fallen.contains(&item.ticket) {
                fallback.push(item);
                continue;
            }
            // Only a ticket's first item is decided here (its later ones fell back above), so
            // the ticket is moved out to be folded forward, not copied.
            let ticket = tickets
                .remove(&item.ticket)
                .expect("every item not fallen or failed had its ticket read");
            let decided = if ticket.version == 0 {
                None
            } else {
                let context =
                    CommandContext::new(at, item.command_id, actor, &state.inner.blueprints);
                match domain::decide(&item.command, &ticket, &context) {
                    Ok(events) if !events.is_empty() => Some(events),
                    _ => None,
                }
            };
            let planned = decided.and_then(|events| {
                let scheduler = item.metadata();
                let metadata = CommandMetadata {
                    actor: &issuer_json,
                    at,
                    causation_id: None,
                    command: item.command.name(),
                    command_id: item.command_id,
                    correlation_id: item.command_id,
                    macro_id: None,
                    request_sha256: "",
                    scheduler: Some(&scheduler),
                };
                let metadata = to_raw_value(&metadata).ok()?;
                let new_events = events
                    .iter()
                    .map(|event| {
                        Some(NewEvent {
                            event_id: event_ids.next(),
                            event_type: event.event_type().to_owned(),
                            schema_version: event.schema_version(),
                            payload: RawValue::from_string(event.to_payload_json()).ok()?,
                            metadata: metadata.clone(),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                let stream = stream_id(item.ticket).ok()?;
                Some((events, stream, new_events))
            });
            // A ticket's later items go the per-command path, after its first: chained in
            // one batch, the second append's expected version would hold even when the first
            // one's did not (the cached ticket was one event behind), and the second was
            // decided on a state the log never had (found by the simulation: a breach recorded
            // without its warning).
            fallen.insert(item.ticket);
            match planned {
                Some((events, stream, new_events)) => {
                    let expected = ExpectedVersion::Exact(ticket.version);
                    let after = events.iter().fold(ticket, domain::evolve);
                    batched.push((item, after, stream, expected, new_events));
                }
                None => fallback.push(item),
            }
        }
        let mut chunk_queued = Vec::with_capacity(batched.len());
        for (item, after, stream, expected, new_events) in batched {
            let append = state
                .inner
                .store
                .append_queued(&stream, expected, new_events, item.command_id)
                .await;
            chunk_queued.push((item, after, append));
        }
        // Each chunk's outcomes are taken as its batches commit, while the next chunk is read
        // and decided, so an item's processed time is when its append was answered.
        // The items are kept aside too: a settling task that fails leaves them to be retried.
        let items: Vec<Work> = chunk_queued.iter().map(|(item, ..)| item.clone()).collect();
        let task = tokio::spawn(settle(state.clone(), clock.clone(), chunk_queued));
        settling.push((items, task));
    }

    let sink = sink.clone();
    Box::pin(async move { settle_round(sink, clock, outcomes, settling, fallback, turns).await })
}

/// The rest of a round `start_batch` started: each chunk's outcomes as its appends commit,
/// then, with the round's turns let go, the per-command path for what fell back.
async fn settle_round(
    sink: ApiSink,
    clock: Arc<dyn sla_scheduler::Clock>,
    mut outcomes: Vec<BatchOutcome>,
    settling: Vec<ChunkSettling>,
    mut fallback: Vec<Work>,
    turns: Map<TicketId, TicketTurn>,
) -> Vec<BatchOutcome> {
    for (items, task) in settling {
        match task.await {
            Ok((settled, conflicted)) => {
                outcomes.extend(settled);
                fallback.extend(conflicted);
            }
            Err(error) => {
                // Every item is answered: these are retried next round (an append that did
                // commit is then a duplicate of its command id, nothing more).
                tracing::error!(%error, "sla scheduler: a batch's settling panicked");
                let message = format!("settling the batch failed: {error}");
                outcomes.extend(items.into_iter().map(|item| {
                    let error = SinkError {
                        message: message.clone(),
                    };
                    (item, Err(error), clock.now())
                }));
            }
        }
    }
    // The per-command path takes each ticket's turn itself.
    drop(turns);
    // The per-command path, for the rest: one ticket's items in order, tickets concurrently.
    if !fallback.is_empty() {
        fallback.sort_by_key(|item| item.due_at);
        let clock = Arc::new(StateClock(sink.state.clone()));
        let sink = Arc::new(sink);
        outcomes.extend(sla_scheduler::driver::issue_each(sink, clock, fallback).await);
    }
    outcomes
}

/// Version 7 event ids for a chunk of the batched path: the clock read once and the random
/// bits drawn `EVENT_IDS_DRAWN` ids at a time (`Uuid::now_v7` makes a `getrandom` system call
/// for every id: 9% of the driver's thread, 2% of all CPU, in the profile of a burst of
/// breaches). Ids of one chunk share its millisecond and are not ordered within it; nothing
/// orders events by id (positions do).
struct EventIds {
    millis: u64,
    random: [u8; 10 * EVENT_IDS_DRAWN],
    used: usize,
}

const EVENT_IDS_DRAWN: usize = 256;

impl EventIds {
    fn new() -> EventIds {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        EventIds {
            millis,
            random: [0; 10 * EVENT_IDS_DRAWN],
            used: 10 * EVENT_IDS_DRAWN,
        }
    }

    fn next(&mut self) -> Uuid {
        if self.used == self.random.len() {
            // Without the system's random source no id can be made: `Uuid::now_v7` panics
            // then too.
            getrandom::fill(&mut self.random).expect("the system's random source");
            self.used = 0;
        }
        let mut bits = [0u8; 10];
        bits.copy_from_slice(&self.random[self.used..self.used + 10]);
        self.used += 10;
        uuid::Builder::from_unix_timestamp_millis(self.millis, &bits).into_uuid()
    }
}

/// A chunk of the batched path being settled: its items (retried if the task fails), and the
/// task taking its outcomes (`settle`).
type ChunkSettling = (
    Vec<Work>,
    tokio::task::JoinHandle<(Vec<BatchOutcome>, Vec<Work>)>,
);

/// A queued append of the batched path: the work, the ticket after its events, the append.
type Queued = (Work, Ticket, Result<store::QueuedAppend, AppendError>);

/// Takes the outcomes of a chunk's appends in order as they commit, each with the time it was
/// answered: an appended item caches the ticket it left; a conflict (the ticket moved since it
/// was read) or a reused command id comes back to be decided again on the per-command path.
async fn settle(
    state: AppState,
    clock: Arc<dyn sla_scheduler::Clock>,
    queued: Vec<Queued>,
) -> (Vec<BatchOutcome>, Vec<Work>) {
    let mut outcomes = Vec::with_capacity(queued.len());
    let mut conflicted = Vec::new();
    for (item, after, append) in queued {
        let outcome = match append {
            Ok(queued) => queued.outcome().await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(outcome) => {
                let issued = if outcome.duplicate {
                    Issued::Duplicate
                } else {
                    state.inner.tickets.put(item.ticket, after);
                    Issued::Appended {
                        position: outcome.last_position,
                    }
                };
                outcomes.push((item, Ok(issued), clock.now()));
            }
            Err(AppendError::Store(error)) => {
                let error = SinkError {
                    message: error.to_string(),
                };
                outcomes.push((item, Err(error), clock.now()));
            }
            Err(_) => conflicted.push(item),
        }
    }
    (outcomes, conflicted)
}

/// Reads the streams of `missing` tickets and folds them into `tickets` (`fold_streams`), then
/// caches them.
async fn load_many(
    state: &AppState,
    missing: &[TicketId],
    tickets: &mut Map<TicketId, Ticket>,
) -> Result<(), ApiError> {
    fold_streams(state, missing, tickets).await?;
    for ticket_id in missing {
        // Cached only once committed: these are, they were read from the log.
        if let Some(ticket) = tickets.get(ticket_id) {
            if ticket.version > 0 {
                state.inner.tickets.put(*ticket_id, ticket.clone());
            }
        }
    }
    Ok(())
}

/// Reads the streams of `missing` tickets (one query per `store::READ_STREAMS_MAX` streams)
/// and folds them into `tickets` (each starting from what `tickets` holds, `Ticket::initial()`
/// for a ticket not read yet); a stream the read cut short is read on by itself.
async fn fold_streams(
    state: &AppState,
    missing: &[TicketId],
    tickets: &mut Map<TicketId, Ticket>,
) -> Result<(), ApiError> {
    let streams = missing
        .iter()
        .map(|ticket_id| stream_id(*ticket_id))
        .collect::<Result<Vec<_>, _>>()?;
    for chunk in streams.chunks(store::READ_STREAMS_MAX) {
        let records = state
            .inner
            .store
            .read_streams(chunk, store::READ_LIMIT_MAX)
            .await?;
        // The appends about to be decided go to these streams: the writer plans them from
        // memory instead of reading their heads back (`Store::hint_stream_heads`).
        state.inner.store.hint_stream_heads(&records).await?;
        let cut = records.len() >= store::READ_LIMIT_MAX;
        for record in &records {
            let Some(ticket_id) = sla_scheduler::source::ticket_of(record) else {
                continue;
            };
            let Some(ticket) = tickets.get_mut(&ticket_id) else {
                continue;
            };
            if record.stream_version != ticket.version + 1 {
                continue;
            }
            let event =
                Event::from_stored(&record.event_type, record.schema_version, &record.payload)
                    .map_err(|error| {
                        ApiError::Internal(format!(
                            "{} at {}: {error}",
                            record.event_type, record.position
                        ))
                    })?;
            *ticket = domain::evolve(std::mem::replace(ticket, Ticket::initial()), &event);
        }
        if cut {
            for stream in chunk {
                let Some(ticket_id) = stream
                    .as_str()
                    .strip_prefix("ticket-")
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .map(TicketId)
                else {
                    continue;
                };
                let ticket = tickets.remove(&ticket_id).unwrap_or_else(Ticket::initial);
                let ticket = catch_up(state, ticket_id, ticket).await?;
                tickets.insert(ticket_id, ticket);
            }
        }
    }
    Ok(())
}

/// A work item decided in a batch: the ticket after it, and its append.
type Planned = (Work, Ticket, StreamId, ExpectedVersion, Vec<NewEvent>);

/// Work items read and decided before their appends are queued; the next chunk is read while
/// these commit.
pub const BATCH_CHUNK_WORK_MAX: usize = 2_000;

/// The API's clock, for the driver.
#[derive(Clone, Debug)]
pub struct StateClock(pub AppState);

impl sla_scheduler::Clock for StateClock {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

impl AppState {
    /// Starts the scheduler in the background: it waits for the lead (always at once on
    /// SQLite), then folds the log and fires. `stop` ends it. Returns its stats.
    pub fn start_scheduler(
        &self,
        policies: Arc<Policies>,
        extra_sources: Option<SourceFactory>,
        leadership: Leadership,
        stop: watch::Receiver<bool>,
    ) -> Arc<SchedulerStats> {
        let stats = Arc::new(SchedulerStats::default());
        let _ = self.inner.sla.set(SlaRuntime {
            policies: policies.clone(),
            stats: stats.clone(),
        });
        let make_sources = move || {
            let mut sources: Vec<Box<dyn TimerSource>> =
                vec![Box::new(SlaSource::new(policies.clone()))];
            if let Some(extra) = &extra_sources {
                sources.extend(extra());
            }
            sources
        };
        tokio::spawn(sla_scheduler::driver::run(
            self.store().clone(),
            Arc::new(ApiSink::new(self.clone())),
            Arc::new(StateClock(self.clone())),
            make_sources,
            leadership,
            stats.clone(),
            stop,
        ));
        stats
    }

    /// The SLA policies in force, once the scheduler started.
    pub fn sla_policies(&self) -> Option<&Arc<Policies>> {
        self.inner.sla.get().map(|runtime| &runtime.policies)
    }
}

/// What the API knows of the running scheduler.
#[derive(Debug)]
pub(crate) struct SlaRuntime {
    pub policies: Arc<Policies>,
    pub stats: Arc<SchedulerStats>,
}

/// The SLA view's questions, answered by the policies in force.
#[derive(Clone, Copy, Debug)]
pub struct PolicyRules<'a>(pub &'a Policies);

impl projections::sla::SlaRules for PolicyRules<'_> {
    fn pauses_on_pending(&self, policy_id: &str, metric: &str) -> bool {
        let Some(metric) = sla_scheduler::Metric::parse(metric) else {
            return metric != "first_response";
        };
        self.0
            .by_id(policy_id)
            .map_or(metric != sla_scheduler::Metric::FirstResponse, |policy| {
                policy.pause_on_pending[metric.index()]
            })
    }

    fn calendar(&self, policy_id: &str) -> Option<&domain::calendar::BusinessCalendar> {
        self.0.by_id(policy_id).map(|policy| &policy.calendar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_of_a_chunk_are_distinct_version_7_ids_of_its_millisecond() {
        let mut ids = EventIds::new();
        let drawn: Vec<Uuid> = (0..3 * EVENT_IDS_DRAWN + 7).map(|_| ids.next()).collect();
        let distinct: std::collections::HashSet<Uuid> = drawn.iter().copied().collect();
        assert_eq!(distinct.len(), drawn.len(), "across refills too");
        for id in &drawn {
            assert_eq!(id.get_version_num(), 7);
            let (seconds, nanos) = id.get_timestamp().expect("a v7 id").to_unix();
            assert_eq!(seconds * 1000 + u64::from(nanos) / 1_000_000, ids.millis);
        }
    }
}
