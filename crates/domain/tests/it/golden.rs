//! Events are forever: every event type's JSON is pinned by `tests/golden/<Type>.v<N>.json`,
//! and every golden file, old versions included, must still decode through `from_stored`.
//!
//! A failing comparison means a released shape changed. Do not refresh the file: add a new
//! schema version and an upcaster. Only a new event type or version gets a new file, written
//! with `UPDATE_GOLDEN=1 cargo test -p domain`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use domain::{upcast, DecodeError, Event, Upcaster, EVENT_TYPES};
use expect_test::expect;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One realistic example of every event type, produced by the decider itself.
fn samples() -> BTreeMap<&'static str, Event> {
    let mut create = serde_json::to_value(create("refund")).unwrap();
    create["attachments"] = json!([attachment(1, "broken-cup.jpg", "image/jpeg")]);
    let script = vec![
        (customer(), command(create)),
        (
            agent(),
            command(
                json!({"type": "update_fields", "subject": "退款：杯子破损", "set": {"refund_amount": 120}, "unset": ["order_id"]}),
            ),
        ),
        (
            agent(),
            command(
                json!({"type": "set_priority", "priority": "high", "reason": "second complaint this week"}),
            ),
        ),
        (
            system(),
            command(
                json!({"type": "change_priority_by_rule", "priority": "urgent", "rule_id": "sentiment.negative", "evidence": "negative sentiment 0.91: 太差劲"}),
            ),
        ),
        (
            agent(),
            command(json!({"type": "add_tags", "tags": ["broken", "vip"]})),
        ),
        (
            agent(),
            command(json!({"type": "remove_tags", "tags": ["shipping"]})),
        ),
        (
            system(),
            command(
                json!({"type": "assign_team", "team": BILLING, "reason": "keyword 退款 routes to billing"}),
            ),
        ),
        (
            system(),
            command(
                json!({"type": "assign_agent", "agent": BOB, "reason": "round_robin in team Billing: 1 of 3 agents looked at could take it", "routing": {
                    "team": BILLING, "strategy": "round_robin", "required_skills": ["billing"],
                    "language": "zh", "vip_group": false, "considered": 3, "candidates": 1,
                    "skipped": [
                        {"agent": ANN, "why": "at_capacity", "load": 20, "capacity": 20},
                        {"agent": Uuid::from_u128(0xa003), "why": "not_available", "presence": "away"}
                    ],
                    "skipped_total": 2
                }}),
            ),
        ),
        (
            agent(),
            command(
                json!({"type": "transfer_team", "team": TECH, "note": "card terminal bug, not billing"}),
            ),
        ),
        (
            agent(),
            command(json!({"type": "assign_agent", "agent": ANN})),
        ),
        (
            agent(),
            command(json!({"type": "unassign_agent", "reason": "wrong queue"})),
        ),
        (
            agent(),
            command(json!({"type": "assign_agent", "agent": ANN})),
        ),
        (
            agent(),
            command(json!({"type": "add_collaborator", "agent": BOB})),
        ),
        (
            agent(),
            command(json!({"type": "remove_collaborator", "agent": BOB})),
        ),
        (
            system(),
            command(
                json!({"type": "apply_sla", "policy_id": "vip", "policy_version": 2, "targets": [{"metric": "first_response", "due_at": at(10)}, {"metric": "resolution", "due_at": at(8 * 60)}], "reason": "customer tier vip, priority urgent"}),
            ),
        ),
        (
            system(),
            command(
                json!({"type": "record_sla_warning", "policy_id": "vip", "metric": "first_response", "due_at": at(10)}),
            ),
        ),
        (
            system(),
            command(
                json!({"type": "record_sla_breach", "policy_id": "vip", "metric": "first_response", "due_at": at(10)}),
            ),
        ),
        (
            system(),
            command(
                json!({"type": "recompute_sla", "policy_id": "vip", "policy_version": 2, "metric": "resolution", "due_at": at(9 * 60), "elapsed_business_seconds": 1800, "cause": "resumed", "reason": "left pending after 60 business minutes: due moves out by the paused time"}),
            ),
        ),
        (
            system(),
            command(
                json!({"type": "escalate", "level": 1, "rule_id": "sla.breach.notify_supervisor", "reason": "first response breached by 0 minutes", "notify": [BOB]}),
            ),
        ),
        (
            system(),
            command(
                json!({"type": "flag_customer_upset", "rule_id": "sentiment.upset", "evidence": "negative sentiment score 6: 再也不买 / 太差劲"}),
            ),
        ),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "start_review"})),
        ),
        (
            agent(),
            command(
                json!({"type": "add_internal_note", "body": "@Bob photo confirms the crack; approve.", "mentions": [BOB]}),
            ),
        ),
        (
            agent(),
            command(
                json!({"type": "attach_file", "attachment": attachment(2, "courier-report.pdf", "application/pdf"), "visibility": "internal"}),
            ),
        ),
        (
            agent(),
            command(json!({"type": "link_ticket", "other": OTHER_TICKET, "kind": "related"})),
        ),
        (
            system(),
            command(
                json!({"type": "record_merged_duplicate", "duplicate": Uuid::from_u128(0x7002), "duplicate_number": 10050}),
            ),
        ),
        (
            agent(),
            command(json!({"type": "update_fields", "set": {"order_id": "12345"}})),
        ),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "approve"})),
        ),
        (
            agent(),
            command(json!({"type": "post_public_reply", "body": "退款已批准，3 个工作日内到账。"})),
        ),
        (
            integration(),
            command(json!({"type": "transition_ticket", "transition": "mark_refunded"})),
        ),
        (
            system(),
            command(json!({"type": "send_satisfaction_survey", "rule_id": "timed:close_solved"})),
        ),
        (
            customer(),
            command(
                json!({"type": "rate_satisfaction", "score": 4, "comment": "快，但第一次回复慢"}),
            ),
        ),
        (
            customer(),
            command(json!({"type": "post_customer_message", "body": "钱还没到账"})),
        ),
        (
            agent(),
            command(
                json!({"type": "merge_into", "survivor": OTHER_TICKET, "survivor_number": 10041, "note": "same refund as #10041"}),
            ),
        ),
    ];
    let (_, history) = decide_all(&script);
    let mut samples = BTreeMap::new();
    for event in history {
        samples.entry(event.event_type()).or_insert(event);
    }
    samples
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

#[test]
fn every_event_type_has_a_sample() {
    let samples = samples();
    let missing: Vec<&str> = EVENT_TYPES
        .iter()
        .map(|(event_type, _)| *event_type)
        .filter(|event_type| !samples.contains_key(event_type))
        .collect();
    assert!(missing.is_empty(), "no sample for {missing:?}");
}

#[test]
fn serialization_matches_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut changed = Vec::new();
    for event in samples().values() {
        let path = golden_dir().join(format!(
            "{}.v{}.json",
            event.event_type(),
            event.schema_version()
        ));
        let actual = pretty(&event.to_payload());
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            if update && expected.is_empty() {
                std::fs::create_dir_all(golden_dir()).unwrap();
                std::fs::write(&path, &actual).unwrap();
            } else {
                changed.push(format!("{}:\n{actual}", path.display()));
            }
        }
    }
    assert!(
        changed.is_empty(),
        "released event shapes changed (add a schema version and an upcaster instead; \
         UPDATE_GOLDEN=1 only writes missing files):\n{}",
        changed.join("\n")
    );
}

#[test]
fn every_golden_file_decodes_through_from_stored() {
    let mut decoded = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let file_name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let (event_type, version) = file_name
            .strip_suffix(".json")
            .and_then(|stem| stem.split_once(".v"))
            .unwrap_or_else(|| panic!("{file_name} is not <Type>.v<N>.json"));
        let version: u32 = version.parse().unwrap();
        let payload = std::fs::read_to_string(&path).unwrap();
        let event = Event::from_stored(event_type, version, &payload)
            .unwrap_or_else(|error| panic!("{file_name}: {error}"));
        assert_eq!(event.event_type(), event_type);
        if version == event.schema_version() {
            let stored: Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(
                event.to_payload(),
                stored,
                "{file_name} does not round-trip"
            );
        }
        decoded.push((event_type.to_owned(), version));
    }
    for (event_type, version) in EVENT_TYPES {
        assert!(
            decoded.contains(&((*event_type).to_owned(), *version)),
            "no golden file for {event_type} v{version}"
        );
    }
}

fn rename_labels_to_tags(mut value: Value) -> Result<Value, String> {
    let object = value.as_object_mut().ok_or("payload is not an object")?;
    let labels = object.remove("labels").ok_or("no `labels`")?;
    object.insert("tags".to_owned(), labels);
    Ok(value)
}

fn sort_tags(mut value: Value) -> Result<Value, String> {
    let tags = value["tags"].as_array_mut().ok_or("no `tags` array")?;
    tags.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    Ok(value)
}

/// The upcaster chain, exercised with a table of its own because every shipped event type is
/// still at version 1: a v1 payload goes through 1→2 and 2→3, one step at a time.
#[test]
fn upcasters_chain_step_by_step() {
    let table = [
        Upcaster {
            event_type: "TagsAdded",
            from_version: 2,
            apply: sort_tags,
        },
        Upcaster {
            event_type: "TagsAdded",
            from_version: 1,
            apply: rename_labels_to_tags,
        },
    ];
    let v1 = json!({"labels": ["vip", "broken"]});
    let v3 = upcast(&table, "TagsAdded", 1, 3, v1.clone()).unwrap();
    assert_eq!(v3, json!({"tags": ["broken", "vip"]}));
    // The upcast shape is what the current decoder reads (here the shipped v1 shape).
    let event = Event::from_stored("TagsAdded", 1, &v3.to_string()).unwrap();
    assert_eq!(event.event_type(), "TagsAdded");
    let errors = [
        upcast(&table, "TagsAdded", 0, 3, v1.clone()).unwrap_err(),
        upcast(&table, "TagsRemoved", 1, 2, v1).unwrap_err(),
        upcast(&table, "TagsAdded", 2, 3, json!({"tags": 1})).unwrap_err(),
    ];
    let actual: Vec<String> = errors.iter().map(ToString::to_string).collect();
    expect![[r#"
        no upcaster for `TagsAdded` from schema version 0
        no upcaster for `TagsRemoved` from schema version 1
        `TagsAdded` v2 payload is malformed: no `tags` array"#]]
    .assert_eq(&actual.join("\n"));
}

#[test]
fn undecodable_events_are_errors() {
    let payload = std::fs::read_to_string(golden_dir().join("TagsAdded.v1.json")).unwrap();
    let huge = format!(
        "{{\"tags\":[\"{}\"]}}",
        "x".repeat(domain::limits::EVENT_PAYLOAD_BYTES_MAX)
    );
    let cases: Vec<Result<Event, DecodeError>> = vec![
        Event::from_stored("TicketDeleted", 1, &payload),
        Event::from_stored("TagsAdded", 2, &payload),
        Event::from_stored("TagsAdded", 0, &payload),
        Event::from_stored("TagsAdded", 1, "{\"tags\": \"vip\"}"),
        Event::from_stored("TagsAdded", 1, "{\"tags\": [], \"extra\": 1}"),
        Event::from_stored("TagsAdded", 1, &huge),
    ];
    let actual: Vec<String> = cases
        .into_iter()
        .map(|result| match result {
            Ok(event) => format!("decoded {}", event.event_type()),
            Err(error) => error.to_string(),
        })
        .collect();
    expect![[r#"
        unknown event type `TicketDeleted`
        `TagsAdded` schema version 2 is not supported (current is 1)
        `TagsAdded` schema version 0 is not supported (current is 1)
        `TagsAdded` v1 payload is malformed: invalid type: string "vip", expected a sequence at line 1 column 14
        `TagsAdded` v1 payload is malformed: unknown field `extra`, expected `tags` at line 1 column 20
        `TagsAdded` v1 payload is 1048589 bytes, over the 1048576 byte limit"#]].assert_eq(&actual.join("\n"));
}

#[test]
fn customers_see_only_public_events() {
    let actual: String = samples()
        .values()
        .map(|event| format!("{}: {:?}\n", event.event_type(), event.visibility()))
        .collect();
    expect![[r#"
        AgentAssigned: Internal
        AgentUnassigned: Internal
        CollaboratorAdded: Internal
        CollaboratorRemoved: Internal
        CustomerMessageReceived: Public
        CustomerUpsetFlagged: Internal
        DuplicateMerged: Public
        Escalated: Internal
        FileAttached: Public
        InternalNoteAdded: Internal
        PriorityChanged: Internal
        PriorityChangedByRule: Internal
        PublicReplyPosted: Public
        SatisfactionRated: Public
        SatisfactionSurveySent: Public
        SlaApplied: Internal
        SlaBreached: Internal
        SlaRecomputed: Internal
        SlaWarningRaised: Internal
        TagsAdded: Internal
        TagsRemoved: Internal
        TeamAssigned: Internal
        TeamTransferred: Internal
        TicketCreated: Public
        TicketFieldsUpdated: Public
        TicketLinked: Public
        TicketMergedInto: Public
        TicketReopened: Public
        TicketTransitioned: Public
    "#]]
    .assert_eq(&actual);
}
