//! What each caller may see: customers only their own tickets and never internal notes or
//! internal fields, revoked tokens nothing at all; and the unauthenticated operations routes
//! (`/healthz`, `/readyz`, `/metrics`) with their content.

use axum::http::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{each_backend, World};

fn event_types(trail: &Value) -> Vec<String> {
    trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn customers_see_their_own_tickets_without_anything_internal() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let customer = world.token("customer");
        let agent = world.token("agent");
        let mine = world.ticket_for(&api, &world.customer).await;
        let theirs = world.ticket_for(&api, &world.other_customer).await;
        let commands = format!("/v1/tickets/{mine}/commands");
        for command in [
            json!({"type": "assign_team", "team": world.team["team_id"]}),
            json!({"type": "assign_agent", "agent": world.agent["agent_id"]}),
            json!({"type": "add_tags", "tags": ["refund-risk"]}),
            json!({"type": "add_internal_note", "body": "customer is on the watch list"}),
            json!({"type": "post_public_reply", "body": "we are looking into it"}),
        ] {
            let reply = api.post(&commands, agent, command).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        // The note never appears to the customer: not in the ticket, not in its trail.
        let ticket = api.get(&format!("/v1/tickets/{mine}"), customer).await;
        assert_eq!(ticket.status, StatusCode::OK);
        assert!(
            !ticket.body.to_string().contains("watch list"),
            "{}",
            ticket.body
        );
        for internal in [
            "assignee",
            "team",
            "tags",
            "priority",
            "fields",
            "sla_clocks",
        ] {
            assert!(ticket.body.get(internal).is_none(), "{internal} shown");
        }
        let trail = api
            .get(&format!("/v1/tickets/{mine}/events"), customer)
            .await;
        assert_eq!(trail.status, StatusCode::OK);
        let types = event_types(&trail.body);
        assert!(types.contains(&"PublicReplyPosted".to_owned()), "{types:?}");
        for internal in [
            "InternalNoteAdded",
            "TagsAdded",
            "AgentAssigned",
            "TeamAssigned",
        ] {
            assert!(!types.contains(&internal.to_owned()), "{types:?}");
        }
        assert!(!trail.body.to_string().contains("watch list"));
        assert!(!trail.body.to_string().contains("metadata"));
        // The customer's own message comes back without internal events in the response.
        let message = api
            .post(
                &commands,
                customer,
                json!({"type": "post_customer_message", "body": "any news?"}),
            )
            .await;
        assert_eq!(message.status, StatusCode::OK, "{}", message.body);
        assert!(!message.body.to_string().contains("watch list"));
        // Another customer's ticket does not exist for them, as if it never did.
        for path in [
            format!("/v1/tickets/{theirs}"),
            format!("/v1/tickets/{theirs}/events"),
        ] {
            let reply = api.get(&path, customer).await;
            assert_eq!(
                reply.status,
                StatusCode::NOT_FOUND,
                "{path}: {}",
                reply.body
            );
        }
        // Nor may they open a ticket in someone else's name, or write an internal note.
        let forged = api
            .post(
                "/v1/tickets",
                customer,
                World::new_ticket(&world.other_customer),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        let note = api
            .post(
                &commands,
                customer,
                json!({"type": "add_internal_note", "body": "psst"}),
            )
            .await;
        assert_eq!(note.status, StatusCode::FORBIDDEN, "{}", note.body);
        api
    })
    .await;
}

/// Review #7 finding 5: the sentiment rule's "customer upset" flag was kept on the ticket but
/// shown nowhere. Staff see it on the ticket; the customer does not.
#[tokio::test]
async fn staff_see_the_customer_upset_flag_and_the_customer_does_not() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let id = world.ticket_for(&api, &world.customer).await;
        let path = format!("/v1/tickets/{id}");
        let calm = api.get(&path, world.token("agent")).await;
        assert_eq!(calm.body["customer_upset"], json!(false), "{}", calm.body);
        let flag = domain::Command::FlagCustomerUpset(domain::FlagCustomerUpset {
            rule_id: "sentiment.upset".to_owned(),
            evidence: "worst service".to_owned(),
        });
        let ticket_id = domain::TicketId(id.parse().unwrap());
        api::system_command(
            &api.state,
            ticket_id,
            &flag,
            uuid::Uuid::now_v7(),
            json!({"source": "test"}),
        )
        .await
        .unwrap();
        for role in ["agent", "supervisor", "admin"] {
            let staff = api.get(&path, world.token(role)).await;
            assert_eq!(staff.status, StatusCode::OK, "{}", staff.body);
            assert_eq!(
                staff.body["customer_upset"],
                json!(true),
                "{role}: {}",
                staff.body
            );
        }
        let customer = world.token("customer");
        let theirs = api.get(&path, customer).await;
        assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
        assert!(
            theirs.body.get("customer_upset").is_none(),
            "{}",
            theirs.body
        );
        let trail = api.get(&format!("{path}/events"), customer).await;
        assert!(
            !event_types(&trail.body).contains(&"CustomerUpsetFlagged".to_owned()),
            "{}",
            trail.body
        );
        api
    })
    .await;
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        let issued = api
            .post(
                "/v1/admin/tokens",
                &api.admin,
                json!({"role": "agent", "subject": world.agent["agent_id"], "label": "laptop"}),
            )
            .await;
        assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
        let secret = issued.body["token"].as_str().unwrap().to_owned();
        let token_id = issued.body["token_id"].as_str().unwrap().to_owned();
        assert_eq!(
            api.get("/v1/admin/teams", &secret).await.status,
            StatusCode::OK
        );
        // Only the hash is kept: the list never shows a secret.
        let listed = api.get("/v1/admin/tokens", &api.admin).await;
        assert!(!listed.body.to_string().contains(&secret));
        let revoked = api
            .request(
                Method::POST,
                &format!("/v1/admin/tokens/{token_id}/revoke"),
                Some(&api.admin),
                None,
                &[],
            )
            .await;
        assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
        assert_eq!(revoked.body["revoked"], true);
        let refused = api.get("/v1/admin/teams", &secret).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
        let ticket = world.ticket_for(&api, &world.customer).await;
        let write = api
            .post(
                &format!("/v1/tickets/{ticket}/commands"),
                &secret,
                json!({"type": "add_tags", "tags": ["x"]}),
            )
            .await;
        assert_eq!(write.status, StatusCode::UNAUTHORIZED);
        // Other tokens for the same agent keep working.
        assert_eq!(
            api.get("/v1/admin/teams", world.token("agent"))
                .await
                .status,
            StatusCode::OK
        );
        api
    })
    .await;
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    each_backend(|api| async move {
        let world = World::new(&api).await;
        world.ticket_for(&api, &world.customer).await;
        let health = api.request(Method::GET, "/healthz", None, None, &[]).await;
        assert_eq!(health.status, StatusCode::OK);
        assert_eq!(health.body, json!({"status": "ok"}));
        let ready = api.request(Method::GET, "/readyz", None, None, &[]).await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
        assert_eq!(ready.body["status"], "ready");
        let head = api.get("/v1/events?limit=1000", &api.admin).await.body["next_after"].clone();
        assert_eq!(ready.body["log_position"], head);
        let missing = api.get("/v1/tickets/abc", &api.admin).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let metrics = api.request(Method::GET, "/metrics", None, None, &[]).await;
        assert_eq!(metrics.status, StatusCode::OK);
        assert!(metrics.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = metrics.body.as_str().unwrap();
        for expected in [
            "# TYPE docket_http_requests_total counter",
            r#"docket_http_requests_total{route="/v1/tickets",method="POST",status="201"}"#,
            r#"docket_http_requests_total{route="/v1/tickets/{ticket_id}",method="GET",status="404"}"#,
            "# TYPE docket_http_request_duration_seconds histogram",
            r#"docket_http_request_duration_seconds_bucket{route="/v1/tickets",le="+Inf"}"#,
            "docket_store_batches_total",
            "docket_store_appends_total",
            "docket_store_events_total",
            "docket_sse_clients 0",
            r#"docket_projection_lag_events{projection="directory"}"#,
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
        // Every request carries an id for the logs.
        assert!(health.headers.contains_key("x-request-id"));
        api
    })
    .await;
}
