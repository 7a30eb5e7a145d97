//! `/metrics` shows the trigger manager's and the webhook dispatcher's counters, as `docket
//! serve` wires them: the manager and the dispatcher run over the API's store and count into
//! the `Arc`s the API state was given. One ticket fires one trigger and makes two deliveries,
//! one to a listener that answers 200 and one to a listener that answers 500.

use std::sync::Arc;
use std::time::Duration;

use api::{ApiConfig, AppState};
use axum::http::StatusCode;
use serde_json::json;
use store::scratch::ScratchDb;

use crate::support::{automation_section, TestApi, World};

const KEY: &[u8] = b"metrics test signing key";

const TRIGGERS: &str = r#"
[[automation.triggers]]
id = "tag-new"
on = ["TicketCreated"]
actions = [{ add_tags = ["new"] }]
"#;

#[derive(Debug)]
struct StateClock(AppState);

impl automation::Clock for StateClock {
    fn now(&self) -> jiff::Timestamp {
        self.0.now()
    }
}

/// The value of an unlabelled metric, if `/metrics` has it.
fn value(text: &str, name: &str) -> Option<i64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// The counters this test reads, in the order it shows them.
const SHOWN: [&str; 12] = [
    "docket_trigger_firings_total",
    "docket_trigger_appended_total",
    "docket_trigger_unchanged_total",
    "docket_trigger_rejected_total",
    "docket_trigger_depth_limited_total",
    "docket_trigger_skipped_records_total",
    "docket_trigger_checkpoint_failures_total",
    "docket_webhooks_leader",
    "docket_webhooks_pending",
    "docket_webhooks_delivered_total",
    "docket_webhooks_failed_attempts_total",
    "docket_webhooks_dead_lettered_total",
];

/// `/metrics` once `done` holds of it (the manager and the dispatcher run in the background);
/// bounded.
async fn metrics_until(api: &TestApi, what: &str, done: impl Fn(&str) -> bool) -> String {
    for _ in 0..500 {
        let reply = api.get("/metrics", &api.admin).await;
        let text = reply.body.as_str().unwrap().to_owned();
        if done(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}");
}

/// A listener on a free local port that answers every request with `status`; returns its URL.
async fn listener(status: StatusCode) -> String {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move { status });
    tokio::spawn(async move { axum::serve(socket, app).await });
    format!("http://{address}/hook")
}

#[tokio::test]
async fn metrics_show_the_trigger_manager_and_the_webhook_dispatcher() {
    let automation = automation_section(TRIGGERS);
    let triggers = Arc::new(automation::ManagerStats::default());
    let webhooks = Arc::new(automation::DispatcherStats::default());
    let config = ApiConfig {
        automation: automation.clone(),
        webhook_signing_key: Some(Arc::from(KEY)),
        trigger_stats: Some(triggers.clone()),
        webhook_stats: Some(webhooks.clone()),
        ..ApiConfig::default()
    };
    let api = TestApi::start_with(ScratchDb::sqlite().await, config).await;
    let store = api.state.store().clone();

    // Before either runs, every line is there at zero.
    let before = api.get("/metrics", &api.admin).await;
    let text = before.body.as_str().unwrap().to_owned();
    for name in SHOWN.into_iter().chain(["docket_trigger_position"]) {
        assert_eq!(value(&text, name), Some(0), "{name} in:\n{text}");
    }
    assert!(
        value(&text, "docket_trigger_lag_events").unwrap() > 0,
        "{text}"
    );

    let world = World::new(&api).await;
    for (name, url) in [
        ("answers", listener(StatusCode::OK).await),
        ("fails", listener(StatusCode::INTERNAL_SERVER_ERROR).await),
    ] {
        let created = api
            .post(
                "/v1/admin/webhooks",
                &api.admin,
                json!({"name": name, "url": url, "event_types": ["TicketCreated"]}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    world.ticket_for(&api, &world.customer).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(automation::run_elected(
        automation::DispatcherSetup {
            store: store.clone(),
            migrated: automation::webhook::migrate(&store).await.unwrap(),
            signing_key: Arc::from(KEY),
            client: automation::WebhookClient::new(None).unwrap(),
            clock: Arc::new(StateClock(api.state.clone())),
            leadership: sla_scheduler::Leadership::Single,
            stats: webhooks.clone(),
        },
        stopped,
    ));
    let manager = automation::TriggerManager::new(
        store.clone(),
        automation,
        Arc::new(domain::BlueprintCatalog::builtin()),
        None,
    )
    .with_stats(triggers.clone());
    // The manager's future is not `Send`; it runs beside the polling, in this task.
    let polled = metrics_until(
        &api,
        "the manager and the dispatcher did not get there",
        |text| {
            let at = |name| value(text, name).unwrap_or(-1);
            at("docket_trigger_appended_total") == 1
                && at("docket_trigger_lag_events") == 0
                && at("docket_webhooks_delivered_total") == 1
                && at("docket_webhooks_failed_attempts_total") == 1
        },
    );
    // Kept running a little past its quiet second, so that it saves its checkpoint.
    let settled = async {
        let text = polled.await;
        tokio::time::sleep(automation::manager::CHECKPOINT_IDLE * 2).await;
        text
    };
    let text = tokio::select! {
        ended = manager.run() => panic!("the trigger manager stopped: {ended:?}"),
        text = settled => text,
    };
    let reached = value(&text, "docket_trigger_position").unwrap();

    // Started again (as `docket serve` restarts it, with the same counters) on a quiet log, the
    // manager is where its checkpoint is at once, not behind by the whole log until the next
    // record comes.
    triggers
        .position
        .store(0, std::sync::atomic::Ordering::Relaxed);
    let again = automation::TriggerManager::new(
        store.clone(),
        automation_section(TRIGGERS),
        Arc::new(domain::BlueprintCatalog::builtin()),
        None,
    )
    .with_stats(triggers.clone());
    let resumed = metrics_until(
        &api,
        "the restarted manager did not report its checkpoint",
        |text| value(text, "docket_trigger_position") == Some(reached),
    );
    let resumed = tokio::select! {
        ended = again.run() => panic!("the trigger manager stopped: {ended:?}"),
        text = resumed => text,
    };
    assert_eq!(
        value(&resumed, "docket_trigger_lag_events"),
        Some(0),
        "{resumed}"
    );
    let _ = stop.send(true);
    let head = store.committed_position() as i64;
    let shown: Vec<(&str, i64)> = SHOWN
        .into_iter()
        .map(|name| (name, value(&text, name).unwrap()))
        .collect();
    expect_test::expect![[r#"
        [
            (
                "docket_trigger_firings_total",
                1,
            ),
            (
                "docket_trigger_appended_total",
                1,
            ),
            (
                "docket_trigger_unchanged_total",
                0,
            ),
            (
                "docket_trigger_rejected_total",
                0,
            ),
            (
                "docket_trigger_depth_limited_total",
                0,
            ),
            (
                "docket_trigger_skipped_records_total",
                0,
            ),
            (
                "docket_trigger_checkpoint_failures_total",
                0,
            ),
            (
                "docket_webhooks_leader",
                1,
            ),
            (
                "docket_webhooks_pending",
                1,
            ),
            (
                "docket_webhooks_delivered_total",
                1,
            ),
            (
                "docket_webhooks_failed_attempts_total",
                1,
            ),
            (
                "docket_webhooks_dead_lettered_total",
                0,
            ),
        ]
    "#]]
    .assert_debug_eq(&shown);
    // The manager had handled the whole log when the lag read 0 (its own append included).
    assert!(value(&text, "docket_trigger_position").unwrap() <= head);
    assert!(
        text.contains("# TYPE docket_trigger_firings_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE docket_webhooks_pending gauge"),
        "{text}"
    );
    api.finish().await;
}
