//! A ticket's life through the API, and what each role may and may not do on the way.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{each_backend, TestApi};

async fn world(api: &TestApi) -> (Value, Value, Value) {
    let team = api
        .post("/v1/admin/teams", &api.admin, json!({"name": "Support"}))
        .await
        .body;
    let agent = api
        .post(
            "/v1/admin/agents",
            &api.admin,
            json!({"name": "Zhang San", "teams": [team["team_id"]]}),
        )
        .await
        .body;
    let customer = api
        .post(
            "/v1/admin/customers",
            &api.admin,
            json!({"name": "Chen Jing", "email": "chen@example.com"}),
        )
        .await
        .body;
    (team, agent, customer)
}

fn new_ticket(customer: &Value) -> Value {
    json!({
        "channel": "web",
        "requester": {"id": customer["customer_id"], "name": "Chen Jing"},
        "subject": "无法支付 payment failed",
        "description": "The card is declined.",
        "ticket_type": "question",
    })
}

#[tokio::test]
async fn a_ticket_from_creation_to_resolution() {
    each_backend(|api| async move {
        let (team, agent, customer) = world(&api).await;
        let customer_token = api.token("customer", Some(&customer["customer_id"])).await;
        let agent_token = api.token("agent", Some(&agent["agent_id"])).await;

        let created = api
            .post("/v1/tickets", &customer_token, new_ticket(&customer))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert_eq!(created.headers["etag"], "\"1\"");
        let ticket_id = created.body["ticket_id"].as_str().unwrap().to_owned();
        assert_eq!(
            created.headers["location"],
            format!("/v1/tickets/{ticket_id}").as_str()
        );
        assert_eq!(created.body["events"][0]["type"], "TicketCreated");
        let commands = format!("/v1/tickets/{ticket_id}/commands");

        let assigned = api
            .post(
                &commands,
                &api.admin,
                json!({"type": "assign_team", "team": team["team_id"]}),
            )
            .await;
        assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
        let mine = api
            .post(
                &commands,
                &agent_token,
                json!({"type": "assign_agent", "agent": agent["agent_id"]}),
            )
            .await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
        // Assigning again changes nothing and writes nothing.
        let again = api
            .post(
                &commands,
                &agent_token,
                json!({"type": "assign_agent", "agent": agent["agent_id"]}),
            )
            .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["events"], json!([]));
        let note = api
            .post(
                &commands,
                &agent_token,
                json!({"type": "add_internal_note", "body": "card issuer outage", "mentions": []}),
            )
            .await;
        assert_eq!(note.status, StatusCode::OK, "{}", note.body);
        api.clock.advance(90);
        let reply = api
            .post(
                &commands,
                &agent_token,
                json!({"type": "post_public_reply", "body": "请稍后再试"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

        // The customer sees their ticket without internal fields, and its trail without the note.
        let seen = api
            .get(&format!("/v1/tickets/{ticket_id}"), &customer_token)
            .await;
        assert_eq!(seen.status, StatusCode::OK);
        assert!(
            seen.body.get("assignee").is_none() && seen.body.get("tags").is_none(),
            "{}",
            seen.body
        );
        let trail = api
            .get(&format!("/v1/tickets/{ticket_id}/events"), &customer_token)
            .await;
        let types: Vec<&str> = trail.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert!(!types.contains(&"InternalNoteAdded"), "{types:?}");
        assert!(trail.body["events"][0].get("metadata").is_none());
        // Public events carry internal keys (priority, tags, custom fields, the blueprint) that a
        // customer never sees (found in review).
        let created_data = &trail.body["events"][0]["data"];
        assert_eq!(trail.body["events"][0]["type"], "TicketCreated");
        for internal in ["priority", "tags", "fields", "blueprint"] {
            assert!(
                created_data.get(internal).is_none(),
                "{internal} in {created_data}"
            );
            assert!(
                created.body["events"][0]["data"].get(internal).is_none(),
                "{internal} in the response"
            );
        }
        // The auditor sees everything, with actor, correlation and hashes.
        let auditor = api.token("auditor", None).await;
        let full = api
            .get(&format!("/v1/tickets/{ticket_id}/events"), &auditor)
            .await;
        let events = full.body["events"].as_array().unwrap();
        assert!(events
            .iter()
            .any(|event| event["type"] == "InternalNoteAdded"));
        assert_eq!(events[1]["metadata"]["actor"]["role"], "admin");
        assert_eq!(events[0]["global_hash"].as_str().unwrap().len(), 64);
        // The command's time is the (manual) clock's, not the store's.
        assert_eq!(events[0]["metadata"]["at"], "2026-11-02T09:00:00Z");
        assert_eq!(
            events.last().unwrap()["metadata"]["at"],
            "2026-11-02T09:01:30Z"
        );
        let verify = api.get("/v1/audit/verify", &auditor).await;
        assert_eq!(verify.body["first_break"], Value::Null, "{}", verify.body);
        // Auditors write nothing.
        let denied = api
            .post(
                &commands,
                &auditor,
                json!({"type": "add_tags", "tags": ["x"]}),
            )
            .await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN);
        assert_eq!(denied.headers["content-type"], "application/problem+json");
        api
    })
    .await;
}

#[tokio::test]
async fn errors_are_precise_problems() {
    each_backend(|api| async move {
        let (_, _, customer) = world(&api).await;
        let unauthenticated = api
            .request(Method::GET, "/v1/events", None, None, &[])
            .await;
        assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
        let bad_token = api.get("/v1/events", "dkt_nope").await;
        assert_eq!(bad_token.status, StatusCode::UNAUTHORIZED);
        let mut misspelled = new_ticket(&customer);
        misspelled["priorty"] = json!("high");
        let unknown_field = api.post("/v1/tickets", &api.admin, misspelled).await;
        assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
        assert!(
            unknown_field.body["detail"]
                .as_str()
                .unwrap()
                .contains("unknown field `priorty`"),
            "{}",
            unknown_field.body
        );
        let malformed = api
            .request(
                Method::POST,
                "/v1/tickets",
                Some(&api.admin),
                None,
                &[("content-type", "application/json")],
            )
            .await;
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
        let text = api
            .request(
                Method::POST,
                "/v1/tickets",
                Some(&api.admin),
                None,
                &[("content-type", "text/plain")],
            )
            .await;
        assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let missing = api
            .get(
                "/v1/tickets/0190b2c4-7e2a-7cc0-8000-000000000001",
                &api.admin,
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let not_uuid = api.get("/v1/tickets/abc", &api.admin).await;
        assert_eq!(not_uuid.status, StatusCode::NOT_FOUND);
        let created = api
            .post("/v1/tickets", &api.admin, new_ticket(&customer))
            .await;
        let commands = format!(
            "/v1/tickets/{}/commands",
            created.body["ticket_id"].as_str().unwrap()
        );
        let stale = api
            .request(
                Method::POST,
                &commands,
                Some(&api.admin),
                Some(json!({"type": "add_tags", "tags": ["vip"]})),
                &[("if-match", "\"7\"")],
            )
            .await;
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(stale.body["current_version"], 1);
        let fresh = api
            .request(
                Method::POST,
                &commands,
                Some(&api.admin),
                Some(json!({"type": "add_tags", "tags": ["vip"]})),
                &[("if-match", "\"1\"")],
            )
            .await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
        let rejected = api
            .post(
                &commands,
                &api.admin,
                json!({"type": "transition_ticket", "transition": "no_such"}),
            )
            .await;
        assert_eq!(
            rejected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            rejected.body
        );
        assert_eq!(rejected.body["type"], "/problems/command-rejected");
        assert!(
            rejected.body["rejection"]["allowed"].is_array(),
            "{}",
            rejected.body
        );
        api
    })
    .await;
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_a_different_body() {
    each_backend(|api| async move {
        let (_, _, customer) = world(&api).await;
        let key = [("idempotency-key", "create-42")];
        let first = api
            .request(
                Method::POST,
                "/v1/tickets",
                Some(&api.admin),
                Some(new_ticket(&customer)),
                &key,
            )
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        let retry = api
            .request(
                Method::POST,
                "/v1/tickets",
                Some(&api.admin),
                Some(new_ticket(&customer)),
                &key,
            )
            .await;
        assert_eq!(retry.status, StatusCode::CREATED);
        assert_eq!(retry.body, first.body);
        assert_eq!(retry.headers["idempotent-replayed"], "true");
        let mut other = new_ticket(&customer);
        other["subject"] = json!("something else");
        let reused = api
            .request(
                Method::POST,
                "/v1/tickets",
                Some(&api.admin),
                Some(other),
                &key,
            )
            .await;
        assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(reused.body["type"], "/problems/idempotency-key-reused");
        // The same key on another path is another request, not a retry (found in review).
        let ticket_id = first.body["ticket_id"].as_str().unwrap();
        let elsewhere = api
            .request(
                Method::POST,
                &format!("/v1/tickets/{ticket_id}/commands"),
                Some(&api.admin),
                Some(new_ticket(&customer)),
                &key,
            )
            .await;
        assert_eq!(
            elsewhere.status,
            StatusCode::BAD_REQUEST,
            "create_ticket is not a command: {}",
            elsewhere.body
        );
        let tag = json!({"type": "add_tags", "tags": ["x"]});
        let tag_key = [("idempotency-key", "tag-7")];
        let tagged = api
            .request(
                Method::POST,
                &format!("/v1/tickets/{ticket_id}/commands"),
                Some(&api.admin),
                Some(tag.clone()),
                &tag_key,
            )
            .await;
        assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.body);
        let other = api
            .post("/v1/tickets", &api.admin, new_ticket(&customer))
            .await
            .body["ticket_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let misdirected = api
            .request(
                Method::POST,
                &format!("/v1/tickets/{other}/commands"),
                Some(&api.admin),
                Some(tag),
                &tag_key,
            )
            .await;
        assert_eq!(
            misdirected.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            misdirected.body
        );
        // Two requests with one key at once: one writes, both get its answer (found in review).
        let race_key = [("idempotency-key", "race-1")];
        let (one, two) = tokio::join!(
            api.request(
                Method::POST,
                "/v1/tickets",
                Some(&api.admin),
                Some(new_ticket(&customer)),
                &race_key
            ),
            api.request(
                Method::POST,
                "/v1/tickets",
                Some(&api.admin),
                Some(new_ticket(&customer)),
                &race_key
            ),
        );
        assert_eq!(
            (one.status, two.status),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{} / {}",
            one.body,
            two.body
        );
        assert_eq!(one.body, two.body);
        let feed = api.get("/v1/events?limit=1000", &api.admin).await;
        let created = feed.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "TicketCreated")
            .count();
        assert_eq!(
            created, 3,
            "retries wrote nothing: the first ticket, the other one, the raced one"
        );
        api
    })
    .await;
}

/// Two nodes on one database: a node's cached ticket goes stale when the other node changes it,
/// and its next command is decided again on the ticket as it really is.
#[tokio::test]
async fn a_second_node_changing_a_ticket_never_loses_an_update() {
    each_backend(|api| async move {
        let (team, agent, customer) = world(&api).await;
        let other_node = Node::on(&api).await;
        let created = api
            .post("/v1/tickets", &api.admin, new_ticket(&customer))
            .await;
        let ticket_id = created.body["ticket_id"].as_str().unwrap().to_owned();
        let commands = format!("/v1/tickets/{ticket_id}/commands");
        let tagged = api
            .post(
                &commands,
                &api.admin,
                json!({"type": "add_tags", "tags": ["a"]}),
            )
            .await;
        assert_eq!(tagged.body["stream_version"], 2);
        // The other node assigns the team and the agent behind this node's back.
        let other_admin = other_node.admin.clone();
        let moved = other_node
            .post(
                &commands,
                &other_admin,
                json!({"type": "assign_team", "team": team["team_id"]}),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        let assigned = other_node
            .post(
                &commands,
                &other_admin,
                json!({"type": "assign_agent", "agent": agent["agent_id"]}),
            )
            .await;
        assert_eq!(assigned.body["stream_version"], 4, "{}", assigned.body);
        // This node's cache says version 2 and no assignee: the append conflicts, and the
        // command is decided again on version 4, where it changes nothing.
        let same = api
            .post(
                &commands,
                &api.admin,
                json!({"type": "assign_agent", "agent": agent["agent_id"]}),
            )
            .await;
        assert_eq!(same.status, StatusCode::OK, "{}", same.body);
        assert_eq!(
            (
                same.body["stream_version"].clone(),
                same.body["events"].clone()
            ),
            (json!(4), json!([]))
        );
        let tagged = api
            .post(
                &commands,
                &api.admin,
                json!({"type": "add_tags", "tags": ["b"]}),
            )
            .await;
        assert_eq!(tagged.body["stream_version"], 5, "{}", tagged.body);
        let ticket = api
            .get(&format!("/v1/tickets/{ticket_id}"), &api.admin)
            .await;
        assert_eq!(ticket.body["tags"], json!(["a", "b"]));
        assert_eq!(ticket.body["assignee"], agent["agent_id"]);
        drop(other_node);
        api
    })
    .await;
}

/// Another node on the test database: its own store handle, caches, directory and router.
struct Node {
    router: axum::Router,
    admin: String,
}

impl Node {
    async fn on(first: &TestApi) -> Node {
        let store = store::Store::open_with(first.db.config.clone())
            .await
            .unwrap();
        let state = api::AppState::start(
            store,
            domain::BlueprintCatalog::builtin(),
            first.clock.clone(),
            api::ApiConfig::default(),
        )
        .await
        .unwrap();
        Node {
            router: api::router(state),
            admin: first.admin.clone(),
        }
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> crate::support::Reply {
        crate::support::call(
            &self.router,
            Method::POST,
            path,
            Some(token),
            Some(body),
            &[],
        )
        .await
    }
}

/// Ticket numbers are unique across concurrent creations on two nodes: each node reserves its
/// own blocks of numbers through the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticket_numbers_are_unique_under_concurrency_across_nodes() {
    each_backend(|api| async move {
        let (_, _, customer) = world(&api).await;
        let other_node = Node::on(&api).await;
        let api = std::sync::Arc::new(api);
        let other_node = std::sync::Arc::new(other_node);
        let mut tasks = Vec::new();
        for i in 0..60 {
            let (api, other_node, body) = (api.clone(), other_node.clone(), new_ticket(&customer));
            tasks.push(tokio::spawn(async move {
                let reply = if i % 2 == 0 {
                    api.post("/v1/tickets", &api.admin, body).await
                } else {
                    other_node
                        .post("/v1/tickets", &other_node.admin, body)
                        .await
                };
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
                reply.body["events"][0]["data"]["number"].as_u64().unwrap()
            }));
        }
        let mut numbers = Vec::new();
        for task in tasks {
            numbers.push(task.await.unwrap());
        }
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), 60, "every ticket got its own number");
        assert!(numbers.iter().all(|number| *number >= 10_000));
        drop(other_node);
        std::sync::Arc::try_unwrap(api)
            .ok()
            .expect("the tasks are done")
    })
    .await;
}

/// Regression: commands on one ticket issued at once in one process (an agent's and the SLA
/// scheduler's, in `docket bench http` four in five tickets) were decided on the same version;
/// all but one failed at the append and started over, and one that lost five times in a row
/// answered 409. They now take turns: each is appended once, none conflicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_on_one_ticket_take_turns_instead_of_conflicting() {
    const NOTES: usize = 24;
    each_backend(|api| async move {
        let (_, _, customer) = world(&api).await;
        let created = api
            .post("/v1/tickets", &api.admin, new_ticket(&customer))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let commands = format!(
            "/v1/tickets/{}/commands",
            created.body["ticket_id"].as_str().unwrap()
        );
        let (_, appends_before, events_before, _) = api.state.store().stats().snapshot();
        let api = std::sync::Arc::new(api);
        let mut tasks = Vec::new();
        for n in 0..NOTES {
            let (api, commands) = (api.clone(), commands.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({"type": "add_internal_note", "body": format!("note {n}")});
                api.post(&commands, &api.admin, body).await
            }));
        }
        let mut versions = Vec::new();
        for task in tasks {
            let reply = task.await.unwrap();
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            versions.push(reply.body["stream_version"].as_u64().unwrap());
        }
        versions.sort_unstable();
        let created_version = created.body["stream_version"].as_u64().unwrap();
        let expected: Vec<u64> = (1..=NOTES as u64).map(|n| created_version + n).collect();
        assert_eq!(versions, expected, "one version each, none lost");
        let (_, appends, events, _) = api.state.store().stats().snapshot();
        assert_eq!(
            (appends - appends_before, events - events_before),
            (NOTES as u64, NOTES as u64),
            "one append per command: no append came back as a conflict"
        );
        std::sync::Arc::try_unwrap(api)
            .ok()
            .expect("the tasks are done")
    })
    .await;
}
