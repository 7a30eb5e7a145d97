//! Time-based automations as `docket serve` runs them: the timed rules' source in the SLA
//! scheduler's driver, in the background of the API state, issuing due work as the system
//! actor through the same decide-and-append path as every command. With the manual clock: a
//! ticket left waiting on the customer is reminded after 72 hours and expired after 7 days; a
//! resolved one is closed after 48 hours and surveyed. Waits are bounded polls of the log.

use std::sync::Arc;
use std::time::Duration;

use api::ApiConfig;
use axum::http::StatusCode;
use serde_json::{json, Value};
use sla_scheduler::{Leadership, Policies, SlaConfig, TimerSource};
use store::scratch::ScratchDb;

use crate::support::{automation_section, TestApi, World};

const TIMED: &str = r#"
[automation.timed]
remind_pending_after_hours = 72
reminder = "Hello {{customer.name}}, we are waiting for your answer on {{ticket.number}}."
close_pending_after_hours = 168
close_pending_transition = "expire"
close_solved_after_hours = 48
"#;

/// The ticket's events as `type by role`, once `done` holds of them; bounded. The SLA
/// scheduler's own events are left out: when it records them depends on when it catches up.
async fn events_until(
    api: &TestApi,
    ticket: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let path = format!("/v1/tickets/{ticket}/events");
    for _ in 0..500 {
        let reply = api.get(&path, &api.admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let events: Vec<String> = reply.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| !event["type"].as_str().unwrap().starts_with("Sla"))
            .map(|event| {
                let role = event["metadata"]["actor"]["role"].as_str().unwrap_or("?");
                format!("{} by {role}", event["type"].as_str().unwrap())
            })
            .collect();
        if done(&events) {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the scheduler did not get there: {ticket}");
}

async fn state(api: &TestApi, ticket: &str) -> Value {
    let path = format!("/v1/tickets/{ticket}");
    api.get(&path, &api.admin).await.body["state"].clone()
}

#[tokio::test]
async fn waiting_tickets_are_reminded_then_expired_and_solved_ones_closed_and_surveyed() {
    let automation = automation_section(TIMED);
    let config = ApiConfig {
        automation: automation.clone(),
        ..ApiConfig::default()
    };
    let api = TestApi::start_with(ScratchDb::sqlite().await, config).await;
    let world = World::new(&api).await;
    let rules = automation.timed.clone();
    let timed: api::scheduler::SourceFactory = Arc::new(move || {
        vec![Box::new(automation::timed::TimedSource::new(rules.clone())) as Box<dyn TimerSource>]
    });
    let policies = Arc::new(Policies::compile(&SlaConfig::shipped()).unwrap());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    api.state
        .start_scheduler(policies, Some(timed), Leadership::Single, stopped);

    let agent = world.token("agent");
    let mut tickets = Vec::new();
    for last in ["ask_customer", "resolve"] {
        let ticket = world.ticket_for(&api, &world.customer).await;
        let commands = format!("/v1/tickets/{ticket}/commands");
        for command in [
            json!({"type": "assign_agent", "agent": world.agent["agent_id"]}),
            json!({"type": "transition_ticket", "transition": "start"}),
            json!({"type": "post_public_reply", "body": "Which model is it?"}),
            json!({"type": "transition_ticket", "transition": last}),
        ] {
            let reply = api.post(&commands, agent, command).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        tickets.push(ticket);
    }
    let system = |events: &[String], event_type: &str| {
        events
            .iter()
            .filter(|event| **event == format!("{event_type} by system"))
            .count()
    };

    api.clock.advance(48 * 3600 + 60);
    let solved = events_until(&api, &tickets[1], |events| {
        system(events, "SatisfactionSurveySent") == 1
    })
    .await;
    assert_eq!(system(&solved, "TicketTransitioned"), 1, "{solved:#?}");
    api.clock.advance(24 * 3600);
    let waiting = events_until(&api, &tickets[0], |events| {
        system(events, "PublicReplyPosted") == 1
    })
    .await;
    api.clock.advance(96 * 3600);
    let expired = events_until(&api, &tickets[0], |events| {
        system(events, "TicketTransitioned") == 1
    })
    .await;
    let trail = api
        .get(&format!("/v1/tickets/{}/events", tickets[0]), &api.admin)
        .await
        .body;
    let reminder = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| {
            event["type"] == "PublicReplyPosted" && event["metadata"]["actor"]["role"] == "system"
        })
        .map(|event| event["data"]["pii"]["body"].clone());
    // Every system event records the rule that fired and its evidence (review-7 finding 3).
    let mut recorded = Vec::new();
    for ticket in &tickets {
        let trail = api
            .get(&format!("/v1/tickets/{ticket}/events"), &api.admin)
            .await
            .body;
        for event in trail["events"].as_array().unwrap() {
            if event["metadata"]["actor"]["role"] != "system"
                || event["type"].as_str().unwrap().starts_with("Sla")
            {
                continue;
            }
            let scheduler = &event["metadata"]["scheduler"];
            assert!(scheduler["rule"].is_string(), "no rule: {event:#}");
            assert!(
                scheduler["evidence"]["state_entered_at"].is_string(),
                "no evidence: {event:#}"
            );
            // The version depends on how many SLA events the scheduler wrote before: checked
            // for presence, left out of the snapshot.
            let mut scheduler = scheduler.clone();
            let version = scheduler["evidence"]
                .as_object_mut()
                .unwrap()
                .remove("state_entered_version");
            assert!(version.is_some_and(|v| v.is_u64()), "no version: {event:#}");
            recorded.push(json!({"type": event["type"], "scheduler": scheduler}));
        }
    }
    expect_test::expect![[r#"
        [
          {
            "scheduler": {
              "due_at": "2026-11-05T09:00:00Z",
              "evidence": {
                "delay_hours": 72,
                "state": "pending",
                "state_entered_at": "2026-11-02T09:00:00Z"
              },
              "rule": "remind_pending",
              "source": "automation.timed"
            },
            "type": "PublicReplyPosted"
          },
          {
            "scheduler": {
              "due_at": "2026-11-09T09:00:00Z",
              "evidence": {
                "delay_hours": 168,
                "state": "pending",
                "state_entered_at": "2026-11-02T09:00:00Z"
              },
              "rule": "close_pending",
              "source": "automation.timed"
            },
            "type": "TicketTransitioned"
          },
          {
            "scheduler": {
              "due_at": "2026-11-04T09:00:00Z",
              "evidence": {
                "delay_hours": 48,
                "state": "solved",
                "state_entered_at": "2026-11-02T09:00:00Z"
              },
              "rule": "close_solved",
              "source": "automation.timed"
            },
            "type": "TicketTransitioned"
          },
          {
            "scheduler": {
              "due_at": "2026-11-04T09:00:00Z",
              "evidence": {
                "delay_hours": 48,
                "state": "solved",
                "state_entered_at": "2026-11-02T09:00:00Z"
              },
              "rule": "close_solved",
              "source": "automation.timed"
            },
            "type": "SatisfactionSurveySent"
          }
        ]"#]]
    .assert_eq(&serde_json::to_string_pretty(&recorded).unwrap());
    let summary: Value = json!({
        "solved": solved,
        "solved state": state(&api, &tickets[1]).await,
        "waiting after 72 h": waiting,
        "reminder": reminder,
        "waiting after 168 h": expired,
        "waiting state": state(&api, &tickets[0]).await,
    });
    expect_test::expect![[r#"
        {
          "reminder": "Hello Chen Jing, we are waiting for your answer on #10000.",
          "solved": [
            "TicketCreated by admin",
            "AgentAssigned by agent",
            "TicketTransitioned by agent",
            "PublicReplyPosted by agent",
            "TicketTransitioned by agent",
            "TicketTransitioned by system",
            "SatisfactionSurveySent by system"
          ],
          "solved state": "closed",
          "waiting after 168 h": [
            "TicketCreated by admin",
            "AgentAssigned by agent",
            "TicketTransitioned by agent",
            "PublicReplyPosted by agent",
            "TicketTransitioned by agent",
            "PublicReplyPosted by system",
            "TicketTransitioned by system"
          ],
          "waiting after 72 h": [
            "TicketCreated by admin",
            "AgentAssigned by agent",
            "TicketTransitioned by agent",
            "PublicReplyPosted by agent",
            "TicketTransitioned by agent",
            "PublicReplyPosted by system"
          ],
          "waiting state": "closed"
        }"#]]
    .assert_eq(&serde_json::to_string_pretty(&summary).unwrap());
    stop.send_replace(true);
    api.db.cleanup().await;
}
