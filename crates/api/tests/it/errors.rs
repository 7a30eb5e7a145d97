//! Every error of the API as RFC 9457 problem+json, each provoked the way a client would: 400,
//! 401, 403, 404, 409, 412, 413, 415, 422 (with the blueprint's unmet requirements), 429 (with
//! `Retry-After` and `RateLimit-*`) and 503 (with `Retry-After`) when the store is unreachable.

use std::time::Duration;

use api::{ApiConfig, RateLimit};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use expect_test::expect;
use serde_json::{json, Value};

use crate::support::{each_backend, each_backend_with, Reply, TestApi, World};

/// The API's largest request body (`api::body::BODY_BYTES_MAX`, which the crate keeps private).
const BODY_BYTES_MAX: usize = store::EVENT_BYTES_MAX + 64 * 1024;

fn assert_problem(reply: &Reply, status: StatusCode, slug: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(
        reply.headers[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(
        reply.body["type"],
        format!("/problems/{slug}"),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["status"], status.as_u16());
    assert!(reply.body["detail"].is_string(), "{}", reply.body);
}

async fn raw_post(api: &TestApi, path: &str, body: Vec<u8>, extra: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", api.admin))
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = api.send(request.body(Body::from(body)).unwrap()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

#[tokio::test]
async fn bad_requests_name_what_is_wrong() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let ticket = world.ticket_for(&api, &world.customer).await;
        let commands = format!("/v1/tickets/{ticket}/commands");
        let malformed = raw_post(&api, "/v1/tickets", b"{\"channel\": ".to_vec(), &[]).await;
        assert_problem(&malformed, StatusCode::BAD_REQUEST, "bad-request");
        assert!(
            malformed.body["detail"]
                .as_str()
                .unwrap()
                .starts_with("malformed JSON"),
            "{}",
            malformed.body
        );
        let unknown = api
            .post(
                &commands,
                &api.admin,
                json!({"type": "add_tags", "tags": ["x"], "tagz": ["y"]}),
            )
            .await;
        assert_problem(&unknown, StatusCode::BAD_REQUEST, "bad-request");
        assert!(
            unknown.body["detail"]
                .as_str()
                .unwrap()
                .contains("unknown field `tagz`"),
            "{}",
            unknown.body
        );
        let unknown_command = api
            .post(&commands, &api.admin, json!({"type": "delete_everything"}))
            .await;
        assert_problem(&unknown_command, StatusCode::BAD_REQUEST, "bad-request");
        assert!(
            unknown_command.body["detail"]
                .as_str()
                .unwrap()
                .contains("delete_everything"),
            "{}",
            unknown_command.body
        );
        let bad_if_match = api
            .request(
                Method::POST,
                &commands,
                Some(&api.admin),
                Some(json!({"type": "add_tags", "tags": ["x"]})),
                &[("if-match", "\"seven\"")],
            )
            .await;
        assert_problem(&bad_if_match, StatusCode::BAD_REQUEST, "bad-request");
        api
    })
    .await;
}

#[tokio::test]
async fn unauthenticated_forbidden_and_not_found() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        for token in [None, Some("dkt_nope"), Some("")] {
            let reply = api
                .request(Method::GET, "/v1/events", token, None, &[])
                .await;
            assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
            assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
        let basic = api
            .request(
                Method::GET,
                "/v1/events",
                None,
                None,
                &[("authorization", "Basic YWRtaW46YWRtaW4=")],
            )
            .await;
        assert_problem(&basic, StatusCode::UNAUTHORIZED, "unauthenticated");
        let forbidden = api.get("/v1/events", world.token("agent")).await;
        assert_problem(&forbidden, StatusCode::FORBIDDEN, "forbidden");
        for path in [
            "/v1/nowhere",
            "/v1/tickets/0190b2c4-7e2a-7cc0-8000-000000000001",
            "/v1/tickets/0190b2c4-7e2a-7cc0-8000-000000000001/events",
            "/v1/tickets/not-a-uuid",
        ] {
            let reply = api.get(path, &api.admin).await;
            assert_problem(&reply, StatusCode::NOT_FOUND, "not-found");
        }
        let no_token = api
            .post(
                "/v1/admin/tokens/0190b2c4-7e2a-7cc0-8000-000000000001/revoke",
                &api.admin,
                json!({}),
            )
            .await;
        assert_problem(&no_token, StatusCode::NOT_FOUND, "not-found");
        let command_on_nothing = api
            .post(
                "/v1/tickets/0190b2c4-7e2a-7cc0-8000-000000000001/commands",
                &api.admin,
                json!({"type": "add_tags", "tags": ["x"]}),
            )
            .await;
        assert_problem(&command_on_nothing, StatusCode::NOT_FOUND, "not-found");
        api
    })
    .await;
}

/// Commands without `If-Match` are decided again after losing a race, a bounded number of
/// times; many commands racing on one ticket exhaust that and get a 409 with the version. In one
/// process commands on a ticket take turns, so the race is between nodes: eight API nodes on
/// one database, each with its own store handle and cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_keeps_losing_races_is_a_conflict() {
    const NODES: usize = 8;
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let ticket = world.ticket_for(&api, &world.customer).await;
        let commands = format!("/v1/tickets/{ticket}/commands");
        let mut nodes = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            let store = store::Store::open_with(api.db.config.clone())
                .await
                .unwrap();
            let state = api::AppState::start(
                store,
                domain::BlueprintCatalog::builtin(),
                api.clock.clone(),
                ApiConfig::default(),
            )
            .await
            .unwrap();
            nodes.push(api::router(state));
        }
        // Each round races 64 notes; a round in which none loses six times in a row is possible
        // in principle, so the rounds are repeated, a bounded number of times, until one does.
        let mut conflict = None;
        let mut written = 0;
        for _ in 0..10 {
            let racers = (0..64).map(|index| {
                crate::support::call(
                    &nodes[index % NODES],
                    Method::POST,
                    &commands,
                    Some(&api.admin),
                    Some(json!({"type": "add_internal_note", "body": format!("note {index}")})),
                    &[],
                )
            });
            for reply in futures_util::future::join_all(racers).await {
                match reply.status {
                    StatusCode::OK => written += 1,
                    _ => {
                        assert_problem(&reply, StatusCode::CONFLICT, "version-conflict");
                        conflict = Some(reply);
                    }
                }
            }
            if conflict.is_some() {
                break;
            }
        }
        let conflict = conflict.expect("64 racing commands on one ticket produce a conflict");
        assert!(conflict.body["current_version"].as_u64().unwrap() > 1);
        // Every 200 wrote exactly one note, every 409 nothing.
        let current = api.get(&format!("/v1/tickets/{ticket}"), &api.admin).await;
        assert_eq!(current.body["version"], 1 + written, "{}", current.body);
        drop(nodes);
        api
    })
    .await;
}

#[tokio::test]
async fn if_match_on_a_ticket_that_moved_on_is_a_failed_precondition() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let ticket = world.ticket_for(&api, &world.customer).await;
        let seen = api.get(&format!("/v1/tickets/{ticket}"), &api.admin).await;
        let etag = seen.headers[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(etag, "\"1\"");
        let commands = format!("/v1/tickets/{ticket}/commands");
        // Someone else changes the ticket after we read it.
        let other = api
            .post(
                &commands,
                world.token("agent"),
                json!({"type": "add_tags", "tags": ["billing"]}),
            )
            .await;
        assert_eq!(other.status, StatusCode::OK);
        let stale = api
            .request(
                Method::POST,
                &commands,
                Some(&api.admin),
                Some(json!({"type": "set_priority", "priority": "high", "reason": "vip"})),
                &[("if-match", &etag)],
            )
            .await;
        assert_problem(
            &stale,
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
        );
        assert_eq!(stale.body["current_version"], 2);
        let weak = api
            .request(
                Method::POST,
                &commands,
                Some(&api.admin),
                Some(json!({"type": "set_priority", "priority": "high", "reason": "vip"})),
                &[("if-match", "W/\"2\"")],
            )
            .await;
        assert_eq!(weak.status, StatusCode::OK, "{}", weak.body);
        assert_eq!(weak.headers[header::ETAG], "\"3\"");
        api
    })
    .await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_too_large_and_need_json() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        // A body of exactly the limit is read (and judged on its content); one byte more is not.
        let mut ticket = World::new_ticket(&world.customer);
        ticket["description"] = json!("");
        let frame = ticket.to_string().len();
        ticket["description"] = json!("x".repeat(BODY_BYTES_MAX - frame));
        let at_limit = ticket.to_string().into_bytes();
        assert_eq!(at_limit.len(), BODY_BYTES_MAX);
        let judged = raw_post(&api, "/v1/tickets", at_limit.clone(), &[]).await;
        assert_ne!(
            judged.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            judged.body
        );
        assert_ne!(judged.status, StatusCode::INTERNAL_SERVER_ERROR);
        let mut over = at_limit;
        over.insert(1, b' ');
        let too_large = raw_post(&api, "/v1/tickets", over.clone(), &[]).await;
        assert_problem(
            &too_large,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
        );
        // A declared length over the limit is refused before the body is read.
        let declared = raw_post(
            &api,
            "/v1/tickets",
            over.clone(),
            &[("content-length", &over.len().to_string())],
        )
        .await;
        assert_problem(
            &declared,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
        );
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut request = Request::builder()
                .method(Method::POST)
                .uri("/v1/tickets")
                .header(header::AUTHORIZATION, format!("Bearer {}", api.admin));
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            let body = World::new_ticket(&world.customer).to_string();
            let response = api.send(request.body(Body::from(body)).unwrap()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
        }
        api
    })
    .await;
}

/// The refund blueprint: approving needs an `image/*` attachment and an internal note; the
/// rejection lists what is unmet and which transitions are allowed, for clients to act on.
#[tokio::test]
async fn a_refused_transition_says_what_is_missing() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let agent = world.token("agent");
        let mut refund = World::new_ticket(&world.customer);
        refund["ticket_type"] = json!("refund");
        refund["fields"] = json!({"order_id": "A-1001", "refund_amount": 300});
        let created = api.post("/v1/tickets", agent, refund).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let commands = format!(
            "/v1/tickets/{}/commands",
            created.body["ticket_id"].as_str().unwrap()
        );
        for command in [
            json!({"type": "assign_agent", "agent": world.agent["agent_id"]}),
            json!({"type": "transition_ticket", "transition": "start_review"}),
        ] {
            let reply = api.post(&commands, agent, command).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        let approve = json!({"type": "transition_ticket", "transition": "approve"});
        let refused = api.post(&commands, agent, approve.clone()).await;
        assert_problem(
            &refused,
            StatusCode::UNPROCESSABLE_ENTITY,
            "command-rejected",
        );
        expect![[r#"
            {
              "allowed": [
                {
                  "name": "request_evidence",
                  "to": "waiting_on_customer"
                },
                {
                  "name": "approve",
                  "to": "approved"
                },
                {
                  "name": "reject",
                  "to": "rejected"
                }
              ],
              "rule": "transition_requirements_unmet",
              "transition": "approve",
              "unmet": [
                {
                  "content_type": "image/*",
                  "kind": "attachment"
                },
                {
                  "kind": "internal_note"
                }
              ]
            }"#]]
        .assert_eq(&serde_json::to_string_pretty(&refused.body["rejection"]).unwrap());
        let photo = json!({
            "type": "attach_file",
            "attachment": {
                "id": "0190b2c4-7e2a-7cc0-8000-00000000a001",
                "name": "broken.jpg",
                "content_type": "image/jpeg",
                "size_bytes": 52_000,
                "sha256": "a".repeat(64),
            },
        });
        let attached = api.post(&commands, world.token("customer"), photo).await;
        assert_eq!(attached.status, StatusCode::OK, "{}", attached.body);
        let still = api.post(&commands, agent, approve.clone()).await;
        assert_eq!(still.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            still.body["rejection"]["unmet"],
            json!([{"kind": "internal_note"}])
        );
        let note = json!({"type": "add_internal_note", "body": "photo shows the damage"});
        assert_eq!(
            api.post(&commands, agent, note).await.status,
            StatusCode::OK
        );
        let approved = api.post(&commands, agent, approve).await;
        assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
        api
    })
    .await;
}

#[tokio::test]
async fn over_the_rate_limit_is_told_when_to_come_back() {
    let config = ApiConfig {
        rate_limit: RateLimit {
            burst: 3,
            per_second: 1,
        },
        ..ApiConfig::default()
    };
    each_backend_with(config, |api| async move {
        // Tokens issued by the API itself are not counted against a caller; the admin's are.
        let auditor = api
            .state
            .issue_token(api::ApiRole::Auditor, None, "limited")
            .await
            .unwrap();
        for _ in 0..3 {
            assert_eq!(api.get("/v1/events", &auditor).await.status, StatusCode::OK);
        }
        let limited = api.get("/v1/events", &auditor).await;
        assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
        assert_eq!(limited.headers[header::RETRY_AFTER], "1");
        assert_eq!(limited.headers["ratelimit-limit"], "3");
        assert_eq!(limited.headers["ratelimit-remaining"], "0");
        assert_eq!(limited.headers["ratelimit-reset"], "1");
        // Another token has its own bucket; unauthenticated routes have none.
        assert_eq!(
            api.get("/v1/events", &api.admin).await.status,
            StatusCode::OK
        );
        for _ in 0..5 {
            let health = api.request(Method::GET, "/healthz", None, None, &[]).await;
            assert_eq!(health.status, StatusCode::OK);
        }
        api
    })
    .await;
}

/// The store's read connections are closed under the API's feet: reads, new tickets and
/// readiness answer 503 with `Retry-After`, never 500. (Commands on a cached ticket still go
/// through: the writer has its own connection.)
#[tokio::test]
async fn an_unreachable_store_is_unavailable_with_retry_after() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let ticket = world.ticket_for(&api, &world.customer).await;
        match (
            api.state.store().sqlite_pool(),
            api.state.store().postgres_pool(),
        ) {
            (Some(pool), _) => pool.close().await,
            (_, Some(pool)) => pool.close().await,
            (None, None) => unreachable!("a store has one backend"),
        }
        let requests = [
            (Method::GET, format!("/v1/tickets/{ticket}"), None),
            (Method::GET, format!("/v1/tickets/{ticket}/events"), None),
            (
                Method::POST,
                "/v1/tickets".to_owned(),
                Some(World::new_ticket(&world.customer)),
            ),
            (Method::GET, "/v1/events".to_owned(), None),
            (Method::GET, "/v1/audit/verify".to_owned(), None),
            (Method::GET, "/readyz".to_owned(), None),
        ];
        for (method, path, body) in requests {
            let reply = tokio::time::timeout(
                Duration::from_secs(30),
                api.request(method.clone(), &path, Some(&api.admin), body, &[]),
            )
            .await
            .unwrap_or_else(|_| panic!("{method} {path} answered within 30 s"));
            assert_problem(&reply, StatusCode::SERVICE_UNAVAILABLE, "store-unavailable");
            assert_eq!(reply.headers[header::RETRY_AFTER], "2", "{method} {path}");
        }
        api
    })
    .await;
}
