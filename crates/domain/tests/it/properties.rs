//! Property tests: random command sequences from random actors, checked against the decider's
//! invariants. Case counts stay moderate so the suite runs in seconds; proptest prints the
//! failing sequence, shrunk, when an invariant breaks.

use domain::{decide, evolve, Actor, ActorId, Command, Event, Role, StateCategory, Ticket};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

const TRANSITIONS: &[&str] = &[
    "start",
    "ask_customer",
    "resume",
    "resolve",
    "schedule_follow_up",
    "confirm",
    "close",
    "cancel",
    "start_review",
    "request_evidence",
    "resume_review",
    "approve",
    "approve_large",
    "reject",
    "mark_refunded",
    "bogus",
];
const TEXTS: &[&str] = &["", "ok", "订单 12345 未发货", "  "];
const TAGS: &[&str] = &["a", "b", "vip", "bad tag"];
const METRICS: &[&str] = &["first_response", "resolution"];

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        Just(customer()),
        Just(stranger()),
        Just(agent()),
        Just(Actor {
            id: ActorId(BOB.0),
            role: Role::Agent
        }),
        Just(supervisor()),
        Just(admin()),
        Just(system()),
        Just(integration()),
    ]
}

fn text() -> impl Strategy<Value = &'static str> {
    prop::sample::select(TEXTS)
}

fn agent_id() -> impl Strategy<Value = Uuid> {
    prop::sample::select(vec![ANN.0, BOB.0])
}

fn arbitrary_command() -> impl Strategy<Value = Command> {
    let commands = prop_oneof![
        prop::sample::select(vec!["general", "refund"]).prop_map(create),
        (text(), 0..3i64).prop_map(|(subject, amount)| command(json!({
            "type": "update_fields", "subject": if subject.is_empty() { None } else { Some(subject) },
            "set": {"refund_amount": amount * 600, "order_id": "A"},
        }))),
        (prop::sample::select(vec!["low", "normal", "high", "urgent"]), text()).prop_map(
            |(priority, reason)| command(json!({"type": "set_priority", "priority": priority, "reason": reason}))
        ),
        prop::sample::select(vec!["high", "urgent"]).prop_map(|priority| command(json!({
            "type": "change_priority_by_rule", "priority": priority, "rule_id": "kw", "evidence": "系统崩溃",
        }))),
        prop::collection::vec(prop::sample::select(TAGS), 0..3)
            .prop_map(|tags| command(json!({"type": "add_tags", "tags": tags}))),
        prop::collection::vec(prop::sample::select(TAGS), 0..3)
            .prop_map(|tags| command(json!({"type": "remove_tags", "tags": tags}))),
        prop::sample::select(vec![BILLING.0, TECH.0]).prop_map(|team| command(json!({
            "type": "assign_team", "team": team, "reason": "routing",
        }))),
        (prop::sample::select(vec![BILLING.0, TECH.0]), text()).prop_map(|(team, note)| command(
            json!({"type": "transfer_team", "team": team, "note": note})
        )),
        agent_id().prop_map(|agent| command(json!({"type": "assign_agent", "agent": agent, "reason": "rr"}))),
        Just(command(json!({"type": "unassign_agent"}))),
        agent_id().prop_map(|agent| command(json!({"type": "add_collaborator", "agent": agent}))),
        agent_id().prop_map(|agent| command(json!({"type": "remove_collaborator", "agent": agent}))),
        text().prop_map(|body| command(json!({"type": "post_public_reply", "body": body}))),
        (text(), any::<bool>()).prop_map(|(body, photo)| {
            let attachments = if photo { vec![attachment(9, "p.png", "image/png")] } else { vec![] };
            command(json!({"type": "post_customer_message", "body": body, "attachments": attachments}))
        }),
        (text(), prop::collection::vec(agent_id(), 0..3)).prop_map(|(body, mentions)| command(
            json!({"type": "add_internal_note", "body": body, "mentions": mentions})
        )),
        (0..4u128, prop::sample::select(vec!["image/jpeg", "application/pdf"]), any::<bool>())
            .prop_map(|(n, content_type, internal)| command(json!({
                "type": "attach_file",
                "attachment": attachment(n, "f", content_type),
                "visibility": if internal { "internal" } else { "public" },
            }))),
        (prop::sample::select(vec![TICKET.0, OTHER_TICKET.0]), prop::sample::select(vec!["related", "parent", "child"]))
            .prop_map(|(other, kind)| command(json!({"type": "link_ticket", "other": other, "kind": kind}))),
        prop::sample::select(vec![TICKET.0, OTHER_TICKET.0]).prop_map(|survivor| command(json!({
            "type": "merge_into", "survivor": survivor, "survivor_number": 1,
        }))),
        prop::sample::select(vec![TICKET.0, OTHER_TICKET.0]).prop_map(|duplicate| command(json!({
            "type": "record_merged_duplicate", "duplicate": duplicate, "duplicate_number": 2,
        }))),
        prop::sample::select(TRANSITIONS)
            .prop_map(|transition| command(json!({"type": "transition_ticket", "transition": transition}))),
        text().prop_map(|reason| command(json!({"type": "reopen_ticket", "reason": reason}))),
        (0..7u8).prop_map(|score| command(json!({"type": "rate_satisfaction", "score": score}))),
        (prop::sample::select(METRICS), 0..60i64).prop_map(|(metric, due)| command(json!({
            "type": "apply_sla", "policy_id": "p", "policy_version": 1,
            "targets": [{"metric": metric, "due_at": at(due)}], "reason": "tier",
        }))),
        (prop::sample::select(METRICS), 0..60i64).prop_map(|(metric, due)| command(json!({
            "type": "record_sla_warning", "policy_id": "p", "metric": metric, "due_at": at(due),
        }))),
        (prop::sample::select(METRICS), 0..60i64).prop_map(|(metric, due)| command(json!({
            "type": "record_sla_breach", "policy_id": "p", "metric": metric, "due_at": at(due),
        }))),
        (0..7u8).prop_map(|level| command(json!({
            "type": "escalate", "level": level, "rule_id": "r", "reason": "late",
        }))),
    ];
    commands
}

fn script() -> impl Strategy<Value = Vec<(Actor, Command)>> {
    (
        prop::sample::select(vec!["general", "refund"]),
        prop::collection::vec((actor(), arbitrary_command()), 0..40),
    )
        .prop_map(|(ticket_type, mut steps)| {
            steps.insert(0, (integration(), create(ticket_type)));
            steps
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decider_invariants_hold(steps in script()) {
        let mut ticket = Ticket::initial();
        let mut history: Vec<Event> = Vec::new();
        for (minute, (actor, command)) in steps.iter().enumerate() {
            let before = ticket.clone();
            let context = ctx(*actor, minute as i64);
            let Ok(events) = decide(command, &ticket, &context) else {
                continue;
            };
            let was_closed = before
                .details
                .as_ref()
                .is_some_and(|details| details.category == StateCategory::Closed);
            for event in &events {
                // Every event reads back exactly as written.
                let decoded = Event::from_stored(
                    event.event_type(),
                    event.schema_version(),
                    &event.to_payload_json(),
                );
                prop_assert_eq!(decoded.as_ref(), Ok(event));
                // Every transition is one the blueprint allows this role from this state.
                if let Event::TicketTransitioned(transitioned) = event {
                    let details = ticket.details.as_ref().expect("transition on a created ticket");
                    let blueprint = catalog()
                        .get(&details.blueprint.id, details.blueprint.version)
                        .expect("blueprint loaded");
                    let transition = blueprint.transition(&transitioned.transition).expect("known");
                    prop_assert!(transition.from.contains(&details.state));
                    prop_assert!(transition.roles.contains(&actor.role));
                }
                if was_closed {
                    prop_assert!(
                        matches!(event, Event::TicketLinked(_) | Event::DuplicateMerged(_)),
                        "closed ticket accepted {:?}", event
                    );
                }
                ticket = evolve(ticket, event);
                history.push(event.clone());
            }
            // Versions only grow, by exactly the number of events.
            prop_assert_eq!(ticket.version, before.version + events.len() as u64);
            if was_closed {
                let (then, now) = (before.details.unwrap(), ticket.details.clone().unwrap());
                prop_assert_eq!(&then.state, &now.state);
                prop_assert_eq!(now.category, StateCategory::Closed);
                prop_assert_eq!(then.tags, now.tags);
                prop_assert_eq!(then.assignee, now.assignee);
            }
            if let Some(details) = &ticket.details {
                // A ticket is never solved while unowned by the transition that solved it.
                if matches!(events.last(), Some(Event::TicketTransitioned(t)) if t.to_category == StateCategory::Solved) {
                    prop_assert!(details.assignee.is_some());
                }
                prop_assert!(details.tags.len() <= domain::limits::TAGS_PER_TICKET_MAX);
            }
        }
        // Replaying the recorded events gives the same ticket.
        prop_assert_eq!(Ticket::replay(&history), ticket);
    }

    #[test]
    fn commands_survive_a_json_round_trip(steps in script()) {
        for (_, command) in steps {
            let json = serde_json::to_string(&command).unwrap();
            let parsed: Command = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(parsed, command);
        }
    }
}
