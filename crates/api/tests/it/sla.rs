//! The SLA scheduler as `docket serve` runs it: in the background of the API state, with the
//! shipped policies. A VIP ticket gets its 2-hour first-response clock, `GET /v1/tickets/{id}`
//! shows it with its remaining business time, and when the manual clock passes the due time the
//! breach and its escalation are recorded and shown; `/metrics` says this node leads.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use sla_scheduler::{Leadership, Policies, SlaConfig};
use store::scratch::ScratchDb;

use crate::support::TestApi;

/// Reads the ticket until `done` holds (the scheduler runs in the background); bounded.
async fn ticket_until(api: &TestApi, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let reply = api.get(path, &api.admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        if done(&reply.body) {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the scheduler did not get there: {path}");
}

#[tokio::test]
async fn a_vip_ticket_gets_two_hours_and_is_escalated_on_breach() {
    let api = TestApi::start(ScratchDb::sqlite().await).await;
    let policies = Arc::new(Policies::compile(&SlaConfig::shipped()).unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    api.state
        .start_scheduler(policies, None, Leadership::Single, stopped);
    let vip = api
        .post(
            "/v1/admin/customers",
            &api.admin,
            json!({"name": "Acme Corp", "tier": "vip"}),
        )
        .await
        .body;
    let integration = api.token("integration", None).await;
    let ticket = api
        .post(
            "/v1/tickets",
            &integration,
            json!({"channel": "email", "requester": {"id": vip["customer_id"]},
                   "subject": "系统崩溃", "description": "blank page", "ticket_type": "question"}),
        )
        .await;
    assert_eq!(ticket.status, StatusCode::CREATED, "{}", ticket.body);
    let path = format!("/v1/tickets/{}", ticket.body["ticket_id"].as_str().unwrap());
    let first_response = |body: &Value| {
        body["sla"]
            .as_array()
            .and_then(|clocks| {
                clocks
                    .iter()
                    .find(|clock| clock["metric"] == "first_response")
            })
            .cloned()
    };
    let body = ticket_until(&api, &path, |body| first_response(body).is_some()).await;
    let clock = first_response(&body).unwrap();
    assert_eq!(clock["policy_id"], "vip");
    assert_eq!(clock["due_at"], "2026-11-02T11:00:00Z");
    assert_eq!(clock["status"], "running");
    assert_eq!(clock["state"], "ok");
    assert_eq!(clock["remaining_seconds"], 7200);
    let metrics = api.get("/metrics", &api.admin).await;
    let text = metrics.body.as_str().map(str::to_owned).unwrap_or_default();
    assert!(text.contains("docket_scheduler_leader 1"), "{text}");
    // Two hours and a second later the breach is recorded and the ticket raised to urgent.
    api.clock.advance(2 * 3600 + 1);
    let body = ticket_until(&api, &path, |body| {
        first_response(body).is_some_and(|clock| clock["state"] == "breached")
            && body["priority"] == "urgent"
    })
    .await;
    let clock = first_response(&body).unwrap();
    assert_eq!(clock["remaining_seconds"], -1);
    assert_eq!(body["escalation_level"], 1);
    let _ = stop.send(true);
    api.finish().await;
}
