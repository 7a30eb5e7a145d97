//! Every `*_MAX` bound the decider enforces: accepted at the bound, rejected one past it with
//! `InvalidInput`, never a panic and never a silent truncation.

use domain::limits::*;
use domain::{decide, Actor, Command, Rejection};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

type Case = (Vec<(Actor, Command)>, (Actor, Command));

fn created() -> Vec<(Actor, Command)> {
    vec![(integration(), create("general"))]
}

fn create_with(field: &str, value: Value) -> Case {
    let mut create = serde_json::to_value(create("general")).unwrap();
    create[field] = value;
    (vec![], (agent(), command(create)))
}

fn on_created(actor: Actor, value: Value) -> Case {
    (created(), (actor, command(value)))
}

/// Repeats `step(i)` for `i < n - 1` as history, then decides `step(n - 1)`.
fn cumulative(n: usize, actor: Actor, step: impl Fn(usize) -> Value) -> Case {
    let mut given = created();
    for i in 0..n.saturating_sub(1) {
        given.push((actor, command(step(i))));
    }
    (given, (actor, command(step(n - 1))))
}

fn file(i: usize) -> Value {
    attachment(i as u128, "f.png", "image/png")
}

fn agents(n: usize) -> Vec<Uuid> {
    (0..n)
        .map(|i| Uuid::from_u128(0xa100 + i as u128))
        .collect()
}

fn check_bound(name: &str, max: usize, case: impl Fn(usize) -> Case) {
    let outcome = |n: usize| {
        let (given, (actor, command)) = case(n);
        let (ticket, _) = decide_all(&given);
        decide(&command, &ticket, &ctx(actor, 100))
    };
    if let Err(rejection) = outcome(max) {
        panic!("{name}: rejected at the bound {max}: {rejection}");
    }
    match outcome(max + 1) {
        Err(Rejection::InvalidInput { .. }) => {}
        other => panic!("{name}: past the bound {max}: expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn text_bounds() {
    check_bound("SUBJECT_BYTES_MAX", SUBJECT_BYTES_MAX, |n| {
        create_with("subject", json!("x".repeat(n)))
    });
    check_bound("BODY_BYTES_MAX (description)", BODY_BYTES_MAX, |n| {
        create_with("description", json!("x".repeat(n)))
    });
    check_bound("BODY_BYTES_MAX (reply)", BODY_BYTES_MAX, |n| {
        on_created(
            agent(),
            json!({"type": "post_public_reply", "body": "x".repeat(n)}),
        )
    });
    check_bound("REASON_BYTES_MAX", REASON_BYTES_MAX, |n| {
        on_created(
            agent(),
            json!({"type": "set_priority", "priority": "high", "reason": "x".repeat(n)}),
        )
    });
    check_bound("NAME_BYTES_MAX", NAME_BYTES_MAX, |n| {
        create_with("requester", json!({"id": CUSTOMER, "name": "x".repeat(n)}))
    });
    check_bound("EMAIL_BYTES_MAX", EMAIL_BYTES_MAX, |n| {
        create_with(
            "requester",
            json!({"id": CUSTOMER, "email": format!("{}@example.com", "x".repeat(n - 12))}),
        )
    });
    check_bound("TICKET_TYPE_BYTES_MAX", TICKET_TYPE_BYTES_MAX, |n| {
        create_with("ticket_type", json!("t".repeat(n)))
    });
    check_bound("TAG_BYTES_MAX", TAG_BYTES_MAX, |n| {
        on_created(
            agent(),
            json!({"type": "add_tags", "tags": ["t".repeat(n)]}),
        )
    });
    check_bound("IDENTIFIER_BYTES_MAX", IDENTIFIER_BYTES_MAX, |n| {
        on_created(
            system(),
            json!({"type": "change_priority_by_rule", "priority": "high", "rule_id": "r".repeat(n), "evidence": "e"}),
        )
    });
    check_bound("FIELD_NAME_BYTES_MAX", FIELD_NAME_BYTES_MAX, |n| {
        on_created(
            agent(),
            json!({"type": "update_fields", "set": {"f".repeat(n): 1}}),
        )
    });
    check_bound("FIELD_TEXT_BYTES_MAX", FIELD_TEXT_BYTES_MAX, |n| {
        on_created(
            agent(),
            json!({"type": "update_fields", "set": {"f": "x".repeat(n)}}),
        )
    });
    check_bound(
        "ATTACHMENT_NAME_BYTES_MAX",
        ATTACHMENT_NAME_BYTES_MAX,
        |n| {
            let mut attachment = file(0);
            attachment["name"] = json!("n".repeat(n));
            on_created(
                agent(),
                json!({"type": "attach_file", "attachment": attachment}),
            )
        },
    );
    check_bound("CONTENT_TYPE_BYTES_MAX", CONTENT_TYPE_BYTES_MAX, |n| {
        let mut attachment = file(0);
        attachment["content_type"] = json!(format!("image/{}", "x".repeat(n - 6)));
        on_created(
            agent(),
            json!({"type": "attach_file", "attachment": attachment}),
        )
    });
}

#[test]
fn subject_limit_counts_bytes_not_characters() {
    // 订 is three bytes in UTF-8.
    let at_bound = "订".repeat(SUBJECT_BYTES_MAX / 3);
    let (_, (actor, create)) = create_with("subject", json!(at_bound));
    assert!(decide(&create, &domain::Ticket::initial(), &ctx(actor, 0)).is_ok());
    let past = format!("{at_bound}订");
    let (_, (actor, create)) = create_with("subject", json!(past));
    assert!(decide(&create, &domain::Ticket::initial(), &ctx(actor, 0)).is_err());
}

#[test]
fn size_bound() {
    let outcome = |size: u64| {
        let mut attachment = file(0);
        attachment["size_bytes"] = json!(size);
        let (given, (actor, command)) = on_created(
            agent(),
            json!({"type": "attach_file", "attachment": attachment}),
        );
        let (ticket, _) = decide_all(&given);
        decide(&command, &ticket, &ctx(actor, 100))
    };
    assert!(outcome(ATTACHMENT_SIZE_BYTES_MAX).is_ok());
    assert!(matches!(
        outcome(ATTACHMENT_SIZE_BYTES_MAX + 1),
        Err(Rejection::InvalidInput { .. })
    ));
}

#[test]
fn count_bounds() {
    check_bound(
        "TAGS_PER_TICKET_MAX (one command)",
        TAGS_PER_TICKET_MAX,
        |n| {
            // The created ticket already has `shipping`; a fresh ticket takes the whole list.
            let tags: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            create_with("tags", json!(tags))
        },
    );
    check_bound(
        "TAGS_PER_TICKET_MAX (accumulated)",
        TAGS_PER_TICKET_MAX,
        |n| {
            cumulative(
                n - 1,
                agent(),
                |i| json!({"type": "add_tags", "tags": [format!("t{i}")]}),
            )
        },
    );
    check_bound("CUSTOM_FIELDS_MAX (create)", CUSTOM_FIELDS_MAX, |n| {
        let fields: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("f{i}"), json!(i))).collect();
        create_with("fields", Value::Object(fields))
    });
    check_bound("CUSTOM_FIELDS_MAX (accumulated)", CUSTOM_FIELDS_MAX, |n| {
        // The created ticket already has `order_id`.
        cumulative(
            n - 1,
            agent(),
            |i| json!({"type": "update_fields", "set": {format!("f{i}"): i}}),
        )
    });
    check_bound(
        "ATTACHMENTS_PER_COMMAND_MAX",
        ATTACHMENTS_PER_COMMAND_MAX,
        |n| {
            let files: Vec<Value> = (0..n).map(file).collect();
            on_created(
                agent(),
                json!({"type": "post_public_reply", "body": "b", "attachments": files}),
            )
        },
    );
    check_bound(
        "ATTACHMENTS_PER_TICKET_MAX",
        ATTACHMENTS_PER_TICKET_MAX,
        |n| {
            cumulative(
                n,
                agent(),
                |i| json!({"type": "attach_file", "attachment": file(i)}),
            )
        },
    );
    check_bound("MENTIONS_PER_NOTE_MAX", MENTIONS_PER_NOTE_MAX, |n| {
        on_created(
            agent(),
            json!({"type": "add_internal_note", "body": "b", "mentions": agents(n)}),
        )
    });
    check_bound("COLLABORATORS_MAX", COLLABORATORS_MAX, |n| {
        let agents = agents(n);
        cumulative(
            n,
            agent(),
            move |i| json!({"type": "add_collaborator", "agent": agents[i]}),
        )
    });
    check_bound("LINKS_PER_TICKET_MAX", LINKS_PER_TICKET_MAX, |n| {
        cumulative(
            n,
            agent(),
            |i| json!({"type": "link_ticket", "other": Uuid::from_u128(0x9000 + i as u128), "kind": "related"}),
        )
    });
    check_bound("MERGED_DUPLICATES_MAX", MERGED_DUPLICATES_MAX, |n| {
        cumulative(
            n,
            system(),
            |i| json!({"type": "record_merged_duplicate", "duplicate": Uuid::from_u128(0x9000 + i as u128), "duplicate_number": i}),
        )
    });
    check_bound("SLA_TARGETS_MAX", SLA_TARGETS_MAX, |n| {
        let targets: Vec<Value> = (0..n)
            .map(|i| json!({"metric": format!("m{i}"), "due_at": at(60)}))
            .collect();
        on_created(
            system(),
            json!({"type": "apply_sla", "policy_id": "p", "policy_version": 1, "targets": targets, "reason": "r"}),
        )
    });
    check_bound("SLA_CLOCKS_MAX", SLA_CLOCKS_MAX, |n| {
        cumulative(n, system(), |i| {
            json!({"type": "apply_sla", "policy_id": format!("p{i}"), "policy_version": 1,
                   "targets": [{"metric": "resolution", "due_at": at(60)}], "reason": "r"})
        })
    });
    check_bound("ESCALATION_NOTIFY_MAX", ESCALATION_NOTIFY_MAX, |n| {
        on_created(
            supervisor(),
            json!({"type": "escalate", "level": 1, "reason": "r", "notify": agents(n)}),
        )
    });
    check_bound("ESCALATION_LEVEL_MAX", ESCALATION_LEVEL_MAX.into(), |n| {
        on_created(
            supervisor(),
            json!({"type": "escalate", "level": n, "reason": "r"}),
        )
    });
    check_bound("CSAT_SCORE_MAX", CSAT_SCORE_MAX.into(), |n| {
        let mut given = created();
        for value in [
            json!({"type": "assign_agent", "agent": ANN}),
            json!({"type": "post_public_reply", "body": "b"}),
            json!({"type": "transition_ticket", "transition": "resolve"}),
        ] {
            given.push((agent(), command(value)));
        }
        (
            given,
            (
                customer(),
                command(json!({"type": "rate_satisfaction", "score": n})),
            ),
        )
    });
}

#[test]
fn blueprint_count_bounds() {
    let states: String = (0..=BLUEPRINT_STATES_MAX)
        .map(|i| format!("[[states]]\nname = \"s{i}\"\nlabel = \"S\"\ncategory = \"open\"\n"))
        .collect();
    let source = format!(
        "id = \"big\"\nversion = 1\nname = \"Big\"\ninitial = \"s0\"\nreopen_to = \"s1\"\n{states}"
    );
    let error = domain::Blueprint::from_toml("big.toml", &source).unwrap_err();
    assert_eq!(
        error.kind,
        domain::BlueprintErrorKind::TooMany {
            what: "states",
            max: BLUEPRINT_STATES_MAX
        }
    );
    // The error points at the name of the first state past the bound.
    assert_eq!(error.line, 7 + 4 * BLUEPRINT_STATES_MAX);
}
