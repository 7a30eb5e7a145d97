//! Agent commands decided on a node whose directory lags the log (review #7 finding 4): a
//! decision that writes nothing or finds no agent on the directory's copy is taken again on the
//! agent's stream.

use std::time::Duration;

use api::{ApiConfig, AppState};
use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};

use crate::support::*;

/// A second node on the same store whose directory stays as the log was when it started.
async fn lagging_node(api: &TestApi) -> (AppState, Router) {
    let store = store::Store::open_with(api.db.config.clone())
        .await
        .unwrap();
    let config = ApiConfig {
        directory_follows_log: false,
        read_wait_max: Duration::ZERO,
        ..ApiConfig::default()
    };
    let state = AppState::start(
        store,
        domain::BlueprintCatalog::builtin(),
        api.clock.clone(),
        config,
    )
    .await
    .unwrap();
    let router = api::router(state.clone());
    (state, router)
}

/// The presence changes on the agent's stream, in order.
async fn presences(api: &TestApi, agent_id: &str) -> Vec<String> {
    let stream = store::StreamId::new(format!("agent-{agent_id}")).unwrap();
    let records = api
        .state
        .store()
        .read_stream(&stream, 1, store::READ_LIMIT_MAX)
        .await
        .unwrap();
    records
        .iter()
        .filter(|record| record.event_type.contains("Presence"))
        .map(|record| {
            let payload: Value = serde_json::from_str(&record.payload).unwrap();
            payload["to"].as_str().unwrap_or("?").to_owned()
        })
        .collect()
}

async fn set_presence(router: &Router, token: &str, agent_id: &str, presence: &str) -> Reply {
    call(
        router,
        Method::PUT,
        &format!("/v1/agents/{agent_id}/presence"),
        Some(token),
        Some(json!({"presence": presence})),
        &[],
    )
    .await
}

#[tokio::test]
async fn presence_changes_are_decided_on_the_log_when_the_directory_lags() {
    each_backend(|api| async move {
        let admin = api.admin.clone();
        // Started before the agent exists: its directory says "no such agent".
        let (before_state, before) = lagging_node(&api).await;
        let agent = api
            .post("/v1/admin/agents", &admin, json!({"name": "Zhang San"}))
            .await;
        assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.body);
        let agent_id = agent.body["agent_id"].as_str().unwrap().to_owned();
        let online = set_presence(&before, &admin, &agent_id, "online").await;
        assert_eq!(online.status, StatusCode::OK, "{}", online.body);

        // Started while the agent is on vacation; another node then brings them back online.
        let vacation = set_presence(&api.router, &admin, &agent_id, "vacation").await;
        assert_eq!(vacation.status, StatusCode::OK, "{}", vacation.body);
        let (during_state, during) = lagging_node(&api).await;
        let back = set_presence(&api.router, &admin, &agent_id, "online").await;
        assert_eq!(back.status, StatusCode::OK, "{}", back.body);
        // Its directory still says vacation: the change must be written all the same.
        let again = set_presence(&during, &admin, &agent_id, "vacation").await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.body);

        assert_eq!(
            presences(&api, &agent_id).await,
            ["online", "vacation", "online", "vacation"]
        );
        drop((before_state, before, during_state, during));
        api
    })
    .await;
}
