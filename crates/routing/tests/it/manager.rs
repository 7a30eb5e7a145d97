//! The process manager on real stores. Two managers ("nodes"), each with its own store handle
//! on one PostgreSQL database, route the same team while tickets keep arriving: every ticket
//! is assigned exactly once, and nobody goes over capacity. Also run on SQLite with one node.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use domain::{
    AgentEvent, AgentPii, AgentPresenceChanged, AgentProfileUpdated, AgentRegistered,
    BlueprintCatalog, BlueprintRef, Channel, Event, Presence, Priority, StateCategory,
    TeamAssigned, TicketCreated, TicketCreatedPii, TicketNumber,
};
use jiff::Timestamp;
use routing::{Engine, Manager, RoutingConfig, RoutingStats};
use store::scratch::ScratchDb;
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use tokio::sync::watch;
use uuid::Uuid;

use crate::support::{agent, customer, team, ticket};

const AGENTS: u64 = 4;
const CAPACITY: u32 = 10;
const TICKETS: u64 = 60;
/// Longest the managers get to route everything: generous for a loaded CI machine; the test
/// waits on the log, not on a clock, and normally finishes in well under a second.
const ROUTED_WITHIN: Duration = Duration::from_secs(60);

async fn append(store: &Store, stream: String, event_type: &str, payload: String) {
    let event = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: if event_type == "AgentAssigned" { 2 } else { 1 },
        payload: serde_json::value::RawValue::from_string(payload).unwrap(),
        metadata: serde_json::value::RawValue::from_string(r#"{"actor":"test"}"#.to_owned())
            .unwrap(),
    };
    store
        .append(
            &StreamId::new(stream).unwrap(),
            ExpectedVersion::Any,
            vec![event],
            Uuid::now_v7(),
        )
        .await
        .unwrap();
}

async fn setup(store: &Store) {
    append(
        store,
        format!("team-{}", team(1)),
        "TeamCreated",
        serde_json::json!({"team_id": team(1), "name": "Support"}).to_string(),
    )
    .await;
    for n in 1..=AGENTS {
        let stream = format!("agent-{}", agent(n));
        for event in [
            AgentEvent::AgentRegistered(AgentRegistered {
                agent_id: agent(n),
                teams: vec![team(1)],
                pii: AgentPii {
                    name: format!("agent {n}"),
                    email: None,
                },
            }),
            AgentEvent::AgentProfileUpdated(AgentProfileUpdated {
                teams: vec![team(1)],
                skills: vec![],
                languages: vec![],
                capacity: CAPACITY,
                weighted: false,
            }),
            AgentEvent::AgentPresenceChanged(AgentPresenceChanged {
                from: Presence::Offline,
                to: Presence::Online,
                reason: None,
            }),
        ] {
            append(
                store,
                stream.clone(),
                event.event_type(),
                event.to_payload().to_string(),
            )
            .await;
        }
    }
}

async fn new_ticket(store: &Store, n: u64) {
    let events = [
        Event::TicketCreated(TicketCreated {
            ticket_id: ticket(n),
            number: TicketNumber(n),
            channel: Channel::Web,
            requester: customer(1),
            ticket_type: "question".to_owned(),
            priority: Priority::Normal,
            tags: vec![],
            fields: BTreeMap::new(),
            blueprint: BlueprintRef {
                id: "general".to_owned(),
                version: 1,
            },
            state: "new".to_owned(),
            category: StateCategory::New,
            pii: TicketCreatedPii {
                subject: "Where is my order?".to_owned(),
                description: String::new(),
                requester_name: None,
                requester_email: None,
            },
        }),
        Event::TeamAssigned(TeamAssigned {
            from: None,
            to: team(1),
            reason: Some("test".to_owned()),
        }),
    ];
    for event in events {
        append(
            store,
            ticket(n).stream_id(),
            event.event_type(),
            event.to_payload_json(),
        )
        .await;
    }
}

fn start_node(store: Store, node: &str, shutdown: watch::Receiver<bool>) {
    let now: routing::Now = Arc::new(Timestamp::now);
    let manager = Manager::new(
        store,
        Engine::new(RoutingConfig::default()),
        BlueprintCatalog::builtin(),
        now,
        node,
    );
    tokio::spawn(manager.run(shutdown));
}

/// Follows the log until `expected` routed assignments are in it; returns them per ticket.
async fn routed(store: &Store, expected: usize) -> BTreeMap<String, Vec<(String, String)>> {
    let mut subscription = store.subscribe(0);
    let mut assignments: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + ROUTED_WITHIN;
    while count < expected {
        let record = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("only {count} of {expected} tickets routed in time"))
            .unwrap();
        if record.event_type == "AgentAssigned" {
            let Ok(Event::AgentAssigned(assigned)) =
                Event::from_stored(&record.event_type, record.schema_version, &record.payload)
            else {
                panic!("undecodable assignment at {}", record.position);
            };
            let node = serde_json::from_str::<serde_json::Value>(&record.metadata).unwrap()
                ["actor"]["node"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            assignments
                .entry(record.stream_id.clone())
                .or_default()
                .push((assigned.to.to_string(), node));
            count += 1;
        }
    }
    assignments
}

async fn two_nodes_assign_each_ticket_once(db: &ScratchDb, nodes: usize) {
    let writer = Store::open_with(db.config.clone()).await.unwrap();
    setup(&writer).await;
    // Half the tickets exist before the nodes start, half arrive while they run.
    for n in 1..=TICKETS / 2 {
        new_ticket(&writer, n).await;
    }
    let (stop, shutdown) = watch::channel(false);
    let mut stores = vec![];
    for index in 0..nodes {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        start_node(store.clone(), &format!("node{index}"), shutdown.clone());
        stores.push(store);
    }
    for n in TICKETS / 2 + 1..=TICKETS {
        new_ticket(&writer, n).await;
    }
    // Capacity bounds what can be routed: 4 agents × 10 of the 60 tickets.
    let routable = usize::try_from(u64::from(CAPACITY) * AGENTS).unwrap();
    let assignments = routed(&writer, routable).await;
    let twice: Vec<_> = assignments
        .iter()
        .filter(|(_, assigned)| assigned.len() > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "tickets assigned more than once: {twice:?}"
    );
    let mut per_agent: BTreeMap<&str, u32> = BTreeMap::new();
    for assigned in assignments.values() {
        *per_agent.entry(assigned[0].0.as_str()).or_default() += 1;
    }
    assert_eq!(per_agent.len(), AGENTS as usize);
    assert!(
        per_agent.values().all(|count| *count == CAPACITY),
        "{per_agent:?}"
    );
    // Nothing more comes: once everyone is full, a further round assigns nothing. A fresh
    // engine folded from the log agrees that the queue holds the rest.
    let mut engine = Engine::new(RoutingConfig::default());
    let mut subscription = writer.subscribe(0);
    loop {
        let records = subscription.poll_available().await.unwrap();
        if records.is_empty() {
            break;
        }
        records.iter().for_each(|record| engine.apply(record));
    }
    assert_eq!(
        engine.queued(team(1)) as u64,
        TICKETS - u64::from(CAPACITY) * AGENTS
    );
    assert!(engine.next_assignment(team(1)).is_none());
    stop.send_replace(true);
    for store in stores {
        drop(store);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_assign_each_ticket_once() {
    let Some(db) = ScratchDb::postgres().await else {
        return;
    };
    two_nodes_assign_each_ticket_once(&db, 2).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_on_sqlite_routes_everything_it_can() {
    let db = ScratchDb::sqlite().await;
    two_nodes_assign_each_ticket_once(&db, 1).await;
    db.cleanup().await;
}

/// The two mechanisms one at a time, without a race to hope for: nodes that planned on the same
/// log prefix issue the same command ids (the second finds the first's appends and writes
/// nothing); a node that planned on an older prefix than the writer is refused by the ticket
/// versions its plan expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_prefix_same_commands_older_prefix_conflicts() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    setup(&store).await;
    for n in 1..=6 {
        new_ticket(&store, n).await;
    }
    let stats: [Arc<RoutingStats>; 3] = Default::default();
    let manager = |node: &str, stats: &Arc<RoutingStats>| {
        Manager::new(
            store.clone(),
            Engine::new(RoutingConfig::default()),
            BlueprintCatalog::builtin(),
            Arc::new(Timestamp::now),
            node,
        )
        .with_stats(stats.clone())
    };
    let (mut first, mut twin, mut late) = (
        manager("first", &stats[0]),
        manager("twin", &stats[1]),
        manager("late", &stats[2]),
    );
    for node in [&mut first, &mut twin, &mut late] {
        node.catch_up(&mut store.subscribe(0)).await.unwrap();
    }
    // `late` planned before this record; `first` and `twin` see it.
    new_ticket(&store, 7).await;
    first.catch_up(&mut store.subscribe(0)).await.unwrap();
    twin.catch_up(&mut store.subscribe(0)).await.unwrap();
    let written = first.round().await.unwrap();
    let again = twin.round().await.unwrap();
    let refused = late.round().await.unwrap();
    assert_eq!(
        (written.planned, written.written, written.conflicts),
        (7, 7, 0)
    );
    // The twin's commands are the first's: found, not written again.
    assert_eq!((again.planned, again.written, again.conflicts), (7, 7, 0));
    assert_eq!(again.position, written.position);
    // The late node planned six tickets on versions that have moved on.
    assert_eq!(
        (refused.planned, refused.written, refused.conflicts),
        (6, 0, 6)
    );
    let mut subscription = store.subscribe(0);
    let mut assigned = 0;
    loop {
        let records = subscription.poll_available().await.unwrap();
        if records.is_empty() {
            break;
        }
        assigned += records
            .iter()
            .filter(|record| record.event_type == "AgentAssigned")
            .count();
    }
    assert_eq!(assigned, 7);
    // The counters `/metrics` shows: what each node wrote (or found written), what it could
    // not write, and how far it has folded the log.
    let counted: Vec<[u64; 5]> = stats
        .iter()
        .map(|stats| {
            [
                &stats.rounds,
                &stats.assigned,
                &stats.prioritized,
                &stats.handed_back,
                &stats.conflicts,
            ]
            .map(|counter| counter.load(Ordering::Relaxed))
        })
        .collect();
    assert_eq!(
        counted,
        [[1, 7, 0, 0, 0], [1, 7, 0, 0, 0], [1, 0, 0, 0, 6]],
        "rounds, assigned, prioritized, handed back, conflicts: first, twin, late"
    );
    assert_eq!(
        stats[0].position.load(Ordering::Relaxed),
        first.engine().position()
    );
    assert!(stats[2].position.load(Ordering::Relaxed) < stats[0].position.load(Ordering::Relaxed));
    db.cleanup().await;
}

/// Regression: the run loop read the log on every wake, one query per batch the process
/// committed. A caught-up manager folds what the in-process tail brings (tickets arriving, its
/// own assignments) and reads the database only when the tail may have missed something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_manager_follows_the_tail_without_reading_the_log() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    setup(&store).await;
    let mut manager = Manager::new(
        store.clone(),
        Engine::new(RoutingConfig::default()),
        BlueprintCatalog::builtin(),
        Arc::new(Timestamp::now),
        "node",
    );
    let mut subscription = store.subscribe(0);
    manager.catch_up(&mut subscription).await.unwrap();
    let reads = subscription.database_reads();
    assert!(reads > 0, "the first catch-up reads the log");
    let mut written = 0;
    for n in 1..=20 {
        new_ticket(&store, n).await;
        manager.follow(&mut subscription).await.unwrap();
        written += manager.round().await.unwrap().written;
        // Its own assignment comes back through the tail too.
        manager.follow(&mut subscription).await.unwrap();
        assert_eq!(manager.engine().position(), store.committed_position());
    }
    assert_eq!(written, 20, "every ticket routed");
    assert_eq!(subscription.database_reads(), reads);
    db.cleanup().await;
}
