//! The trigger manager against a real store: firings are appended with the trigger and the
//! evidence in their metadata, a record handled twice fires once, chains stop at the depth
//! limit, and the checkpoint makes a restarted manager continue where it stopped.

use std::sync::Arc;

use automation::manager::{firing_command_id, TriggerManager};
use domain::Role;
use serde_json::{json, Value};
use sqlx::ConnectOptions;
use store::scratch::ScratchDb;
use store::{Store, StreamId};
use uuid::Uuid;

use crate::support::*;

const CONFIG: &str = r#"
[[automation.triggers]]
id = "refund-tag"
on = ["TicketCreated"]
all = [{ text_contains = "refund" }]
actions = [{ add_tags = ["refund"] }, { set_priority = "high" }]

[[automation.triggers]]
id = "echo"
on = ["TagsAdded", "InternalNoteAdded"]
actions = [{ add_note = "echo on {{ticket.number}}" }]
"#;

/// Handles every record after `after` (including those the handling appends) until none is
/// left; returns the last position handled.
async fn drain(manager: &mut TriggerManager, store: &Store, mut after: u64) -> u64 {
    loop {
        let page = store.read_all(after, 100).await.unwrap();
        if page.is_empty() {
            return after;
        }
        for record in &page {
            manager.handle(record).await.unwrap();
            after = record.position;
        }
    }
}

async fn trail(store: &Store) -> String {
    let stream = StreamId::new(TICKET.stream_id()).unwrap();
    let records = store.read_stream(&stream, 1, 1000).await.unwrap();
    let mut out = String::new();
    for record in records {
        let metadata: Value = serde_json::from_str(&record.metadata).unwrap();
        let automation = &metadata["automation"];
        let mut line = format!("{} {}", record.stream_version, record.event_type);
        if !automation.is_null() {
            line.push_str(&format!(
                " by {} depth {} because {}",
                automation["trigger"].as_str().unwrap(),
                automation["depth"],
                automation["evidence"]
            ));
            assert_eq!(metadata["actor"]["role"], "system");
            let cause: Uuid =
                serde_json::from_value(automation["cause"]["event_id"].clone()).unwrap();
            assert_eq!(metadata["causation_id"], json!(cause));
            assert_eq!(
                record.command_id,
                firing_command_id(automation["trigger"].as_str().unwrap(), cause)
            );
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn firings_are_recorded_once_with_evidence_and_chains_stop_at_the_limit() {
    for db in ScratchDb::all().await {
        let store = Store::open_with(db.config.clone()).await.unwrap();
        let automation = Arc::new(compile(CONFIG));
        let mut manager = TriggerManager::new(
            store.clone(),
            automation.clone(),
            Arc::new(catalog().clone()),
            None,
        );
        refund_ticket(&store).await;
        let end = drain(&mut manager, &store, 0).await;
        expect_test::expect![[r#"
            1 TicketCreated
            2 TagsAdded by refund-tag depth 1 because [{"condition":"text contains \"refund\"","matched":"subject and description at byte 0"}]
            3 PriorityChangedByRule by refund-tag depth 1 because [{"condition":"text contains \"refund\"","matched":"subject and description at byte 0"}]
            4 InternalNoteAdded by echo depth 2 because []
            5 InternalNoteAdded by echo depth 3 because []
        "#]]
        .assert_eq(&trail(&store).await);
        // Handling the whole log again (a crash before any checkpoint) appends nothing.
        let head = store.head().await.unwrap().0;
        assert_eq!(drain(&mut manager, &store, 0).await, end);
        assert_eq!(store.head().await.unwrap().0, head);
        let stats = manager.stats();
        assert_eq!(
            stats
                .depth_limited
                .load(std::sync::atomic::Ordering::Relaxed),
            2,
            "the depth-3 note is reached once per pass"
        );
        drop(store);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn two_nodes_handling_the_same_log_at_once_fire_each_trigger_once() {
    // Every node runs a trigger manager. Both handle every record, interleaved; the firing's
    // command id (trigger + event) makes the second node's append of a firing a duplicate,
    // even for an action that is not idempotent by itself (a note).
    let Some(db) = ScratchDb::postgres().await else {
        return;
    };
    let store_a = Store::open_with(db.config.clone()).await.unwrap();
    let store_b = Store::open_with(db.config.clone()).await.unwrap();
    let automation = Arc::new(compile(CONFIG));
    let node = |store: &Store| {
        TriggerManager::new(
            store.clone(),
            automation.clone(),
            Arc::new(catalog().clone()),
            None,
        )
    };
    let (mut a, mut b) = (node(&store_a), node(&store_b));
    refund_ticket(&store_a).await;
    let (end_a, end_b) = tokio::join!(drain(&mut a, &store_a, 0), drain(&mut b, &store_b, 0));
    assert_eq!(end_a, end_b);
    expect_test::expect![[r#"
        1 TicketCreated
        2 TagsAdded by refund-tag depth 1 because [{"condition":"text contains \"refund\"","matched":"subject and description at byte 0"}]
        3 PriorityChangedByRule by refund-tag depth 1 because [{"condition":"text contains \"refund\"","matched":"subject and description at byte 0"}]
        4 InternalNoteAdded by echo depth 2 because []
        5 InternalNoteAdded by echo depth 3 because []
    "#]]
    .assert_eq(&trail(&store_a).await);
    drop((store_a, store_b));
    db.cleanup().await;
}

#[tokio::test]
async fn send_webhook_schedules_the_event_for_the_named_subscription_once() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let pager = automation::webhook::subscribe(
        &store,
        "pager",
        "http://127.0.0.1:9/page",
        vec!["TicketLinked".to_owned()],
        at(0),
    )
    .await
    .unwrap()
    .unwrap();
    let automation = Arc::new(compile(
        r#"
[[automation.triggers]]
id = "page-on-refund"
on = ["TicketCreated"]
all = [{ text_contains = "refund" }]
actions = [{ send_webhook = "pager" }, { send_webhook = "nobody" }]
"#,
    ));
    let mut manager = TriggerManager::new(
        store.clone(),
        automation,
        Arc::new(catalog().clone()),
        Some(automation::webhook::WebhookRequests::new(store.clone())),
    );
    issue_at(
        &store,
        Role::Customer,
        create("Refund", "please", json!({})),
        at(0),
    )
    .await;
    drain(&mut manager, &store, 0).await;
    // Handled again (a crash before the checkpoint): still one delivery.
    drain(&mut manager, &store, 0).await;
    let log = automation::webhook::delivery_log(&store, pager.subscription_id)
        .await
        .unwrap();
    assert_eq!(log.deliveries.len(), 1);
    let delivery = &log.deliveries[0];
    assert_eq!(delivery.event_type, "TicketCreated");
    assert_eq!(delivery.trigger.as_deref(), Some("page-on-refund"));
    assert_eq!(delivery.state, automation::webhook::DeliveryState::Pending);
    drop(store);
    db.cleanup().await;
}

/// A manager of `CONFIG`'s triggers over `store`, and its counters.
fn refund_manager(store: &Store) -> (TriggerManager, Arc<automation::ManagerStats>) {
    let manager = TriggerManager::new(
        store.clone(),
        Arc::new(compile(CONFIG)),
        Arc::new(catalog().clone()),
        None,
    );
    let stats = manager.stats();
    (manager, stats)
}

/// A customer's ticket asking for a refund, at minute 0: `refund-tag` fires on it.
async fn refund_ticket(store: &Store) {
    issue_at(
        store,
        Role::Customer,
        create("Refund please", "the cup broke", json!({})),
        at(0),
    )
    .await;
}

/// Waits (bounded) until `done` holds, while the manager runs; the manager returning is a
/// failure.
async fn while_running(
    run: impl std::future::Future<Output = Result<(), automation::manager::ManagerError>>,
    scenario: impl std::future::Future<Output = ()>,
) {
    tokio::select! {
        result = run => panic!("the trigger manager stopped: {result:?}"),
        () = scenario => {}
    }
}

async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test]
async fn a_failed_checkpoint_save_is_logged_and_the_manager_carries_on() {
    // review-7 finding 2: a failed save returned out of run(), and nothing restarted it.
    use std::sync::atomic::Ordering::Relaxed;
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let (manager, stats) = refund_manager(&store);
    let path = db.sqlite_path().unwrap();
    while_running(manager.run(), async {
        refund_ticket(&store).await;
        until("the first firing", || stats.appended.load(Relaxed) >= 1).await;
        // The checkpoint table goes away: every save fails from now on.
        let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .connect()
            .await
            .unwrap();
        sqlx::query("DROP TABLE automation_checkpoints")
            .execute(&mut connection)
            .await
            .unwrap();
        until("a failed save", || {
            stats.checkpoint_failures.load(Relaxed) >= 1
        })
        .await;
        let before = stats.appended.load(Relaxed);
        issue_at(
            &store,
            Role::Agent,
            command(json!({"type": "add_tags", "tags": ["later"]})),
            at(1),
        )
        .await;
        until("a firing after the failed save", || {
            stats.appended.load(Relaxed) > before
        })
        .await;
    })
    .await;
    drop(store);
    db.cleanup().await;
}

#[tokio::test]
async fn a_record_that_keeps_failing_is_skipped_and_counted() {
    // review-7 finding 8: an undecodable record was retried forever and stalled every trigger.
    use std::sync::atomic::Ordering::Relaxed;
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    // A ticket stream whose first event does not decode.
    let broken = StreamId::new(domain::TicketId(Uuid::from_u128(0x7001)).stream_id()).unwrap();
    store
        .append(
            &broken,
            store::ExpectedVersion::NoStream,
            vec![store::NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "TicketCreated".to_owned(),
                schema_version: 1,
                payload: serde_json::value::to_raw_value(&json!({"garbage": true})).unwrap(),
                metadata: serde_json::value::to_raw_value(&json!({})).unwrap(),
            }],
            Uuid::now_v7(),
        )
        .await
        .unwrap();
    refund_ticket(&store).await;
    let (manager, stats) = refund_manager(&store);
    while_running(manager.run(), async {
        until("the good ticket's firing", || {
            stats.appended.load(Relaxed) >= 1
        })
        .await;
    })
    .await;
    assert_eq!(stats.skipped.load(Relaxed), 1);
    drop(store);
    db.cleanup().await;
}

/// Stopped (as `docket serve` stops it on SIGTERM), the manager saves its checkpoint at the last
/// record it handled before it returns, so that the next start does not handle those records
/// again; before, it was cancelled and the next start went back to the last periodic save.
#[tokio::test]
async fn a_stopped_manager_saves_its_checkpoint() {
    use std::sync::atomic::Ordering::Relaxed;
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let (manager, stats) = refund_manager(&store);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scenario = async {
        refund_ticket(&store).await;
        // Stopped at once, well within the quiet second after which it saves anyway.
        until("the first firing", || stats.appended.load(Relaxed) >= 1).await;
        stop.send_replace(true);
    };
    let (ran, ()) = tokio::join!(manager.run_until(stopped), scenario);
    ran.unwrap();
    let handled = stats.position.load(Relaxed);
    assert!(handled > 0);
    let checkpoints = automation::checkpoint::Checkpoints::open(&store)
        .await
        .unwrap();
    let saved = checkpoints
        .load(automation::manager::CHECKPOINT_NAME)
        .await
        .unwrap();
    assert_eq!(saved, handled);
    drop(store);
    db.cleanup().await;
}
