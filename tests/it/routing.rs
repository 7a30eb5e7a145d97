//! Routing end to end: the API (directory, presence, ticket commands), the routing process
//! manager and a real store. Agents sign in, tickets given to their team are assigned round
//! robin, and when one agent goes on vacation (through their own token) their tickets go back to
//! the team and on to the other agent, every step an event with its reason.

use std::sync::Arc;
use std::time::Duration;

use api::AppState;
use axum::body::Body;
use axum::http::{header, Method, Request};
use domain::Event;
use jiff::Timestamp;
use routing::{Engine, Manager, RoutingConfig};
use serde_json::{json, Value};
use store::scratch::ScratchDb;
use store::Store;
use tokio::sync::watch;
use tower::ServiceExt;

/// Longest the manager gets to do each step: it waits on the log, not on a clock.
const STEP_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct WallClock;

impl api::Clock for WallClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> Value {
    let request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {value}");
    value
}

/// Follows the log from `after` until `count` events of `event_type` came; returns them with
/// the position after the last one.
async fn wait_for(
    store: &Store,
    after: u64,
    event_type: &str,
    count: usize,
) -> (Vec<(String, Event)>, u64) {
    let mut subscription = store.subscribe(after);
    let mut found = vec![];
    let deadline = tokio::time::Instant::now() + STEP_WITHIN;
    let mut position = after;
    while found.len() < count {
        let record = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} {event_type}", found.len()))
            .unwrap();
        position = record.position;
        if record.event_type == event_type {
            let event =
                Event::from_stored(&record.event_type, record.schema_version, &record.payload)
                    .unwrap();
            found.push((record.stream_id.clone(), event));
        }
    }
    (found, position)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacation_hands_tickets_to_the_team_through_the_api() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let state = AppState::start(
        store.clone(),
        domain::BlueprintCatalog::builtin(),
        Arc::new(WallClock),
        api::ApiConfig::default(),
    )
    .await
    .unwrap();
    let admin = state.ensure_admin_token(None).await.unwrap().unwrap();
    let router = api::router(state.clone());
    let (stop, shutdown) = watch::channel(false);
    let manager = Manager::new(
        store.clone(),
        Engine::new(RoutingConfig::default()),
        domain::BlueprintCatalog::builtin(),
        Arc::new(Timestamp::now),
        "node",
    );
    tokio::spawn(manager.run(shutdown));

    let team = call(
        &router,
        Method::POST,
        "/v1/admin/teams",
        &admin,
        json!({"name": "Support"}),
    )
    .await;
    let team_id = team["team_id"].as_str().unwrap().to_owned();
    let mut agents = vec![];
    for name in ["Ann", "Bob"] {
        let agent = call(
            &router,
            Method::POST,
            "/v1/admin/agents",
            &admin,
            json!({"name": name, "teams": [team_id], "capacity": 5}),
        )
        .await;
        assert_eq!(agent["presence"], "offline");
        let agent_id = agent["agent_id"].as_str().unwrap().to_owned();
        let token = call(
            &router,
            Method::POST,
            "/v1/admin/tokens",
            &admin,
            json!({"role": "agent", "subject": agent_id}),
        )
        .await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let online = call(
            &router,
            Method::PUT,
            &format!("/v1/agents/{agent_id}/presence"),
            &token,
            json!({"presence": "online", "reason": "start of shift"}),
        )
        .await;
        assert_eq!(online["presence"], "online");
        agents.push((agent_id, token));
    }
    let customer = call(
        &router,
        Method::POST,
        "/v1/admin/customers",
        &admin,
        json!({"name": "Chen Jing"}),
    )
    .await;
    let start = store.committed_position();
    for n in 0..4 {
        let ticket = call(
            &router,
            Method::POST,
            "/v1/tickets",
            &admin,
            json!({"channel": "web", "requester": {"id": customer["customer_id"]},
                "subject": format!("order {n} has not arrived"), "description": "",
                "ticket_type": "question"}),
        )
        .await;
        let ticket_id = ticket["ticket_id"].as_str().unwrap().to_owned();
        call(
            &router,
            Method::POST,
            &format!("/v1/tickets/{ticket_id}/commands"),
            &admin,
            json!({"type": "assign_team", "team": team_id}),
        )
        .await;
    }
    let (assigned, position) = wait_for(&store, start, "AgentAssigned", 4).await;
    let owner = |event: &Event| match event {
        Event::AgentAssigned(assigned) => assigned.to.0.to_string(),
        other => panic!("{other:?}"),
    };
    let ann_tickets: Vec<&String> = assigned
        .iter()
        .filter(|(_, event)| owner(event) == agents[0].0)
        .map(|(stream, _)| stream)
        .collect();
    assert_eq!(
        ann_tickets.len(),
        2,
        "round robin over two agents: {assigned:?}"
    );
    for (_, event) in &assigned {
        let Event::AgentAssigned(assigned) = event else {
            unreachable!()
        };
        let routing = assigned.routing.as_ref().expect("a routing record");
        assert_eq!(routing.strategy, domain::RoutingStrategy::RoundRobin);
        assert_eq!(routing.team.0.to_string(), team_id);
    }

    // Ann goes on vacation, with her own token: her two tickets go back and on to Bob.
    call(
        &router,
        Method::PUT,
        &format!("/v1/agents/{}/presence", agents[0].0),
        &agents[0].1,
        json!({"presence": "vacation", "reason": "annual leave"}),
    )
    .await;
    let (unassigned, position) = wait_for(&store, position, "AgentUnassigned", 2).await;
    for (stream, event) in &unassigned {
        assert!(ann_tickets.contains(&stream), "{stream}");
        let Event::AgentUnassigned(unassigned) = event else {
            unreachable!()
        };
        assert!(
            unassigned.reason.as_deref().unwrap().contains("vacation"),
            "{unassigned:?}"
        );
    }
    let (reassigned, _) = wait_for(&store, position, "AgentAssigned", 2).await;
    for (stream, event) in &reassigned {
        assert!(ann_tickets.contains(&stream), "{stream}");
        assert_eq!(owner(event), agents[1].0);
    }
    stop.send_replace(true);
    db.cleanup().await;
}
