//! `apply_macro`: a configured macro is one command whose events are appended in one append;
//! an unknown macro, a placeholder without a value and a refused step are precise errors that
//! write nothing.

use api::ApiConfig;
use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

const MACROS: &str = r#"
[[automation.macros]]
id = "payment_fixed"
title = "Payment fixed"
reply = "您好 {{customer.name}}，工单 {{ticket.number}} 的支付问题已解决。— {{agent.name}}"
add_tags = ["payment"]
transition = "resolve"

[[automation.macros]]
id = "mail_me"
title = "Needs the customer's email"
reply = "We wrote to {{customer.email}}."

[[automation.macros]]
id = "close_now"
title = "Close at once"
add_tags = ["closing"]
transition = "close"
"#;

fn config() -> ApiConfig {
    ApiConfig {
        automation: automation_section(MACROS),
        ..ApiConfig::default()
    }
}

fn summary(reply: &Reply) -> Value {
    json!({
        "status": reply.status.as_u16(),
        "events": reply.body["events"].as_array().map(|events| events.iter().map(|event| json!([event["type"], event["position"]])).collect::<Vec<_>>()),
        "detail": reply.body["detail"],
    })
}

#[tokio::test]
async fn a_macro_is_one_atomic_command() {
    each_backend_with(config(), |api| async move {
        let world = World::new(&api).await;
        let ticket = world.ticket_for(&api, &world.customer).await;
        let agent = world.token("agent");
        let commands = format!("/v1/tickets/{ticket}/commands");
        let assign = api
            .post(&commands, agent, json!({"type": "assign_agent", "agent": world.agent["agent_id"]}))
            .await;
        assert_eq!(assign.status, StatusCode::OK, "{}", assign.body);
        let version = assign.body["stream_version"].as_u64().unwrap();

        // Errors first: none of them writes anything.
        let unknown = api
            .post(&commands, agent, json!({"type": "apply_macro", "macro": "nope"}))
            .await;
        let no_email = api
            .post(&commands, agent, json!({"type": "apply_macro", "macro": "mail_me"}))
            .await;
        let refused = api
            .post(&commands, agent, json!({"type": "apply_macro", "macro": "close_now"}))
            .await;
        let misspelt = api
            .post(&commands, agent, json!({"type": "apply_macro", "makro": "close_now"}))
            .await;
        expect_test::expect![[r#"
            [
              {
                "detail": "no macro \"nope\"; known macros: close_now, mail_me, payment_fixed",
                "events": null,
                "status": 422
              },
              {
                "detail": "macro \"mail_me\": placeholder {{customer.email}} has no value for this ticket: the customer has no email on record",
                "events": null,
                "status": 422
              },
              {
                "detail": "transition `close` does not start from state `new`; allowed here: start (to in_progress), resolve (to resolved)",
                "events": null,
                "status": 422
              },
              {
                "detail": "invalid request: unknown field `makro`, expected `type` or `macro` at line 1 column 8",
                "events": null,
                "status": 400
              }
            ]"#]]
        .assert_eq(&serde_json::to_string_pretty(&json!([
            summary(&unknown),
            summary(&no_email),
            summary(&refused),
            summary(&misspelt),
        ]))
        .unwrap());
        let unchanged = api.get(&format!("/v1/tickets/{ticket}"), agent).await;
        assert_eq!(unchanged.body["version"].as_u64(), Some(version));

        // The macro: reply, tag and transition, in one append (consecutive positions).
        let applied = api
            .post(&commands, agent, json!({"type": "apply_macro", "macro": "payment_fixed"}))
            .await;
        assert_eq!(applied.status, StatusCode::OK, "{}", applied.body);
        let events = applied.body["events"].as_array().unwrap();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["PublicReplyPosted", "TagsAdded", "TicketTransitioned"]);
        let positions: Vec<u64> = events.iter().map(|e| e["position"].as_u64().unwrap()).collect();
        assert_eq!(positions[1], positions[0] + 1);
        assert_eq!(positions[2], positions[0] + 2);
        let number = api.get(&format!("/v1/tickets/{ticket}"), agent).await.body["number"].clone();
        assert_eq!(
            events[0]["data"]["pii"]["body"],
            json!(format!("您好 Chen Jing，工单 #{number} 的支付问题已解决。— Zhang San"))
        );
        assert_eq!(events[2]["data"]["to"], "resolved");
        let trail = api
            .get(&format!("/v1/tickets/{ticket}/events?from_version={}", version + 1), &api.admin)
            .await;
        for event in trail.body["events"].as_array().unwrap() {
            assert_eq!(event["metadata"]["command"], "apply_macro", "{event}");
            assert_eq!(event["metadata"]["macro"], "payment_fixed", "{event}");
        }
        api
    })
    .await;
}
