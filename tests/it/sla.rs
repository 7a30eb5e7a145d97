//! The SLA scheduler end to end: the real driver, the API's decider and a real store (SQLite,
//! and PostgreSQL when configured), with a manual clock in milliseconds. Exactly once after a
//! restart, after a crash mid-fire, after three hours of downtime, with two nodes firing at once,
//! and across a leader failover on PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::scheduler::{ApiSink, StateClock};
use api::AppState;
use domain::{Command, CreateTicket, Requester, TicketId, TicketNumber};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use sla_scheduler::{
    BatchOutcome, CommandSink, Driver, Issued, Leadership, Policies, SchedulerStats, Settling,
    SinkError, SlaConfig, SlaSource, TimerSource, Work, SCHEDULER_LOCK,
};
use store::scratch::ScratchDb;
use store::Store;
use uuid::Uuid;

/// First response within 60 minutes, resolution within 120, warnings at half-time; 24x7.
pub const POLICIES: &str = r#"
version = 1
[[policies]]
id = "fast"
warning = "50%"
targets.first_response = "60m"
targets.resolution = "120m"
[[policies.escalations]]
rule = "raise"
on = "breach"
metrics = ["first_response"]
raise_priority = "urgent"
"#;

pub fn policies(text: &str) -> Arc<Policies> {
    let config: SlaConfig = toml::from_str(text).expect("test policies parse");
    Arc::new(Policies::compile(&config).expect("test policies compile"))
}

#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(at)))
    }
    pub fn advance_ms(&self, ms: i64) {
        let mut now = self.0.lock().unwrap();
        *now += SignedDuration::from_millis(ms);
    }
}

impl api::Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// One `docket serve` node: its own store handle and API state on the shared database.
pub struct Node {
    pub store: Store,
    pub state: AppState,
}

impl Node {
    pub async fn start(db: &ScratchDb, clock: Arc<ManualClock>) -> Node {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        let state = AppState::start(
            store.clone(),
            domain::BlueprintCatalog::builtin(),
            clock,
            api::ApiConfig::default(),
        )
        .await
        .unwrap();
        Node { store, state }
    }

    /// A fresh driver, as a restarted or newly elected node builds it.
    pub fn driver(&self, policies: &Arc<Policies>) -> Driver<ApiSink> {
        self.driver_with(ApiSink::new(self.state.clone()), policies)
    }

    pub fn driver_with<S: CommandSink>(&self, sink: S, policies: &Arc<Policies>) -> Driver<S> {
        let sources: Vec<Box<dyn TimerSource>> = vec![Box::new(SlaSource::new(policies.clone()))];
        Driver::new(
            &self.store,
            Arc::new(sink),
            Arc::new(StateClock(self.state.clone())),
            sources,
            Arc::new(SchedulerStats::default()),
        )
    }

    /// Opens ticket `n` (as an integration would), at the clock's time.
    pub async fn create(&self, n: u128) -> TicketId {
        let ticket_id = TicketId(Uuid::from_u128(0x5_1a00_0000 + n));
        let command = Command::CreateTicket(CreateTicket {
            ticket_id,
            number: TicketNumber(n as u64 + 1),
            channel: domain::Channel::Email,
            requester: Requester {
                id: domain::CustomerId(Uuid::from_u128(0xc0 + n)),
                name: None,
                email: None,
            },
            subject: format!("ticket {n}"),
            description: String::new(),
            ticket_type: "question".to_owned(),
            priority: domain::Priority::Normal,
            tags: vec![],
            fields: BTreeMap::new(),
            attachments: vec![],
        });
        api::system_command(
            &self.state,
            ticket_id,
            &command,
            Uuid::from_u128(0x5_1a00_0000 + n),
            json!({"source": "test"}),
        )
        .await
        .unwrap();
        ticket_id
    }
}

/// One SLA event as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaEvent {
    pub ticket: String,
    pub event_type: String,
    pub metric: String,
    pub due_at: Option<Timestamp>,
    pub observed_at: Option<Timestamp>,
    /// The due time of the scheduler's work, from the metadata.
    pub fired_due_at: Option<Timestamp>,
}

pub async fn sla_events(store: &Store) -> Vec<SlaEvent> {
    tests::read_whole_log(store)
        .await
        .unwrap()
        .into_iter()
        .filter(|record| {
            record.event_type.starts_with("Sla")
                || record.event_type == "Escalated"
                || record.event_type == "PriorityChangedByRule"
        })
        .map(|record| {
            let payload: Value = serde_json::from_str(&record.payload).unwrap();
            let metadata: Value = serde_json::from_str(&record.metadata).unwrap();
            let time = |value: &Value| value.as_str().and_then(|text| text.parse().ok());
            SlaEvent {
                ticket: record.stream_id.clone(),
                event_type: record.event_type.clone(),
                metric: payload["metric"].as_str().unwrap_or_default().to_owned(),
                due_at: time(&payload["due_at"]),
                observed_at: time(&payload["observed_at"]),
                fired_due_at: time(&metadata["scheduler"]["due_at"]),
            }
        })
        .collect()
}

/// The warnings and breaches in the log (of one ticket's stream, or all), as (type, metric).
fn warnings_and_breaches<'a>(
    events: &'a [SlaEvent],
    stream: Option<&str>,
) -> Vec<(&'a str, &'a str)> {
    events
        .iter()
        .filter(|event| {
            stream.is_none_or(|stream| event.ticket == stream)
                && ["SlaWarningRaised", "SlaBreached"].contains(&event.event_type.as_str())
        })
        .map(|event| (event.event_type.as_str(), event.metric.as_str()))
        .collect()
}

/// Both clocks of the test policy warned, then breached, in due order.
const EACH_WARNED_THEN_BREACHED: [(&str, &str); 4] = [
    ("SlaWarningRaised", "first_response"),
    ("SlaBreached", "first_response"),
    ("SlaWarningRaised", "resolution"),
    ("SlaBreached", "resolution"),
];

fn count(events: &[SlaEvent], event_type: &str) -> usize {
    events
        .iter()
        .filter(|event| event.event_type == event_type)
        .count()
}

fn start() -> Timestamp {
    "2026-11-02T09:00:00Z".parse().unwrap()
}

const MINUTE_MS: i64 = 60_000;

#[tokio::test]
async fn downtime_restarts_and_a_crash_mid_fire_fire_each_timer_once_in_due_order() {
    for db in ScratchDb::all().await {
        let clock = ManualClock::new(start());
        let node = Node::start(&db, clock.clone()).await;
        let policies = policies(POLICIES);
        let mut driver = node.driver(&policies);
        // Ten tickets, one a minute: first response due 60 min after each, warning at 30.
        for n in 0..10 {
            node.create(n).await;
            clock.advance_ms(MINUTE_MS);
        }
        driver.catch_up().await.unwrap();
        let applied = driver.fire().await;
        assert_eq!(applied.len(), 10, "one ApplySla per ticket");
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await, vec![], "nothing is due yet");
        // The server goes down at minute 20 for three hours: every warning, breach and
        // escalation of the ten tickets comes due meanwhile.
        clock.advance_ms(10 * MINUTE_MS);
        drop(driver);
        clock.advance_ms(3 * 60 * MINUTE_MS);
        let mut driver = node.driver(&policies);
        driver.catch_up().await.unwrap();
        let fired = driver.fire().await;
        // Per ticket: first-response warning and breach, resolution warning and breach.
        assert_eq!(fired.len(), 40);
        let dues: Vec<Timestamp> = fired.iter().map(|fired| fired.due_at).collect();
        let mut sorted = dues.clone();
        sorted.sort();
        assert_eq!(dues.len(), sorted.len());
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await, vec![], "each fires once");
        // A second restart finds everything recorded and fires nothing.
        let mut restarted = node.driver(&policies);
        restarted.catch_up().await.unwrap();
        assert_eq!(restarted.fire().await, vec![]);
        let events = sla_events(&node.store).await;
        assert_eq!(count(&events, "SlaWarningRaised"), 20);
        assert_eq!(count(&events, "SlaBreached"), 20);
        assert_eq!(count(&events, "PriorityChangedByRule"), 10);
        for event in events
            .iter()
            .filter(|event| event.event_type == "SlaBreached")
        {
            // Due during the downtime, processed after it: both recorded.
            let (due, observed) = (event.due_at.unwrap(), event.observed_at.unwrap());
            assert_eq!(event.fired_due_at, Some(due));
            assert!(observed.duration_since(due) >= SignedDuration::from_mins(60));
        }
        // Per ticket, in due order: warnings before breaches, first response before resolution.
        let mut by_ticket: BTreeMap<&str, Vec<Timestamp>> = BTreeMap::new();
        for event in &events {
            if let Some(due) = event.fired_due_at {
                by_ticket.entry(&event.ticket).or_default().push(due);
            }
        }
        for dues in by_ticket.values() {
            assert!(dues.windows(2).all(|pair| pair[0] <= pair[1]), "{dues:?}");
        }
        db.cleanup().await;
    }
}

/// A sink that dies after appending its `crash_after`-th item: the append is durable, but the
/// driver never hears of it (a crash between the commit and the acknowledgement).
struct CrashingSink {
    inner: ApiSink,
    crash_after: usize,
    issued: Mutex<usize>,
}

impl CommandSink for CrashingSink {
    async fn issue(&self, work: &Work) -> Result<Issued, SinkError> {
        let dead = || SinkError {
            message: "the process died".to_owned(),
        };
        {
            let mut issued = self.issued.lock().unwrap();
            if *issued >= self.crash_after {
                return Err(dead());
            }
            *issued += 1;
        }
        let outcome = self.inner.issue(work).await?;
        if *self.issued.lock().unwrap() >= self.crash_after {
            return Err(dead());
        }
        Ok(outcome)
    }
}

#[tokio::test]
async fn a_crash_mid_fire_and_two_nodes_firing_at_once_record_each_breach_once() {
    for db in ScratchDb::all().await {
        let clock = ManualClock::new(start());
        let node = Node::start(&db, clock.clone()).await;
        let other = Node::start(&db, clock.clone()).await;
        let policies = policies(POLICIES);
        for n in 0..6 {
            node.create(n).await;
        }
        let mut driver = node.driver(&policies);
        driver.catch_up().await.unwrap();
        driver.fire().await;
        clock.advance_ms(59 * MINUTE_MS);
        // The node crashes after its third append of the burst of warnings.
        let mut crashing = node.driver_with(
            CrashingSink {
                inner: ApiSink::new(node.state.clone()),
                crash_after: 3,
                issued: Mutex::new(0),
            },
            &policies,
        );
        crashing.catch_up().await.unwrap();
        crashing.fire().await;
        drop(crashing);
        // Two nodes (a leader and one that wrongly believes it leads) fire the same work.
        clock.advance_ms(2 * 60 * MINUTE_MS);
        let mut first = node.driver(&policies);
        let mut second = other.driver(&policies);
        first.catch_up().await.unwrap();
        second.catch_up().await.unwrap();
        let (a, b) = tokio::join!(first.fire(), second.fire());
        let appended = a
            .iter()
            .chain(&b)
            .filter(|fired| matches!(fired.issued, Issued::Appended { .. }))
            .count();
        let events = sla_events(&node.store).await;
        assert_eq!(count(&events, "SlaWarningRaised"), 12, "{events:#?}");
        assert_eq!(count(&events, "SlaBreached"), 12);
        assert_eq!(count(&events, "PriorityChangedByRule"), 6);
        // The crash left 3 first-response warnings; then 6 first-response breaches and 6
        // resolution warnings and breaches: each appended by exactly one of the two nodes.
        assert_eq!(appended, 3 + 18, "{a:#?} {b:#?}");
        db.cleanup().await;
    }
}

/// A node whose process dies in the middle of a batched round: the first `durable` items of
/// the round were appended (their group commits done), then it died before any outcome reached
/// the driver, so it knows of none of them.
struct DiesMidBatch {
    inner: Arc<ApiSink>,
    durable: usize,
}

fn dead() -> SinkError {
    SinkError {
        message: "the process died".to_owned(),
    }
}

impl CommandSink for DiesMidBatch {
    async fn issue(&self, _: &Work) -> Result<Issued, SinkError> {
        Err(dead())
    }

    async fn issue_batch(
        self: Arc<Self>,
        clock: Arc<dyn sla_scheduler::Clock>,
        work: Vec<Work>,
    ) -> Vec<BatchOutcome> {
        let durable = work[..self.durable.min(work.len())].to_vec();
        let outcomes = self.inner.clone().issue_batch(clock.clone(), durable).await;
        assert!(outcomes
            .iter()
            .all(|(_, issued, _)| matches!(issued, Ok(Issued::Appended { .. }))));
        work.into_iter()
            .map(|item| (item, Err(dead()), clock.now()))
            .collect()
    }
}

/// A sink whose first round fails as a whole (the database went away for a moment), after
/// the driver has already taken the next round.
struct FailsFirstRound {
    inner: Arc<ApiSink>,
    failed: std::sync::atomic::AtomicBool,
}

impl CommandSink for FailsFirstRound {
    async fn issue(&self, work: &Work) -> Result<Issued, SinkError> {
        self.inner.issue(work).await
    }

    async fn start_batch(
        self: Arc<Self>,
        clock: Arc<dyn sla_scheduler::Clock>,
        work: Vec<Work>,
    ) -> Settling {
        if self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return self.inner.clone().start_batch(clock, work).await;
        }
        let outcomes: Vec<BatchOutcome> = work
            .into_iter()
            .map(|item| (item, Err(dead()), clock.now()))
            .collect();
        Box::pin(async move { outcomes })
    }
}

#[tokio::test]
async fn a_failed_round_is_retried_before_the_later_work_of_its_tickets() {
    let db = ScratchDb::sqlite().await;
    let clock = ManualClock::new(start());
    let node = Node::start(&db, clock.clone()).await;
    let policies = policies(POLICIES);
    node.create(0).await;
    let mut driver = node.driver(&policies);
    driver.catch_up().await.unwrap();
    driver.fire().await;
    // Warnings and breaches of both metrics are all overdue; rounds of one item each, so the
    // ticket's first-response warning is the first round and its breach the next.
    clock.advance_ms(3 * 60 * MINUTE_MS);
    let mut driver = node
        .driver_with(
            FailsFirstRound {
                inner: Arc::new(ApiSink::new(node.state.clone())),
                failed: Default::default(),
            },
            &policies,
        )
        .with_round_work_max(1);
    driver.catch_up().await.unwrap();
    let before = sla_events(&node.store).await.len();
    assert_eq!(driver.fire().await, vec![], "the first round failed");
    assert_eq!(
        sla_events(&node.store).await.len(),
        before,
        "nothing overtook the failed round"
    );
    let fired = driver.fire().await;
    assert!(fired.len() >= 4, "{fired:#?}");
    let recorded: Vec<(String, String)> = sla_events(&node.store)
        .await
        .into_iter()
        .filter(|event| event.event_type.starts_with("Sla"))
        .map(|event| (event.event_type, event.metric))
        .collect();
    let first_response = |event_type: &str| (event_type.to_owned(), "first_response".to_owned());
    let warned = recorded
        .iter()
        .position(|event| *event == first_response("SlaWarningRaised"));
    let breached = recorded
        .iter()
        .position(|event| *event == first_response("SlaBreached"));
    assert!(
        warned.is_some() && warned < breached,
        "the warning before the breach: {recorded:#?}"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_batch_records_each_fire_once() {
    for db in ScratchDb::all().await {
        let clock = ManualClock::new(start());
        let node = Node::start(&db, clock.clone()).await;
        let policies = policies(POLICIES);
        for n in 0..10 {
            node.create(n).await;
        }
        let mut driver = node.driver(&policies);
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await.len(), 10, "one ApplySla per ticket");
        drop(driver);
        // Every warning and breach of the ten tickets is due: one batched round of 40.
        clock.advance_ms(3 * 60 * MINUTE_MS);
        let mut crashing = node.driver_with(
            DiesMidBatch {
                inner: Arc::new(ApiSink::new(node.state.clone()).with_chunk_work_max(5)),
                durable: 17,
            },
            &policies,
        );
        crashing.catch_up().await.unwrap();
        assert_eq!(crashing.fire().await, vec![], "the driver heard of nothing");
        drop(crashing);
        let events = sla_events(&node.store).await;
        let written = count(&events, "SlaBreached") + count(&events, "SlaWarningRaised");
        assert_eq!(written, 17, "the batch's first 17 items are durable");
        // Restarted, the leader folds the log and fires what the batch did not write.
        let mut driver = node.driver(&policies);
        driver.catch_up().await.unwrap();
        let fired = driver.fire().await;
        let fires = fired
            .iter()
            .filter(|fired| fired.command.starts_with("record_sla_"))
            .collect::<Vec<_>>();
        assert_eq!(fires.len(), 40 - 17, "{fired:#?}");
        assert!(fires
            .iter()
            .all(|fired| matches!(fired.issued, Issued::Appended { .. })));
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await, vec![], "each fires once");
        let events = sla_events(&node.store).await;
        assert_eq!(count(&events, "SlaWarningRaised"), 20);
        assert_eq!(count(&events, "SlaBreached"), 20);
        assert_eq!(count(&events, "PriorityChangedByRule"), 10);
        db.cleanup().await;
    }
}

/// Regression (found by the simulation): a node's cached ticket one event behind the log (another
/// node tagged it) let a round's first item fail its version check while the ticket's second
/// item, chained after it in the same batch, passed it — a breach recorded without its warning,
/// decided on a state the log never had.
#[tokio::test]
async fn a_ticket_moved_by_another_node_gets_its_warning_before_its_breach() {
    for db in ScratchDb::all().await {
        let clock = ManualClock::new(start());
        let node = Node::start(&db, clock.clone()).await;
        let other = Node::start(&db, clock.clone()).await;
        let policies = policies(POLICIES);
        let ticket_id = node.create(0).await;
        let mut driver = node.driver(&policies);
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await.len(), 1, "ApplySla");
        // The other node moves the ticket on; this node's cache does not know.
        let tag = Command::AddTags(domain::AddTags {
            tags: vec!["moved".to_owned()],
        });
        api::system_command(
            &other.state,
            ticket_id,
            &tag,
            Uuid::from_u128(0x7a9),
            json!({"source": "test"}),
        )
        .await
        .unwrap();
        // Every warning and breach is due in one round.
        clock.advance_ms(3 * 60 * MINUTE_MS);
        driver.catch_up().await.unwrap();
        driver.fire().await;
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await, vec![]);
        let events = sla_events(&node.store).await;
        assert_eq!(
            warnings_and_breaches(&events, None),
            EACH_WARNED_THEN_BREACHED,
            "{events:#?}"
        );
        db.cleanup().await;
    }
}

/// The batched path against the per-command path: the same burst, through each, records the
/// same events (types, streams, payloads, in due order per ticket).
#[tokio::test]
async fn a_batched_round_records_what_the_per_command_path_does() {
    let mut recorded = Vec::new();
    // Chunks of 2000 (one per round here), of 3 (rounds cross chunks), chunks of 3 in rounds of
    // 2 and of 5 (rounds overlap, and a ticket's items fall in different rounds), and one by
    // one (the last, which every other must equal).
    let cases = [
        (true, 2000, 10_000),
        (true, 3, 10_000),
        (true, 3, 2),
        (true, 3, 5),
    ];
    for (batched, chunk, round) in cases.into_iter().chain([(false, 0, 10_000)]) {
        let db = ScratchDb::sqlite().await;
        let clock = ManualClock::new(start());
        let node = Node::start(&db, clock.clone()).await;
        let policies = policies(POLICIES);
        for n in 0..8 {
            node.create(n).await;
            clock.advance_ms(MINUTE_MS);
        }
        let sink = ApiSink::new(node.state.clone()).with_chunk_work_max(chunk);
        for minutes in [0, 45, 70, 200] {
            clock.advance_ms(minutes * MINUTE_MS);
            let fired = if batched {
                let mut driver = node
                    .driver_with(sink.clone(), &policies)
                    .with_round_work_max(round);
                driver.catch_up().await.unwrap();
                driver.fire().await
            } else {
                let mut driver = node.driver_with(OneByOne(sink.clone()), &policies);
                driver.catch_up().await.unwrap();
                driver.fire().await
            };
            assert!(fired
                .iter()
                .all(|fired| matches!(fired.issued, Issued::Appended { .. })));
        }
        let mut events = Vec::new();
        let mut position = 0;
        loop {
            let page = node.store.read_all(position, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            position = last.position;
            events.extend(page.into_iter().map(|record| {
                (
                    record.stream_id,
                    record.stream_version,
                    record.event_type,
                    record.payload,
                )
            }));
        }
        events.sort();
        recorded.push(events);
        db.cleanup().await;
    }
    let one_by_one = recorded.pop().expect("the per-command case");
    for (case, events) in cases.iter().zip(&recorded) {
        assert_eq!(events, &one_by_one, "{case:?}");
    }
    assert!(one_by_one.len() > 8 * 4);
}

/// The per-command path alone: the default `issue_batch`.
struct OneByOne(ApiSink);

impl CommandSink for OneByOne {
    async fn issue(&self, work: &Work) -> Result<Issued, SinkError> {
        self.0.issue(work).await
    }
}

#[tokio::test]
async fn on_postgresql_one_node_leads_and_another_takes_over_within_five_seconds() {
    let Some(db) = ScratchDb::postgres().await else {
        return;
    };
    let store_a = Store::open_with(db.config.clone()).await.unwrap();
    let store_b = Store::open_with(db.config.clone()).await.unwrap();
    let fast = |store: &Store| match Leadership::for_store(store, SCHEDULER_LOCK) {
        Leadership::Postgres { pool, lock, .. } => Leadership::Postgres {
            pool,
            lock,
            retry: Duration::from_millis(100),
        },
        Leadership::Single => panic!("a PostgreSQL store elects"),
    };
    let (a, b) = (fast(&store_a), fast(&store_b));
    let mut leader = a
        .try_acquire()
        .await
        .unwrap()
        .expect("the first node leads");
    assert!(
        b.try_acquire().await.unwrap().is_none(),
        "one leader at a time"
    );
    // Another task's lock is another election: it does not wait for the scheduler's leader.
    let other_task = Leadership::for_store(&store_b, "docket.test.other-task")
        .try_acquire()
        .await
        .unwrap()
        .expect("a differently named lock is free");
    other_task.release().await;
    assert!(leader.still_leading().await);
    // The leader's connection is cut (its node died, or the network did). Only this test's: a
    // cut of every advisory lock holder on the server also cut other tests' connections (a
    // migration holds one), which then failed with "terminating connection due to
    // administrator command".
    let mut admin = db.postgres_connection().await.unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(locks.pid)) FROM pg_locks locks
         JOIN pg_stat_activity activity ON activity.pid = locks.pid
         WHERE locks.locktype = 'advisory' AND locks.granted AND activity.application_name = $1",
    )
    .bind(&db.config.application_name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(killed >= 1);
    assert!(
        !leader.still_leading().await,
        "a lost connection is a lost lead"
    );
    let took_over = tokio::time::timeout(Duration::from_secs(5), b.acquire()).await;
    let successor = took_over.expect("another node leads within 5 s");
    assert!(a.try_acquire().await.unwrap().is_none());
    successor.release().await;
    leader.release().await;
    assert!(
        a.try_acquire().await.unwrap().is_some(),
        "a released lock is free"
    );
    db.cleanup().await;
}

#[tokio::test]
async fn on_sqlite_the_single_node_leads() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let leadership = Leadership::for_store(&store, SCHEDULER_LOCK);
    assert!(matches!(leadership, Leadership::Single));
    let mut leader = leadership.acquire().await;
    assert!(leader.still_leading().await);
    db.cleanup().await;
}

/// Regression: the driver read the log on every wake, one query per batch the process
/// committed. A caught-up driver folds what the in-process tail brings (new tickets, its own
/// `SlaApplied`) and reads the database only at the start or when the tail may have missed
/// something.
#[tokio::test]
async fn a_caught_up_driver_follows_the_tail_without_reading_the_log() {
    let db = ScratchDb::sqlite().await;
    let clock = ManualClock::new(start());
    let node = Node::start(&db, clock.clone()).await;
    let policies = policies(POLICIES);
    let mut driver = node.driver(&policies);
    driver.catch_up().await.unwrap();
    let reads = driver.log_reads();
    assert!(reads > 0, "the first catch-up reads the log");
    for n in 0..20 {
        node.create(n).await;
        assert_eq!(driver.follow().await.unwrap(), 1, "ticket {n} created");
        assert_eq!(driver.fire().await.len(), 1, "ticket {n}: one ApplySla");
        assert_eq!(
            driver.follow().await.unwrap(),
            1,
            "ticket {n}: its SlaApplied"
        );
    }
    assert_eq!(driver.log_reads(), reads);
    assert_eq!(
        driver.timers(),
        20 * 4,
        "a warning and a breach for each ticket's first response and resolution"
    );
    db.cleanup().await;
}

/// Tickets read ahead of their timers are a hint, never the truth: a ticket moved after it was
/// read ahead — by this node (its cache is newer) or by another node (only the log knows) —
/// still gets each warning and breach once, in order, decided on its latest version; a ticket
/// nobody moved is decided on what was read ahead.
#[tokio::test]
async fn tickets_read_ahead_that_move_before_their_timers_fire_are_decided_on_their_latest_version()
{
    for db in ScratchDb::all().await {
        let clock = ManualClock::new(start());
        let leader = Node::start(&db, clock.clone()).await;
        let other = Node::start(&db, clock.clone()).await;
        let policies = policies(POLICIES);
        // Opened and given their SLA on the other node: the leader's cache holds none of them.
        let tickets = [
            other.create(0).await,
            other.create(1).await,
            other.create(2).await,
        ];
        let mut earlier = other.driver(&policies);
        earlier.catch_up().await.unwrap();
        assert_eq!(earlier.fire().await.len(), 3, "ApplySla");
        let sink = ApiSink::new(leader.state.clone());
        let mut driver = leader.driver_with(sink.clone(), &policies);
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await, vec![]);
        assert_eq!(
            driver.prefetch().await,
            0,
            "nothing due within the lookahead yet"
        );
        // Ten seconds before the first warnings (half of 60 minutes).
        clock.advance_ms(30 * MINUTE_MS - 10_000);
        driver.catch_up().await.unwrap();
        assert_eq!(
            driver.prefetch().await,
            3,
            "the three first-response warnings"
        );
        assert_eq!(driver.prefetch().await, 0, "announced once");
        assert_eq!(sink.prefetched(), 3);
        let tag = |n: u128| {
            Command::AddTags(domain::AddTags {
                tags: vec![format!("moved-{n}")],
            })
        };
        api::system_command(
            &leader.state,
            tickets[0],
            &tag(0),
            Uuid::from_u128(0x7b0),
            json!({"source": "test"}),
        )
        .await
        .unwrap();
        api::system_command(
            &other.state,
            tickets[1],
            &tag(1),
            Uuid::from_u128(0x7b1),
            json!({"source": "test"}),
        )
        .await
        .unwrap();
        // Every warning and breach falls due.
        clock.advance_ms(3 * 60 * MINUTE_MS);
        driver.catch_up().await.unwrap();
        driver.fire().await;
        driver.catch_up().await.unwrap();
        assert_eq!(driver.fire().await, vec![]);
        assert_eq!(sink.prefetched(), 0, "taken by the batch that fired them");
        let events = sla_events(&leader.store).await;
        for ticket_id in tickets {
            let stream = format!("ticket-{}", ticket_id.0);
            assert_eq!(
                warnings_and_breaches(&events, Some(&stream)),
                EACH_WARNED_THEN_BREACHED,
                "{stream}: {events:#?}"
            );
        }
        // The moves are in the log, before the first warning of their tickets.
        let log = tests::read_whole_log(&leader.store).await.unwrap();
        for (n, ticket_id) in tickets.iter().take(2).enumerate() {
            let stream = format!("ticket-{}", ticket_id.0);
            let kinds: Vec<&str> = log
                .iter()
                .filter(|record| record.stream_id == stream)
                .map(|record| record.event_type.as_str())
                .collect();
            let tagged = kinds.iter().position(|kind| *kind == "TagsAdded");
            let warned = kinds.iter().position(|kind| *kind == "SlaWarningRaised");
            assert!(tagged.is_some() && tagged < warned, "ticket {n}: {kinds:?}");
        }
        db.cleanup().await;
    }
}

/// Priority raised, lowered and raised again while no business time passes (a frozen clock,
/// as a night outside business hours): each move is recorded, the third too — its recompute
/// goes back to a due time recorded earlier in the cycle from the same recorded due with the
/// same business time counted, and its command id once collided with the first's (the reviewer's
/// scenario after seed 16781774737726706410) — and the breach fires at the last due time.
#[tokio::test]
async fn a_priority_toggled_back_and_forth_without_time_passing_records_every_recompute() {
    for db in ScratchDb::all().await {
        let clock = ManualClock::new(start());
        let node = Node::start(&db, clock.clone()).await;
        let policies = policies(TIERED);
        let ticket_id = node.create(0).await;
        let mut driver = node.driver(&policies);
        settle(&mut driver).await;
        let agent = domain::Actor {
            id: domain::ActorId(Uuid::from_u128(0xa9e7)),
            role: domain::Role::Agent,
        };
        for (n, priority) in ["urgent", "normal", "urgent"].into_iter().enumerate() {
            let command: Command = serde_json::from_value(
                json!({"type": "set_priority", "priority": priority, "reason": "toggle"}),
            )
            .unwrap();
            api::command_as(
                &node.state,
                agent,
                ticket_id,
                &command,
                Uuid::from_u128(0x70_0000 + n as u128),
            )
            .await
            .unwrap();
            settle(&mut driver).await;
        }
        let recomputed: Vec<Option<Timestamp>> = sla_events(&node.store)
            .await
            .into_iter()
            .filter(|event| event.event_type == "SlaRecomputed" && event.metric == "resolution")
            .map(|event| event.due_at)
            .collect();
        assert_eq!(recomputed.len(), 3, "{recomputed:?}");
        // Past every due time: the resolution breach fires once, at the urgent due time.
        clock.advance_ms(10 * 24 * 60 * MINUTE_MS);
        settle(&mut driver).await;
        let breaches: Vec<SlaEvent> = sla_events(&node.store)
            .await
            .into_iter()
            .filter(|event| event.event_type == "SlaBreached" && event.metric == "resolution")
            .collect();
        assert_eq!(breaches.len(), 1, "{breaches:#?}");
        assert_eq!(
            breaches[0].due_at,
            start().checked_add(SignedDuration::from_hours(4)).ok(),
            "{breaches:#?}"
        );
        db.cleanup().await;
    }
}

/// Folds and fires until nothing is left to fire.
pub async fn settle(driver: &mut Driver<ApiSink>) {
    loop {
        driver.catch_up().await.unwrap();
        if driver.fire().await.is_empty() {
            break;
        }
    }
}

/// Resolution in 4 hours for urgent tickets, 24 for the rest; 24x7.
const TIERED: &str = r#"
version = 1
[[policies]]
id = "tiered"
targets.resolution = { urgent = "4h", high = "24h", normal = "24h", low = "24h" }
"#;
