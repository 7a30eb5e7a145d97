//! Who may call what: every route of the router against every role and no token, as one table
//! of statuses pinned by a snapshot, identical on every backend.

use std::fmt::Write as _;

use axum::body::Body;
use axum::http::{header, Method, Request};
use expect_test::expect;
use serde_json::{json, Value};

use crate::support::{each_backend, TestApi, World, ROLES};

/// One row: what to send. `{ticket}` is a ticket of the world's customer, `{token}` a fresh
/// token made for the cell (so that revoking it hurts no one), `{agent}` the world's agent (the
/// one agent and supervisor tokens act as).
struct Row {
    label: &'static str,
    method: Method,
    path: &'static str,
    body: fn(&World) -> Option<Value>,
}

fn rows() -> Vec<Row> {
    fn none(_: &World) -> Option<Value> {
        None
    }
    vec![
        Row {
            label: "POST /v1/admin/agents",
            method: Method::POST,
            path: "/v1/admin/agents",
            body: |_| Some(json!({"name": "New Agent"})),
        },
        Row {
            label: "GET /v1/admin/agents",
            method: Method::GET,
            path: "/v1/admin/agents",
            body: none,
        },
        Row {
            label: "POST /v1/admin/agents/{id}",
            method: Method::POST,
            path: "/v1/admin/agents/{agent}",
            body: |_| Some(json!({"skills": ["billing"], "capacity": 12})),
        },
        Row {
            label: "PUT /v1/agents/{id}/presence",
            method: Method::PUT,
            path: "/v1/agents/{agent}/presence",
            body: |_| Some(json!({"presence": "online"})),
        },
        Row {
            label: "POST /v1/admin/teams",
            method: Method::POST,
            path: "/v1/admin/teams",
            body: |_| Some(json!({"name": "Billing"})),
        },
        Row {
            label: "GET /v1/admin/teams",
            method: Method::GET,
            path: "/v1/admin/teams",
            body: none,
        },
        Row {
            label: "POST /v1/admin/customers",
            method: Method::POST,
            path: "/v1/admin/customers",
            body: |_| Some(json!({"name": "New Customer"})),
        },
        Row {
            label: "GET /v1/admin/customers",
            method: Method::GET,
            path: "/v1/admin/customers",
            body: none,
        },
        Row {
            label: "POST /v1/admin/tokens",
            method: Method::POST,
            path: "/v1/admin/tokens",
            body: |_| Some(json!({"role": "analyst", "label": "reports"})),
        },
        Row {
            label: "GET /v1/admin/tokens",
            method: Method::GET,
            path: "/v1/admin/tokens",
            body: none,
        },
        Row {
            label: "POST /v1/admin/tokens/{id}/revoke",
            method: Method::POST,
            path: "/v1/admin/tokens/{token}/revoke",
            body: none,
        },
        Row {
            label: "POST /v1/tickets",
            method: Method::POST,
            path: "/v1/tickets",
            body: |world| Some(World::new_ticket(&world.customer)),
        },
        Row {
            label: "GET /v1/tickets",
            method: Method::GET,
            path: "/v1/tickets",
            body: none,
        },
        Row {
            label: "GET /v1/queues/next",
            method: Method::GET,
            path: "/v1/queues/next",
            body: none,
        },
        Row {
            label: "GET /v1/queues/next?agent={id}",
            method: Method::GET,
            path: "/v1/queues/next?agent={agent}",
            body: none,
        },
        Row {
            label: "GET /v1/reports/summary",
            method: Method::GET,
            path: "/v1/reports/summary?from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            body: none,
        },
        Row {
            label: "GET /v1/tickets/{id}",
            method: Method::GET,
            path: "/v1/tickets/{ticket}",
            body: none,
        },
        Row {
            label: "commands: add_tags",
            method: Method::POST,
            path: "/v1/tickets/{ticket}/commands",
            body: |_| Some(json!({"type": "add_tags", "tags": ["billing"]})),
        },
        Row {
            label: "commands: add_internal_note",
            method: Method::POST,
            path: "/v1/tickets/{ticket}/commands",
            body: |_| Some(json!({"type": "add_internal_note", "body": "checked the logs"})),
        },
        Row {
            label: "commands: post_public_reply",
            method: Method::POST,
            path: "/v1/tickets/{ticket}/commands",
            body: |_| Some(json!({"type": "post_public_reply", "body": "请稍后再试"})),
        },
        Row {
            label: "commands: post_customer_message",
            method: Method::POST,
            path: "/v1/tickets/{ticket}/commands",
            body: |_| Some(json!({"type": "post_customer_message", "body": "still failing"})),
        },
        Row {
            label: "commands: assign_agent (self)",
            method: Method::POST,
            path: "/v1/tickets/{ticket}/commands",
            body: |world| Some(json!({"type": "assign_agent", "agent": world.agent["agent_id"]})),
        },
        Row {
            label: "commands: assign_agent (other)",
            method: Method::POST,
            path: "/v1/tickets/{ticket}/commands",
            body: |world| {
                Some(json!({"type": "assign_agent", "agent": world.other_agent["agent_id"]}))
            },
        },
        Row {
            label: "GET /v1/tickets/{id}/events",
            method: Method::GET,
            path: "/v1/tickets/{ticket}/events",
            body: none,
        },
        Row {
            label: "GET /v1/events",
            method: Method::GET,
            path: "/v1/events",
            body: none,
        },
        Row {
            label: "GET /v1/events/stream",
            method: Method::GET,
            path: "/v1/events/stream",
            body: none,
        },
        Row {
            label: "GET /v1/audit/verify",
            method: Method::GET,
            path: "/v1/audit/verify",
            body: none,
        },
        Row {
            label: "GET /healthz",
            method: Method::GET,
            path: "/healthz",
            body: none,
        },
        Row {
            label: "GET /readyz",
            method: Method::GET,
            path: "/readyz",
            body: none,
        },
        Row {
            label: "GET /metrics",
            method: Method::GET,
            path: "/metrics",
            body: none,
        },
    ]
}

/// Sends every row as every role (and as no one) and renders the statuses as a table.
async fn table(api: &TestApi, world: &World) -> String {
    let mut out = format!("{:<34}", "");
    for role in ROLES.iter().chain(&["none"]) {
        write!(out, " {:>5}", &role[..5.min(role.len())]).unwrap();
    }
    out.push('\n');
    for row in rows() {
        write!(out, "{:<34}", row.label).unwrap();
        let callers = ROLES
            .iter()
            .map(|role| Some(world.token(role).to_owned()))
            .chain([None]);
        for caller in callers {
            // A cell that writes gets a fresh ticket or token, so that no cell depends on another.
            let mut path = row.path.to_owned();
            if path.contains("{ticket}") {
                path = path.replace("{ticket}", &world.ticket_for(api, &world.customer).await);
            }
            if path.contains("{agent}") {
                path = path.replace("{agent}", world.agent["agent_id"].as_str().unwrap());
            }
            if path.contains("{token}") {
                let spare = api
                    .post("/v1/admin/tokens", &api.admin, json!({"role": "auditor"}))
                    .await;
                path = path.replace("{token}", spare.body["token_id"].as_str().unwrap());
            }
            let mut request = Request::builder().method(row.method.clone()).uri(path);
            if let Some(token) = &caller {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let body = match (row.body)(world) {
                Some(body) => {
                    request = request.header(header::CONTENT_TYPE, "application/json");
                    Body::from(body.to_string())
                }
                None => Body::empty(),
            };
            // Only the status: the event stream's body never ends.
            let reply = api.send(request.body(body).unwrap()).await;
            write!(out, " {:>5}", reply.status().as_u16()).unwrap();
        }
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn every_route_for_every_role() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let table = table(&api, &world).await;
        expect![[r#"
                                               admin super agent custo audit analy integ  none
            POST /v1/admin/agents                201   201   403   403   403   403   403   401
            GET /v1/admin/agents                 200   200   403   403   200   200   403   401
            POST /v1/admin/agents/{id}           200   200   403   403   403   403   403   401
            PUT /v1/agents/{id}/presence         200   200   200   403   403   403   403   401
            POST /v1/admin/teams                 201   403   403   403   403   403   403   401
            GET /v1/admin/teams                  200   200   200   403   200   200   403   401
            POST /v1/admin/customers             201   403   403   403   403   403   201   401
            GET /v1/admin/customers              200   200   200   403   200   200   403   401
            POST /v1/admin/tokens                201   403   403   403   403   403   403   401
            GET /v1/admin/tokens                 200   403   403   403   200   403   403   401
            POST /v1/admin/tokens/{id}/revoke    200   403   403   403   403   403   403   401
            POST /v1/tickets                     201   201   201   201   403   403   201   401
            GET /v1/tickets                      200   200   200   200   200   200   200   401
            GET /v1/queues/next                  400   200   200   403   403   403   403   401
            GET /v1/queues/next?agent={id}       200   200   200   403   403   403   403   401
            GET /v1/reports/summary              200   200   403   403   200   200   403   401
            GET /v1/tickets/{id}                 200   200   200   200   200   200   200   401
            commands: add_tags                   200   200   200   403   403   403   403   401
            commands: add_internal_note          200   200   200   403   403   403   403   401
            commands: post_public_reply          200   200   200   403   403   403   403   401
            commands: post_customer_message      403   403   403   200   403   403   200   401
            commands: assign_agent (self)        200   200   200   403   403   403   403   401
            commands: assign_agent (other)       200   200   200   403   403   403   403   401
            GET /v1/tickets/{id}/events          200   200   200   200   200   200   200   401
            GET /v1/events                       200   403   403   403   200   200   403   401
            GET /v1/events/stream                200   403   403   403   200   200   403   401
            GET /v1/audit/verify                 200   403   403   403   200   403   403   401
            GET /healthz                         200   200   200   200   200   200   200   200
            GET /readyz                          200   200   200   200   200   200   200   200
            GET /metrics                         200   200   200   200   200   200   200   200
        "#]]
        .assert_eq(&table);
        api
    })
    .await;
}
