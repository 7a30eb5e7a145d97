//! One webhook dispatcher per cluster: two nodes (two stores on one PostgreSQL schema) both run
//! `run_elected`; while both run, only the leader delivers, so a reliable receiver gets each
//! event exactly once; when the leader's node dies (its task and its lock session end), the
//! other node takes over within five seconds and delivers what comes next, still once each.
//! The dispatchers run on the wall clock (the point is real failover); every wait is a bounded
//! poll of an observable condition, never a sleep standing in for one.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automation::webhook::{delivery_log, DeliveryState, DISPATCHER_LOCK};
use automation::{run_elected, DispatcherSetup, DispatcherStats, WebhookClient};
use jiff::Timestamp;
use sla_scheduler::Leadership;
use store::scratch::ScratchDb;
use store::Store;
use tokio::sync::watch;
use uuid::Uuid;

use crate::webhooks::{
    append_ticket_event, start_receiver, subscribe_receiver, Receiver, SIGNING_KEY,
};

#[derive(Debug)]
struct WallClock;

impl automation::Clock for WallClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Polls `condition` every 20 ms until it holds; fails the test after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    while !condition().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Node {
    stats: Arc<DispatcherStats>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_node(store: &Store) -> Node {
    let leadership = match Leadership::for_store(store, DISPATCHER_LOCK) {
        Leadership::Postgres { pool, lock, .. } => Leadership::Postgres {
            pool,
            lock,
            retry: Duration::from_millis(100),
        },
        Leadership::Single => panic!("a PostgreSQL store elects"),
    };
    let stats = Arc::new(DispatcherStats::default());
    let (stop, stopped) = watch::channel(false);
    let setup = DispatcherSetup {
        store: store.clone(),
        migrated: automation::webhook::migrate(store).await.unwrap(),
        signing_key: Arc::from(SIGNING_KEY),
        client: WebhookClient::new(None).unwrap(),
        clock: Arc::new(WallClock),
        leadership,
        stats: stats.clone(),
    };
    let task = tokio::spawn(run_elected(setup, stopped));
    Node { stats, stop, task }
}

#[tokio::test]
async fn two_dispatchers_on_one_postgresql_deliver_once_and_fail_over() {
    let Some(db) = ScratchDb::postgres().await else {
        return;
    };
    let store_a = Store::open_with(db.config.clone()).await.unwrap();
    let store_b = Store::open_with(db.config.clone()).await.unwrap();
    let receiver = Receiver::reliable(Arc::new(Mutex::new(Timestamp::now())));
    let url = start_receiver(receiver.clone()).await;
    let subscription = subscribe_receiver(&store_a, &receiver, &url, Timestamp::now()).await;
    let delivered = |count: usize| {
        let store = store_a.clone();
        move || {
            let store = store.clone();
            async move {
                let log = delivery_log(&store, subscription).await.unwrap();
                log.deliveries.len() == count
                    && log
                        .deliveries
                        .iter()
                        .all(|delivery| delivery.state == DeliveryState::Delivered)
            }
        }
    };
    let limit = Duration::from_secs(10);

    let a = start_node(&store_a).await;
    wait_until("node a leads", limit, || async {
        a.stats.leader.load(Ordering::Relaxed)
    })
    .await;
    let b = start_node(&store_b).await;
    let ticket = Uuid::now_v7();
    let mut sent = Vec::new();
    for version in 1..=5 {
        sent.push(append_ticket_event(&store_b, ticket, version).await);
    }
    wait_until("a delivers the first five", limit, delivered(5)).await;
    assert!(
        !b.stats.leader.load(Ordering::Relaxed),
        "one leader at a time"
    );
    assert_eq!(b.stats.terms.load(Ordering::Relaxed), 0);

    // Node a dies: its task ends and its lock session with it.
    a.task.abort();
    let _ = a.task.await;
    let died = tokio::time::Instant::now();
    wait_until("b takes over", limit, || async {
        b.stats.leader.load(Ordering::Relaxed)
    })
    .await;
    let takeover = died.elapsed();
    assert!(
        takeover < Duration::from_secs(5),
        "took over after {takeover:?}"
    );
    for version in 6..=10 {
        sent.push(append_ticket_event(&store_a, ticket, version).await);
    }
    wait_until("b delivers the next five", limit, delivered(10)).await;

    {
        let receiver = receiver.lock().unwrap();
        assert_eq!(receiver.bad_signatures(), 0);
        assert_eq!(
            receiver.received(),
            sent.as_slice(),
            "each event once, in log order"
        );
    }
    b.stop.send_replace(true);
    tokio::time::timeout(limit, b.task)
        .await
        .expect("a stopped dispatcher returns")
        .unwrap();
    drop((store_a, store_b));
    db.cleanup().await;
    drop(a.stop);
}
