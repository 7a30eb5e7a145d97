//! Webhook subscriptions and the delivery log over the admin API. A subscription to a URL where
//! nothing listens gets a failed first attempt, which the delivery log shows with its error and
//! the time of the next attempt.

use std::sync::Arc;

use api::ApiConfig;
use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const KEY: &[u8] = b"api test signing key";

/// The status and the detail up to its first `;` (lists of known names grow).
fn summary(reply: &Reply) -> Value {
    let detail = reply.body["detail"].as_str().unwrap_or("");
    json!({"status": reply.status.as_u16(), "detail": detail.split(';').next()})
}

#[tokio::test]
async fn webhooks_are_off_without_a_signing_key() {
    let api = TestApi::start(store::scratch::ScratchDb::sqlite().await).await;
    let reply = api
        .post(
            "/v1/admin/webhooks",
            &api.admin,
            json!({"name": "crm", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    api.finish().await;
}

#[tokio::test]
async fn subscriptions_and_their_delivery_log() {
    let config = ApiConfig {
        webhook_signing_key: Some(Arc::from(KEY)),
        ..ApiConfig::default()
    };
    each_backend_with(config, |api| async move {
        let world = World::new(&api).await;
        let bad = [
            json!({"name": "crm", "url": "ftp://example.com/hook", "event_types": ["*"]}),
            json!({"name": "crm", "url": "/hook", "event_types": ["*"]}),
            json!({"name": "Bad Name", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
            json!({"name": "crm", "url": "http://127.0.0.1:9/hook", "event_types": ["TicketDeleted"]}),
        ];
        let mut answers = Vec::new();
        for body in bad {
            answers.push(summary(&api.post("/v1/admin/webhooks", &api.admin, body).await));
        }
        let agent = api
            .post(
                "/v1/admin/webhooks",
                world.token("agent"),
                json!({"name": "crm", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
            )
            .await;
        answers.push(summary(&agent));
        expect_test::expect![[r#"
            [
              {
                "detail": "url \"ftp://example.com/hook\" must be an https:// or http:// URL with a host, at most 2048 bytes",
                "status": 422
              },
              {
                "detail": "url \"/hook\" must be an https:// or http:// URL with a host, at most 2048 bytes",
                "status": 422
              },
              {
                "detail": "name \"Bad Name\" must be 1 to 64 of a-z, 0-9, `_` and `-`",
                "status": 422
              },
              {
                "detail": "event type \"TicketDeleted\" is unknown",
                "status": 422
              },
              {
                "detail": "role agent may not do this",
                "status": 403
              }
            ]"#]]
        .assert_eq(&serde_json::to_string_pretty(&answers).unwrap());

        let created = api
            .post(
                "/v1/admin/webhooks",
                &api.admin,
                json!({"name": "crm", "url": "http://127.0.0.1:9/hook", "event_types": ["TicketCreated"]}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["subscription_id"].as_str().unwrap().to_owned();
        assert_eq!(
            created.body["secret"],
            json!(automation::webhook::subscription_secret(KEY, id.parse().unwrap()))
        );
        let again = api
            .post(
                "/v1/admin/webhooks",
                &api.admin,
                json!({"name": "crm", "url": "http://127.0.0.1:9/other", "event_types": ["*"]}),
            )
            .await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY, "names are unique");
        let list = api.get("/v1/admin/webhooks", &api.admin).await;
        assert_eq!(list.body["subscriptions"][0]["name"], "crm");
        assert!(list.body["subscriptions"][0].get("secret").is_none());

        // One ticket, one delivery; nothing listens on port 9, so the attempt fails.
        world.ticket_for(&api, &world.customer).await;
        let client = automation::WebhookClient::new(None).unwrap();
        let mut dispatcher =
            automation::Dispatcher::open(api.state.store().clone(), Arc::from(KEY), client)
                .await
                .unwrap();
        let now = api.state.now();
        while dispatcher.catch_up(now).await.unwrap() > 0 {}
        let attempted = dispatcher.deliver_due(now).await.unwrap();
        assert_eq!(attempted.len(), 1);
        let log = api
            .get(&format!("/v1/admin/webhooks/{id}/deliveries?state=pending"), &api.admin)
            .await;
        assert_eq!(log.status, StatusCode::OK, "{}", log.body);
        let delivery = &log.body["deliveries"][0];
        assert_eq!(delivery["event_type"], "TicketCreated");
        assert_eq!(delivery["state"], "pending");
        assert_eq!(delivery["attempts"][0]["attempt"], 1);
        assert!(delivery["attempts"][0]["error"].as_str().unwrap().starts_with("connect"));
        assert!(delivery["next_attempt_at"].is_string());
        let none = api
            .get(&format!("/v1/admin/webhooks/{id}/deliveries?state=delivered"), &api.admin)
            .await;
        assert_eq!(none.body["deliveries"], json!([]));
        let unknown = api
            .get("/v1/admin/webhooks/00000000-0000-0000-0000-000000000000/deliveries", &api.admin)
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);

        let ended = api
            .post(&format!("/v1/admin/webhooks/{id}/unsubscribe"), &api.admin, json!({}))
            .await;
        assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
        let twice = api
            .post(&format!("/v1/admin/webhooks/{id}/unsubscribe"), &api.admin, json!({}))
            .await;
        assert_eq!(twice.status, StatusCode::NOT_FOUND);
        // The log outlives the subscription.
        let log = api
            .get(&format!("/v1/admin/webhooks/{id}/deliveries"), &api.admin)
            .await;
        assert_eq!(log.body["deliveries"].as_array().unwrap().len(), 1);
        api
    })
    .await;
}
