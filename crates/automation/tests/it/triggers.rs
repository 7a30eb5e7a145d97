//! Trigger evaluation and planning, data driven: a configuration, a ticket built by a script,
//! and the facts; the snapshot shows which triggers fire, in order, with their evidence, and
//! the events their actions decide as the system.

use automation::{decide_sequence, Facts, TemplateValues};
use domain::{Role, Ticket};
use expect_test::{expect, Expect};
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::support::*;

const CONFIG: &str = r#"
[automation.business_hours]
zone = "Asia/Shanghai"
monday = ["09:00-18:00"]
tuesday = ["09:00-18:00"]

[[automation.macros]]
id = "refund_ack"
title = "Acknowledge a refund"
reply = "您好 {{customer.name}}，工单 {{ticket.number}} 已收到。"
add_tags = ["refund"]

[[automation.triggers]]
id = "vip-first"
on = ["TicketCreated"]
all = [{ customer_tier = "vip" }]
actions = [{ set_priority = "high" }, { add_tags = ["vip"] }]

[[automation.triggers]]
id = "refund-to-billing"
on = ["TicketCreated", "CustomerMessageReceived"]
any = [{ text_contains = "退款" }, { text_contains = "REFUND" }, { text_matches = "(?i)money\\s+back" }]
actions = [{ assign_team = "00000000-0000-0000-0000-00000000b001" }, { apply_macro = "refund_ack" }]

[[automation.triggers]]
id = "after-hours"
on = ["TicketCreated"]
all = [{ business_hours = false }, { channel = "email" }]
actions = [{ add_note = "Arrived after hours; ticket {{ticket.number}}." }, { send_webhook = "pager" }]

[[automation.triggers]]
id = "urgent-already"
on = ["TicketCreated"]
all = [{ priority_at_least = "urgent" }]
actions = [{ add_tags = ["urgent"] }]
"#;

fn check(script: &[(Role, domain::Command)], tier: Option<&str>, at: Timestamp, expect: Expect) {
    check_with(CONFIG, script, tier, at, expect);
}

fn check_with(
    config: &str,
    script: &[(Role, domain::Command)],
    tier: Option<&str>,
    at: Timestamp,
    expect: Expect,
) {
    let automation = compile(config);
    let (ticket, events) = run(script);
    let details = ticket
        .details
        .as_ref()
        .expect("the script creates the ticket");
    let event = events.last().expect("the last command records an event");
    let facts = Facts {
        event,
        ticket: details,
        customer_tier: tier,
        at,
    };
    let values = TemplateValues {
        customer_name: Some("李雷".to_owned()),
        ticket_number: Some(details.number.0),
        ..TemplateValues::default()
    };
    let mut out = String::new();
    let mut current: Ticket = ticket.clone();
    for firing in automation.triggers.evaluate(&facts) {
        out.push_str(&format!("fires {}\n", firing.trigger.id));
        for evidence in &firing.evidence {
            out.push_str(&format!(
                "  because {} ({})\n",
                evidence.condition, evidence.matched
            ));
        }
        let plan = firing.plan(&automation.macros, &values).unwrap();
        for webhook in &plan.webhooks {
            out.push_str(&format!("  webhook {webhook}\n"));
        }
        match decide_sequence(&plan.commands, &current, &context(Role::System, at)) {
            Ok(decided) if decided.is_empty() => out.push_str("  changes nothing: no events\n"),
            Ok(decided) => {
                for event in &decided {
                    out.push_str(&format!("  => {}\n", render_event(event)));
                }
                current = decided.iter().fold(current, domain::evolve);
            }
            Err(rejection) => out.push_str(&format!("  rejected: {rejection}\n")),
        }
    }
    if out.is_empty() {
        out.push_str("nothing fires\n");
    }
    expect.assert_eq(&out);
}

#[test]
fn vip_ticket_in_office_hours() {
    check(
        &[(Role::Customer, create("Hello", "A question", json!({})))],
        Some("vip"),
        at(0),
        expect![[r#"
            fires vip-first
              because customer tier = vip (vip)
              => PriorityChangedByRule {"from":"normal","to":"high","rule_id":"trigger:vip-first","pii":{"evidence":"trigger vip-first: customer tier = vip (vip)"}}
              => TagsAdded {"tags":["vip"]}
            fires after-hours
              because business hours = false (at 2026-11-23T10:00:00Z)
              because channel = email (email)
              webhook pager
              => InternalNoteAdded {"mentions":[],"pii":{"body":"Arrived after hours; ticket #10042."}}
        "#]],
    );
}

#[test]
fn refund_in_chinese_after_hours_fires_in_configured_order() {
    // 10:00 UTC is 18:00 in Shanghai: after hours.
    check(
        &[(Role::Customer, create("申请退款", "杯子破了", json!({})))],
        Some("standard"),
        at(0),
        expect![[r#"
            fires refund-to-billing
              because text contains "退款" (subject and description at byte 6)
              => TeamAssigned {"from":null,"to":"00000000-0000-0000-0000-00000000b001","reason":"trigger refund-to-billing: text contains \"退款\" (subject and description at byte 6)"}
              => PublicReplyPosted {"attachments":[],"pii":{"body":"您好 李雷，工单 #10042 已收到。"}}
              => TagsAdded {"tags":["refund"]}
            fires after-hours
              because business hours = false (at 2026-11-23T10:00:00Z)
              because channel = email (email)
              webhook pager
              => InternalNoteAdded {"mentions":[],"pii":{"body":"Arrived after hours; ticket #10042."}}
        "#]],
    );
}

#[test]
fn text_conditions_are_case_insensitive_and_regex_capable() {
    check(
        &[
            (Role::Customer, create("Order", "hello", json!({}))),
            (
                Role::Customer,
                command(
                    json!({"type": "post_customer_message", "body": "I want my Money   Back now"}),
                ),
            ),
        ],
        None,
        at(-120),
        expect![[r#"
            fires refund-to-billing
              because text matches /(?i)money\s+back/ (message body at byte 10)
              => TeamAssigned {"from":null,"to":"00000000-0000-0000-0000-00000000b001","reason":"trigger refund-to-billing: text matches /(?i)money\\s+back/ (message body at byte 10)"}
              => PublicReplyPosted {"attachments":[],"pii":{"body":"您好 李雷，工单 #10042 已收到。"}}
              => TagsAdded {"tags":["refund"]}
        "#]],
    );
}

#[test]
fn an_action_that_changes_nothing_is_no_event() {
    // The ticket is created urgent and already tagged: the trigger fires, its action changes
    // nothing, and nothing is recorded.
    check(
        &[(
            Role::Agent,
            create(
                "Down",
                "all down",
                json!({"priority": "urgent", "tags": ["urgent"]}),
            ),
        )],
        None,
        at(-120),
        expect![[r#"
            fires urgent-already
              because priority >= urgent (urgent)
              changes nothing: no events
        "#]],
    );
}

#[test]
fn assign_agent_and_remove_tags_act_as_the_system() {
    // The actions the other scenarios do not use; the second trigger's condition reads the
    // ticket as of the event, so it fires although the first one removes the tag it looks at.
    check_with(
        r#"
[[automation.triggers]]
id = "phone-to-ann"
on = ["TicketCreated"]
all = [{ channel = "phone" }]
actions = [{ assign_agent = "00000000-0000-0000-0000-00000000a001" }, { remove_tags = ["triage"] }]

[[automation.triggers]]
id = "triage-note"
on = ["TicketCreated"]
all = [{ has_tag = "triage" }]
actions = [{ add_note = "was in triage" }]
"#,
        &[(
            Role::Agent,
            create(
                "Call back",
                "please call",
                json!({"channel": "phone", "tags": ["triage"]}),
            ),
        )],
        None,
        at(0),
        expect![[r#"
            fires phone-to-ann
              because channel = phone (phone)
              => AgentAssigned {"from":null,"to":"00000000-0000-0000-0000-00000000a001","reason":"trigger phone-to-ann: channel = phone (phone)","routing":null}
              => TagsRemoved {"tags":["triage"]}
            fires triage-note
              because has tag triage (present)
              => InternalNoteAdded {"mentions":[],"pii":{"body":"was in triage"}}
        "#]],
    );
}

/// One trigger per ticket condition, each alone, so the snapshot shows exactly which hold.
const EVERY_CONDITION: &str = r#"
[[automation.triggers]]
id = "priority"
on = ["AgentAssigned"]
all = [{ priority = "high" }]
actions = [{ add_tags = ["c1"] }]

[[automation.triggers]]
id = "priority-at-least"
on = ["AgentAssigned"]
all = [{ priority_at_least = "normal" }]
actions = [{ add_tags = ["c2"] }]

[[automation.triggers]]
id = "ticket-type"
on = ["AgentAssigned"]
all = [{ ticket_type = "refund" }]
actions = [{ add_tags = ["c3"] }]

[[automation.triggers]]
id = "state"
on = ["AgentAssigned"]
all = [{ state = "new" }]
actions = [{ add_tags = ["c4"] }]

[[automation.triggers]]
id = "category"
on = ["AgentAssigned"]
all = [{ category = "new" }]
actions = [{ add_tags = ["c5"] }]

[[automation.triggers]]
id = "lacks-tag"
on = ["AgentAssigned"]
all = [{ lacks_tag = "spam" }]
actions = [{ add_tags = ["c6"] }]

[[automation.triggers]]
id = "team"
on = ["AgentAssigned"]
all = [{ team = "00000000-0000-0000-0000-00000000b001" }]
actions = [{ add_tags = ["c7"] }]

[[automation.triggers]]
id = "assignee"
on = ["AgentAssigned"]
all = [{ assignee = "00000000-0000-0000-0000-00000000a001" }]
actions = [{ add_tags = ["c8"] }]

[[automation.triggers]]
id = "assigned"
on = ["AgentAssigned"]
all = [{ assigned = true }]
actions = [{ add_tags = ["c9"] }]

[[automation.triggers]]
id = "unassigned"
on = ["AgentAssigned"]
all = [{ assigned = false }]
actions = [{ add_tags = ["c10"] }]

[[automation.triggers]]
id = "customer-tier"
on = ["AgentAssigned"]
all = [{ customer_tier = "vip" }]
actions = [{ add_tags = ["c11"] }]

[[automation.triggers]]
id = "field"
on = ["AgentAssigned"]
all = [{ field = { name = "order_id", equals = "A-1" } }]
actions = [{ add_tags = ["c12"] }]
"#;

#[test]
fn every_ticket_condition_holds_or_not_as_the_ticket_is() {
    let script = |priority: &str, ticket_type: &str, tags: Value, team: &str| {
        let order_id = if priority == "high" { "A-1" } else { "B-2" };
        vec![
            (
                Role::Agent,
                create(
                    "Order",
                    "where is it",
                    json!({"priority": priority, "ticket_type": ticket_type, "tags": tags,
                        "fields": {"order_id": order_id}}),
                ),
            ),
            (
                Role::Agent,
                command(json!({"type": "assign_team", "team": team})),
            ),
            (
                Role::Agent,
                command(
                    json!({"type": "assign_agent", "agent": "00000000-0000-0000-0000-00000000a001"}),
                ),
            ),
        ]
    };
    check_with(
        EVERY_CONDITION,
        &script(
            "high",
            "refund",
            json!([]),
            "00000000-0000-0000-0000-00000000b001",
        ),
        Some("vip"),
        at(0),
        expect![[r#"
            fires priority
              because priority = high (high)
              => TagsAdded {"tags":["c1"]}
            fires priority-at-least
              because priority >= normal (high)
              => TagsAdded {"tags":["c2"]}
            fires ticket-type
              because ticket_type = refund (refund)
              => TagsAdded {"tags":["c3"]}
            fires state
              because state = new (new)
              => TagsAdded {"tags":["c4"]}
            fires category
              because category = new (new)
              => TagsAdded {"tags":["c5"]}
            fires lacks-tag
              because lacks tag spam (absent)
              => TagsAdded {"tags":["c6"]}
            fires team
              because team = 00000000-0000-0000-0000-00000000b001 (00000000-0000-0000-0000-00000000b001)
              => TagsAdded {"tags":["c7"]}
            fires assignee
              because assignee = 00000000-0000-0000-0000-00000000a001 (00000000-0000-0000-0000-00000000a001)
              => TagsAdded {"tags":["c8"]}
            fires assigned
              because assigned = true (00000000-0000-0000-0000-00000000a001)
              => TagsAdded {"tags":["c9"]}
            fires customer-tier
              because customer tier = vip (vip)
              => TagsAdded {"tags":["c11"]}
            fires field
              because field order_id = "A-1" ("A-1")
              => TagsAdded {"tags":["c12"]}
        "#]],
    );
    check_with(
        EVERY_CONDITION,
        &script(
            "low",
            "general",
            json!(["spam"]),
            "00000000-0000-0000-0000-00000000b002",
        ),
        Some("normal"),
        at(0),
        expect![[r#"
            fires state
              because state = new (new)
              => TagsAdded {"tags":["c4"]}
            fires category
              because category = new (new)
              => TagsAdded {"tags":["c5"]}
            fires assignee
              because assignee = 00000000-0000-0000-0000-00000000a001 (00000000-0000-0000-0000-00000000a001)
              => TagsAdded {"tags":["c8"]}
            fires assigned
              because assigned = true (00000000-0000-0000-0000-00000000a001)
              => TagsAdded {"tags":["c9"]}
        "#]],
    );
}

#[test]
fn other_event_types_fire_nothing() {
    check(
        &[
            (Role::Customer, create("申请退款", "杯子破了", json!({}))),
            (
                Role::Agent,
                command(json!({"type": "add_tags", "tags": ["x"]})),
            ),
        ],
        Some("vip"),
        at(0),
        expect![[r#"
            nothing fires
        "#]],
    );
}

#[test]
fn a_rejected_action_rejects_the_whole_firing() {
    let automation = compile(
        r#"
[[automation.triggers]]
id = "close-now"
on = ["TicketCreated"]
actions = [{ add_tags = ["closing"] }, { transition = "close" }]
"#,
    );
    let (ticket, events) = run(&[(Role::Customer, create("Hi", "there", json!({})))]);
    let facts = Facts {
        event: &events[0],
        ticket: ticket.details.as_ref().unwrap(),
        customer_tier: None,
        at: at(0),
    };
    let firings = automation.triggers.evaluate(&facts);
    let plan = firings[0]
        .plan(&automation.macros, &TemplateValues::default())
        .unwrap();
    let outcome = decide_sequence(&plan.commands, &ticket, &context(Role::System, at(0)));
    expect![[r#"
        Err(
            "step 1 (transition_ticket): transition `close` does not start from state `new`; allowed here: start (to in_progress)",
        )
    "#]]
    .assert_debug_eq(&outcome.map_err(|rejection| rejection.to_string()).map(|_| ()));
}
