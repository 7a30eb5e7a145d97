//! Given/when/then for every command and every rejection of the decider.

use expect_test::expect;
use serde_json::json;

use crate::support::*;
use domain::{Actor, Command};

type Given = Vec<(Actor, Command)>;

fn created() -> Given {
    vec![(integration(), create("general"))]
}

/// A general ticket assigned to Ann and in progress.
fn in_progress() -> Given {
    let mut given = created();
    given.push((
        agent(),
        command(json!({"type": "assign_agent", "agent": ANN})),
    ));
    given.push((
        agent(),
        command(json!({"type": "transition_ticket", "transition": "start"})),
    ));
    given
}

fn replied() -> Given {
    let mut given = in_progress();
    given.push((
        agent(),
        command(json!({"type": "post_public_reply", "body": "It ships today."})),
    ));
    given
}

fn waiting() -> Given {
    let mut given = replied();
    given.push((
        agent(),
        command(json!({"type": "transition_ticket", "transition": "ask_customer"})),
    ));
    given
}

fn resolved() -> Given {
    let mut given = replied();
    given.push((
        agent(),
        command(json!({"type": "transition_ticket", "transition": "resolve"})),
    ));
    given
}

fn closed() -> Given {
    let mut given = resolved();
    given.push((
        agent(),
        command(json!({"type": "transition_ticket", "transition": "close"})),
    ));
    given
}

fn with(mut given: Given, actor: Actor, value: serde_json::Value) -> Given {
    given.push((actor, command(value)));
    given
}

// Creating tickets.

#[test]
fn create_general_ticket_from_email() {
    check(
        &[],
        (integration(), create("general")),
        expect![[r#"
            TicketCreated v1 {"ticket_id":"00000000-0000-0000-0000-000000007000","number":10042,"channel":"email","requester":"00000000-0000-0000-0000-00000000c001","ticket_type":"general","priority":"normal","tags":["shipping"],"fields":{"order_id":"12345"},"blueprint":{"id":"general","version":1},"state":"new","category":"new","pii":{"subject":"订单 12345 未发货","description":"I paid a week ago and nothing arrived.","requester_name":"李四","requester_email":"li.si@example.com"}}
        "#]],
    );
}

#[test]
fn create_refund_ticket_follows_refund_blueprint_and_records_attachments() {
    let mut create = serde_json::to_value(create("refund")).unwrap();
    create["attachments"] = json!([attachment(1, "broken-cup.jpg", "image/jpeg")]);
    create["channel"] = json!("app");
    check(
        &[],
        (customer(), command(create)),
        expect![[r#"
        TicketCreated v1 {"ticket_id":"00000000-0000-0000-0000-000000007000","number":10042,"channel":"app","requester":"00000000-0000-0000-0000-00000000c001","ticket_type":"refund","priority":"normal","tags":["shipping"],"fields":{"order_id":"12345"},"blueprint":{"id":"refund","version":1},"state":"new","category":"new","pii":{"subject":"订单 12345 未发货","description":"I paid a week ago and nothing arrived.","requester_name":"李四","requester_email":"li.si@example.com"}}
        FileAttached v1 {"attachment":"00000000-0000-0000-0000-00000000f001","content_type":"image/jpeg","size_bytes":48213,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","visibility":"public","pii":{"name":"broken-cup.jpg"}}
    "#]],
    );
}

#[test]
fn unknown_ticket_type_follows_default_blueprint() {
    let mut create = serde_json::to_value(create("question")).unwrap();
    create["tags"] = json!(["b", "a", "b"]);
    check(
        &[],
        (agent(), command(create)),
        expect![[r#"
        TicketCreated v1 {"ticket_id":"00000000-0000-0000-0000-000000007000","number":10042,"channel":"email","requester":"00000000-0000-0000-0000-00000000c001","ticket_type":"question","priority":"normal","tags":["a","b"],"fields":{"order_id":"12345"},"blueprint":{"id":"general","version":1},"state":"new","category":"new","pii":{"subject":"订单 12345 未发货","description":"I paid a week ago and nothing arrived.","requester_name":"李四","requester_email":"li.si@example.com"}}
    "#]],
    );
}

#[test]
fn customer_creates_only_for_themselves() {
    check(
        &[],
        (stranger(), create("general")),
        expect![[r#"
        rejected: customers act only on their own tickets
        {"rule":"not_own_ticket"}
    "#]],
    );
}

#[test]
fn create_twice_is_rejected() {
    check(
        &created(),
        (agent(), create("general")),
        expect![[r#"
        rejected: the ticket already exists
        {"rule":"ticket_already_exists"}
    "#]],
    );
}

#[test]
fn create_rejects_blank_subject() {
    let mut create = serde_json::to_value(create("general")).unwrap();
    create["subject"] = json!("   ");
    check(
        &[],
        (agent(), command(create)),
        expect![[r#"
        rejected: invalid subject: must not be empty
        {"rule":"invalid_input","field":"subject","problem":{"kind":"empty"}}
    "#]],
    );
}

#[test]
fn create_rejects_malformed_email_and_ticket_type() {
    let mut bad_email = serde_json::to_value(create("general")).unwrap();
    bad_email["requester"]["email"] = json!("li.si");
    check(
        &[],
        (agent(), command(bad_email)),
        expect![[r#"
        rejected: invalid requester.email: expected an email address
        {"rule":"invalid_input","field":"requester.email","problem":{"kind":"malformed","expected":"an email address"}}
    "#]],
    );
    check(
        &[],
        (agent(), create("Refund Request")),
        expect![[r#"
        rejected: invalid ticket_type: expected lowercase letters, digits and `_`, starting with a letter
        {"rule":"invalid_input","field":"ticket_type","problem":{"kind":"malformed","expected":"lowercase letters, digits and `_`, starting with a letter"}}
    "#]],
    );
}

#[test]
fn commands_on_a_missing_ticket_are_rejected() {
    check(
        &[],
        (
            agent(),
            command(json!({"type": "assign_agent", "agent": ANN})),
        ),
        expect![[r#"
            rejected: the ticket does not exist
            {"rule":"ticket_not_found"}
        "#]],
    );
}

// Fields, priority, tags.

#[test]
fn update_fields_records_only_changes() {
    check(
        &created(),
        (
            agent(),
            command(json!({
                "type": "update_fields",
                "subject": "订单 12345 未发货",
                "description": "Paid on 2025-12-29.",
                "set": {"order_id": "12345", "refund_amount": 300, "vip": true},
                "unset": ["missing"],
            })),
        ),
        expect![[r#"
            TicketFieldsUpdated v1 {"set":{"refund_amount":300,"vip":true},"unset":[],"pii":{"subject":null,"description":"Paid on 2025-12-29."}}
        "#]],
    );
}

#[test]
fn update_fields_without_change_records_nothing() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "update_fields", "set": {"order_id": "12345"}})),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

#[test]
fn update_fields_rejects_setting_and_unsetting_one_field() {
    check(
        &created(),
        (
            agent(),
            command(
                json!({"type": "update_fields", "set": {"order_id": "1"}, "unset": ["order_id"]}),
            ),
        ),
        expect![[r#"
            rejected: invalid unset: `order_id` appears twice
            {"rule":"invalid_input","field":"unset","problem":{"kind":"duplicate","value":"order_id"}}
        "#]],
    );
}

#[test]
fn update_fields_is_not_for_customers() {
    check(
        &created(),
        (
            customer(),
            command(json!({"type": "update_fields", "subject": "mine"})),
        ),
        expect![[r#"
            rejected: role customer may not update_fields
            {"rule":"role_not_allowed","command":"update_fields","role":"customer"}
        "#]],
    );
}

#[test]
fn set_priority_records_the_reason() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "set_priority", "priority": "high", "reason": "VIP customer"})),
        ),
        expect![[r#"
            PriorityChanged v1 (internal) {"from":"normal","to":"high","pii":{"reason":"VIP customer"}}
        "#]],
    );
}

#[test]
fn set_priority_to_current_records_nothing() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "set_priority", "priority": "normal", "reason": "checked"})),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

#[test]
fn set_priority_needs_a_reason() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "set_priority", "priority": "urgent", "reason": ""})),
        ),
        expect![[r#"
            rejected: invalid reason: must not be empty
            {"rule":"invalid_input","field":"reason","problem":{"kind":"empty"}}
        "#]],
    );
}

#[test]
fn priority_rule_records_rule_and_evidence() {
    check(
        &created(),
        (
            system(),
            command(json!({
                "type": "change_priority_by_rule",
                "priority": "urgent",
                "rule_id": "keyword.system_down",
                "evidence": "subject contains 系统崩溃",
            })),
        ),
        expect![[r#"
            PriorityChangedByRule v1 (internal) {"from":"normal","to":"urgent","rule_id":"keyword.system_down","pii":{"evidence":"subject contains 系统崩溃"}}
        "#]],
    );
}

#[test]
fn priority_rules_are_for_the_system_only() {
    check(
        &created(),
        (
            agent(),
            command(json!({
                "type": "change_priority_by_rule",
                "priority": "urgent",
                "rule_id": "keyword.system_down",
                "evidence": "subject contains 系统崩溃",
            })),
        ),
        expect![[r#"
            rejected: role agent may not change_priority_by_rule
            {"rule":"role_not_allowed","command":"change_priority_by_rule","role":"agent"}
        "#]],
    );
}

#[test]
fn add_tags_records_only_new_tags_in_order() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "add_tags", "tags": ["vip", "shipping", "delayed"]})),
        ),
        expect![[r#"
            TagsAdded v1 (internal) {"tags":["delayed","vip"]}
        "#]],
    );
}

#[test]
fn add_tags_rejects_whitespace() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "add_tags", "tags": ["two words"]})),
        ),
        expect![[r#"
            rejected: invalid tags: expected no whitespace or control characters
            {"rule":"invalid_input","field":"tags","problem":{"kind":"malformed","expected":"no whitespace or control characters"}}
        "#]],
    );
}

#[test]
fn remove_tags_records_only_present_tags() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "remove_tags", "tags": ["shipping", "absent"]})),
        ),
        expect![[r#"
            TagsRemoved v1 (internal) {"tags":["shipping"]}
        "#]],
    );
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "remove_tags", "tags": ["absent"]})),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

// Teams and agents.

#[test]
fn routing_assigns_a_team_with_its_reason() {
    check(
        &created(),
        (
            system(),
            command(
                json!({"type": "assign_team", "team": BILLING, "reason": "keyword 退款 → billing"}),
            ),
        ),
        expect![[r#"
            TeamAssigned v1 (internal) {"from":null,"to":"00000000-0000-0000-0000-00000000b001","reason":"keyword 退款 → billing"}
        "#]],
    );
}

#[test]
fn automatic_assignment_must_say_why() {
    check(
        &created(),
        (
            system(),
            command(json!({"type": "assign_team", "team": BILLING})),
        ),
        expect![[r#"
            rejected: invalid reason: is required for this role
            {"rule":"invalid_input","field":"reason","problem":{"kind":"required"}}
        "#]],
    );
    check(
        &created(),
        (
            system(),
            command(json!({"type": "assign_agent", "agent": BOB})),
        ),
        expect![[r#"
            rejected: invalid reason: is required for this role
            {"rule":"invalid_input","field":"reason","problem":{"kind":"required"}}
        "#]],
    );
}

#[test]
fn transfer_moves_team_releases_assignee_and_keeps_the_note() {
    let given = with(
        in_progress(),
        agent(),
        json!({"type": "assign_team", "team": BILLING}),
    );
    check(
        &given,
        (
            agent(),
            command(
                json!({"type": "transfer_team", "team": TECH, "note": "API error, not billing"}),
            ),
        ),
        expect![[r#"
            TeamTransferred v1 (internal) {"from":"00000000-0000-0000-0000-00000000b001","to":"00000000-0000-0000-0000-00000000b002","unassigned":"00000000-0000-0000-0000-00000000a001","pii":{"note":"API error, not billing"}}
        "#]],
    );
}

#[test]
fn transfer_to_current_team_records_nothing_and_needs_a_note() {
    let given = with(
        created(),
        agent(),
        json!({"type": "assign_team", "team": BILLING}),
    );
    check(
        &given,
        (
            agent(),
            command(json!({"type": "transfer_team", "team": BILLING, "note": "stay"})),
        ),
        expect![[r#"
            no events
        "#]],
    );
    check(
        &given,
        (
            agent(),
            command(json!({"type": "transfer_team", "team": TECH, "note": ""})),
        ),
        expect![[r#"
            rejected: invalid note: must not be empty
            {"rule":"invalid_input","field":"note","problem":{"kind":"empty"}}
        "#]],
    );
}

#[test]
fn assign_agent_records_previous_owner() {
    check(
        &in_progress(),
        (
            supervisor(),
            command(json!({"type": "assign_agent", "agent": BOB, "reason": "Ann is on leave"})),
        ),
        expect![[r#"
            AgentAssigned v2 (internal) {"from":"00000000-0000-0000-0000-00000000a001","to":"00000000-0000-0000-0000-00000000a002","reason":"Ann is on leave","routing":null}
        "#]],
    );
}

#[test]
fn only_the_system_records_a_routing_decision() {
    let routing = json!({"team": BILLING, "strategy": "least_loaded", "required_skills": [],
        "language": null, "vip_group": false, "considered": 2, "candidates": 2, "skipped": [],
        "skipped_total": 0});
    check(
        &in_progress(),
        (
            supervisor(),
            command(
                json!({"type": "assign_agent", "agent": BOB, "reason": "x", "routing": routing}),
            ),
        ),
        expect![[r#"
            rejected: invalid routing: expected no routing record: only the routing engine writes one
            {"rule":"invalid_input","field":"routing","problem":{"kind":"malformed","expected":"no routing record: only the routing engine writes one"}}
        "#]],
    );
    let too_many: Vec<_> = (0..17)
        .map(|n| json!({"agent": uuid::Uuid::from_u128(n), "why": "not_available", "presence": "away"}))
        .collect();
    let mut crowded = routing.clone();
    crowded["skipped"] = json!(too_many);
    check(
        &in_progress(),
        (
            system(),
            command(
                json!({"type": "assign_agent", "agent": BOB, "reason": "x", "routing": crowded}),
            ),
        ),
        expect![[r#"
            rejected: invalid routing.skipped: more than 16 entries
            {"rule":"invalid_input","field":"routing.skipped","problem":{"kind":"too_many","max":16}}
        "#]],
    );
}

#[test]
fn flag_customer_upset_once() {
    let flag =
        json!({"type": "flag_customer_upset", "rule_id": "sentiment.upset", "evidence": "太差劲"});
    let mut given = in_progress();
    given.push((system(), command(flag.clone())));
    check(
        &given,
        (system(), command(flag.clone())),
        expect![[r#"
        no events
    "#]],
    );
    check(
        &in_progress(),
        (agent(), command(flag)),
        expect![[r#"
        rejected: role agent may not flag_customer_upset
        {"rule":"role_not_allowed","command":"flag_customer_upset","role":"agent"}
    "#]],
    );
}

#[test]
fn assign_to_current_assignee_records_nothing() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({"type": "assign_agent", "agent": ANN})),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

#[test]
fn unassign_releases_the_owner_once() {
    check(
        &in_progress(),
        (agent(), command(json!({"type": "unassign_agent"}))),
        expect![[r#"
            AgentUnassigned v1 (internal) {"agent":"00000000-0000-0000-0000-00000000a001","reason":null}
        "#]],
    );
    check(
        &created(),
        (agent(), command(json!({"type": "unassign_agent"}))),
        expect![[r#"
            no events
        "#]],
    );
}

#[test]
fn collaborators_are_added_and_removed_once() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "add_collaborator", "agent": BOB})),
        ),
        expect![[r#"
            CollaboratorAdded v2 (internal) {"agent":"00000000-0000-0000-0000-00000000a002","reason":null}
        "#]],
    );
    let given = with(
        created(),
        agent(),
        json!({"type": "add_collaborator", "agent": BOB}),
    );
    check(
        &given,
        (
            agent(),
            command(json!({"type": "add_collaborator", "agent": BOB})),
        ),
        expect![[r#"
            no events
        "#]],
    );
    check(
        &given,
        (
            agent(),
            command(json!({"type": "remove_collaborator", "agent": BOB})),
        ),
        expect![[r#"
            CollaboratorRemoved v1 (internal) {"agent":"00000000-0000-0000-0000-00000000a002"}
        "#]],
    );
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "remove_collaborator", "agent": BOB})),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

// Conversation.

#[test]
fn public_reply_with_attachment() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({
                "type": "post_public_reply",
                "body": "Here is the tracking slip.",
                "attachments": [attachment(2, "slip.pdf", "application/pdf")],
            })),
        ),
        expect![[r#"
            FileAttached v1 {"attachment":"00000000-0000-0000-0000-00000000f002","content_type":"application/pdf","size_bytes":48213,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","visibility":"public","pii":{"name":"slip.pdf"}}
            PublicReplyPosted v1 {"attachments":["00000000-0000-0000-0000-00000000f002"],"pii":{"body":"Here is the tracking slip."}}
        "#]],
    );
}

#[test]
fn customers_cannot_post_public_replies() {
    check(
        &in_progress(),
        (
            customer(),
            command(json!({"type": "post_public_reply", "body": "hi"})),
        ),
        expect![[r#"
            rejected: role customer may not post_public_reply
            {"rule":"role_not_allowed","command":"post_public_reply","role":"customer"}
        "#]],
    );
}

#[test]
fn customer_message_on_open_ticket_only_records_the_message() {
    check(
        &in_progress(),
        (
            customer(),
            command(json!({"type": "post_customer_message", "body": "Any news?"})),
        ),
        expect![[r#"
            CustomerMessageReceived v1 {"attachments":[],"pii":{"body":"Any news?"}}
        "#]],
    );
}

#[test]
fn customer_message_on_pending_ticket_reopens_it() {
    check(
        &waiting(),
        (
            integration(),
            command(json!({
                "type": "post_customer_message",
                "body": "Photo attached.",
                "attachments": [attachment(3, "box.png", "image/png")],
            })),
        ),
        expect![[r#"
            FileAttached v1 {"attachment":"00000000-0000-0000-0000-00000000f003","content_type":"image/png","size_bytes":48213,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","visibility":"public","pii":{"name":"box.png"}}
            CustomerMessageReceived v1 {"attachments":["00000000-0000-0000-0000-00000000f003"],"pii":{"body":"Photo attached."}}
            TicketReopened v1 {"cause":"customer_message","from":"waiting_on_customer","from_category":"pending","to":"in_progress","to_category":"open","pii":{"reason":null}}
        "#]],
    );
}

#[test]
fn customer_message_on_solved_ticket_reopens_it() {
    check(
        &resolved(),
        (
            customer(),
            command(json!({"type": "post_customer_message", "body": "Still not here."})),
        ),
        expect![[r#"
            CustomerMessageReceived v1 {"attachments":[],"pii":{"body":"Still not here."}}
            TicketReopened v1 {"cause":"customer_message","from":"resolved","from_category":"solved","to":"in_progress","to_category":"open","pii":{"reason":null}}
        "#]],
    );
}

#[test]
fn customers_act_only_on_their_own_tickets() {
    check(
        &in_progress(),
        (
            stranger(),
            command(json!({"type": "post_customer_message", "body": "hello"})),
        ),
        expect![[r#"
            rejected: customers act only on their own tickets
            {"rule":"not_own_ticket"}
        "#]],
    );
}

#[test]
fn internal_note_with_mentions_is_internal() {
    check(
        &in_progress(),
        (
            agent(),
            command(
                json!({"type": "add_internal_note", "body": "@Bob can you check the warehouse?", "mentions": [BOB]}),
            ),
        ),
        expect![[r#"
            InternalNoteAdded v1 (internal) {"mentions":["00000000-0000-0000-0000-00000000a002"],"pii":{"body":"@Bob can you check the warehouse?"}}
        "#]],
    );
}

#[test]
fn internal_note_rejects_duplicate_mentions_and_customers() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({"type": "add_internal_note", "body": "x", "mentions": [BOB, BOB]})),
        ),
        expect![[r#"
            rejected: invalid mentions: `00000000-0000-0000-0000-00000000a002` appears twice
            {"rule":"invalid_input","field":"mentions","problem":{"kind":"duplicate","value":"00000000-0000-0000-0000-00000000a002"}}
        "#]],
    );
    check(
        &in_progress(),
        (
            customer(),
            command(json!({"type": "add_internal_note", "body": "x"})),
        ),
        expect![[r#"
            rejected: role customer may not add_internal_note
            {"rule":"role_not_allowed","command":"add_internal_note","role":"customer"}
        "#]],
    );
}

#[test]
fn attach_file_internal_and_once() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({
                "type": "attach_file",
                "attachment": attachment(4, "warehouse-log.csv", "text/csv; charset=utf-8"),
                "visibility": "internal",
            })),
        ),
        expect![[r#"
            FileAttached v1 (internal) {"attachment":"00000000-0000-0000-0000-00000000f004","content_type":"text/csv; charset=utf-8","size_bytes":48213,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","visibility":"internal","pii":{"name":"warehouse-log.csv"}}
        "#]],
    );
    let given = with(
        in_progress(),
        agent(),
        json!({"type": "attach_file", "attachment": attachment(4, "warehouse-log.csv", "text/csv")}),
    );
    check(
        &given,
        (
            agent(),
            command(
                json!({"type": "attach_file", "attachment": attachment(4, "warehouse-log.csv", "text/csv")}),
            ),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

#[test]
fn customers_attach_only_public_files() {
    check(
        &in_progress(),
        (
            customer(),
            command(json!({
                "type": "attach_file",
                "attachment": attachment(5, "receipt.png", "image/png"),
                "visibility": "internal",
            })),
        ),
        expect![[r#"
            rejected: customers cannot write what is internal to the team
            {"rule":"internal_not_for_customers"}
        "#]],
    );
}

#[test]
fn attach_file_rejects_bad_digest_and_content_type() {
    let mut bad_digest = attachment(6, "a.png", "image/png");
    bad_digest["sha256"] = json!("ABC");
    check(
        &in_progress(),
        (
            agent(),
            command(json!({"type": "attach_file", "attachment": bad_digest})),
        ),
        expect![[r#"
            rejected: invalid attachment.sha256: expected 64 lowercase hex digits
            {"rule":"invalid_input","field":"attachment.sha256","problem":{"kind":"malformed","expected":"64 lowercase hex digits"}}
        "#]],
    );
    check(
        &in_progress(),
        (
            agent(),
            command(
                json!({"type": "attach_file", "attachment": attachment(6, "a.png", "image/*")}),
            ),
        ),
        expect![[r#"
            rejected: invalid attachment.content_type: expected a content type such as image/png
            {"rule":"invalid_input","field":"attachment.content_type","problem":{"kind":"malformed","expected":"a content type such as image/png"}}
        "#]],
    );
}

// Links and merges.

#[test]
fn link_tickets_once_and_never_to_itself() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "link_ticket", "other": OTHER_TICKET, "kind": "parent"})),
        ),
        expect![[r#"
            TicketLinked v1 {"other":"00000000-0000-0000-0000-000000007001","kind":"parent"}
        "#]],
    );
    let given = with(
        created(),
        agent(),
        json!({"type": "link_ticket", "other": OTHER_TICKET, "kind": "parent"}),
    );
    check(
        &given,
        (
            agent(),
            command(json!({"type": "link_ticket", "other": OTHER_TICKET, "kind": "parent"})),
        ),
        expect![[r#"
            no events
        "#]],
    );
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "link_ticket", "other": TICKET, "kind": "related"})),
        ),
        expect![[r#"
            rejected: a ticket cannot be linked to itself
            {"rule":"link_to_self"}
        "#]],
    );
}

#[test]
fn merge_closes_the_duplicate_and_points_to_the_survivor() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({
                "type": "merge_into",
                "survivor": OTHER_TICKET,
                "survivor_number": 10041,
                "note": "same order as #10041",
            })),
        ),
        expect![[r#"
            TicketMergedInto v1 {"survivor":"00000000-0000-0000-0000-000000007001","survivor_number":10041,"from":"in_progress","to":"closed","pii":{"note":"same order as #10041"}}
        "#]],
    );
}

#[test]
fn merge_into_itself_is_rejected() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({"type": "merge_into", "survivor": TICKET, "survivor_number": 10042})),
        ),
        expect![[r#"
            rejected: a ticket cannot be merged into itself
            {"rule":"merge_into_self"}
        "#]],
    );
}

#[test]
fn survivor_records_the_merged_duplicate_once() {
    let record = json!({"type": "record_merged_duplicate", "duplicate": OTHER_TICKET, "duplicate_number": 10043});
    check(
        &in_progress(),
        (system(), command(record.clone())),
        expect![[r#"
            DuplicateMerged v1 {"duplicate":"00000000-0000-0000-0000-000000007001","duplicate_number":10043}
        "#]],
    );
    let given = with(in_progress(), system(), record.clone());
    check(
        &given,
        (system(), command(record)),
        expect![[r#"
        no events
    "#]],
    );
}

#[test]
fn merged_duplicate_accepts_nothing_but_links() {
    let given = with(
        in_progress(),
        agent(),
        json!({"type": "merge_into", "survivor": OTHER_TICKET, "survivor_number": 10041}),
    );
    check(
        &given,
        (
            customer(),
            command(json!({"type": "post_customer_message", "body": "hello?"})),
        ),
        expect![[r#"
            rejected: the ticket is closed; it accepts nothing but links
            {"rule":"ticket_closed"}
        "#]],
    );
}

// Blueprint transitions.

#[test]
fn start_work() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "start"})),
        ),
        expect![[r#"
            TicketTransitioned v1 {"transition":"start","from":"new","from_category":"new","to":"in_progress","to_category":"open"}
        "#]],
    );
}

#[test]
fn unknown_transition_lists_allowed_ones() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "teleport"})),
        ),
        expect![[r#"
            rejected: no transition `teleport`; allowed here: ask_customer (to waiting_on_customer), resolve (to resolved)
            {"rule":"unknown_transition","transition":"teleport","allowed":[{"name":"ask_customer","to":"waiting_on_customer"},{"name":"resolve","to":"resolved"}]}
        "#]],
    );
}

#[test]
fn transition_from_the_wrong_state_is_rejected() {
    check(
        &in_progress(),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "close"})),
        ),
        expect![[r#"
            rejected: transition `close` does not start from state `in_progress`; allowed here: ask_customer (to waiting_on_customer), resolve (to resolved)
            {"rule":"transition_not_from_state","transition":"close","state":"in_progress","allowed":[{"name":"ask_customer","to":"waiting_on_customer"},{"name":"resolve","to":"resolved"}]}
        "#]],
    );
}

#[test]
fn transition_for_another_role_is_rejected() {
    check(
        &resolved(),
        (
            customer(),
            command(json!({"type": "transition_ticket", "transition": "close"})),
        ),
        expect![[r#"
            rejected: role customer may not take transition `close`; allowed here: confirm (to closed)
            {"rule":"transition_role_not_allowed","transition":"close","role":"customer","allowed":[{"name":"confirm","to":"closed"}]}
        "#]],
    );
}

#[test]
fn cannot_solve_without_an_assignee_or_a_reply() {
    check(
        &created(),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "resolve"})),
        ),
        expect![[r#"
            rejected: transition `resolve` needs an assigned agent, a public reply since the customer's last message; allowed here: start (to in_progress), resolve (to resolved)
            {"rule":"transition_requirements_unmet","transition":"resolve","unmet":[{"kind":"assignee"},{"kind":"public_reply"}],"allowed":[{"name":"start","to":"in_progress"},{"name":"resolve","to":"resolved"}]}
        "#]],
    );
}

#[test]
fn resolve_after_replying() {
    check(
        &replied(),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "resolve"})),
        ),
        expect![[r#"
            TicketTransitioned v1 {"transition":"resolve","from":"in_progress","from_category":"open","to":"resolved","to_category":"solved"}
        "#]],
    );
}

#[test]
fn customer_confirms_the_solution() {
    check(
        &resolved(),
        (
            customer(),
            command(json!({"type": "transition_ticket", "transition": "confirm"})),
        ),
        expect![[r#"
            TicketTransitioned v1 {"transition":"confirm","from":"resolved","from_category":"solved","to":"closed","to_category":"closed"}
        "#]],
    );
}

fn refund_reviewing() -> Given {
    vec![
        (customer(), create("refund")),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "start_review"})),
        ),
    ]
}

#[test]
fn refund_approval_lists_every_unmet_requirement() {
    check(
        &refund_reviewing(),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "approve"})),
        ),
        expect![[r#"
            rejected: transition `approve` needs field `refund_amount` set, an attachment of type image/*, an internal note in the current state, field `refund_amount` <= 1000; allowed here: request_evidence (to waiting_on_customer), approve (to approved), reject (to rejected)
            {"rule":"transition_requirements_unmet","transition":"approve","unmet":[{"kind":"field_set","field":"refund_amount"},{"kind":"attachment","content_type":"image/*"},{"kind":"internal_note"},{"kind":"field_condition","field":"refund_amount","op":"le","value":1000}],"allowed":[{"name":"request_evidence","to":"waiting_on_customer"},{"name":"approve","to":"approved"},{"name":"reject","to":"rejected"}]}
        "#]],
    );
}

fn refund_ready(amount: i64) -> Given {
    let mut given = refund_reviewing();
    given.extend([
        (
            customer(),
            command(json!({
                "type": "attach_file",
                "attachment": attachment(7, "broken-cup.jpg", "image/jpeg"),
            })),
        ),
        (
            agent(),
            command(json!({"type": "update_fields", "set": {"refund_amount": amount}})),
        ),
        (
            agent(),
            command(
                json!({"type": "add_internal_note", "body": "Photo shows a broken cup; refund."}),
            ),
        ),
    ]);
    given
}

#[test]
fn refund_approval_with_photo_and_note() {
    check(
        &refund_ready(300),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "approve"})),
        ),
        expect![[r#"
            TicketTransitioned v1 {"transition":"approve","from":"reviewing","from_category":"open","to":"approved","to_category":"open"}
        "#]],
    );
}

#[test]
fn large_refund_needs_a_supervisor() {
    check(
        &refund_ready(5000),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "approve"})),
        ),
        expect![[r#"
            rejected: transition `approve` needs field `refund_amount` <= 1000; allowed here: request_evidence (to waiting_on_customer), approve (to approved), reject (to rejected)
            {"rule":"transition_requirements_unmet","transition":"approve","unmet":[{"kind":"field_condition","field":"refund_amount","op":"le","value":1000}],"allowed":[{"name":"request_evidence","to":"waiting_on_customer"},{"name":"approve","to":"approved"},{"name":"reject","to":"rejected"}]}
        "#]],
    );
    check(
        &refund_ready(5000),
        (
            supervisor(),
            command(json!({"type": "transition_ticket", "transition": "approve_large"})),
        ),
        expect![[r#"
            TicketTransitioned v1 {"transition":"approve_large","from":"reviewing","from_category":"open","to":"approved","to_category":"open"}
        "#]],
    );
}

#[test]
fn note_from_an_earlier_state_does_not_count() {
    // The note must explain this step: one written before entering `reviewing` is stale.
    let given = vec![
        (customer(), create("refund")),
        (
            agent(),
            command(json!({"type": "add_internal_note", "body": "looks fine"})),
        ),
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "start_review"})),
        ),
        (
            customer(),
            command(
                json!({"type": "attach_file", "attachment": attachment(7, "cup.jpg", "image/jpeg")}),
            ),
        ),
        (
            agent(),
            command(json!({"type": "update_fields", "set": {"refund_amount": 10}})),
        ),
    ];
    check(
        &given,
        (
            agent(),
            command(json!({"type": "transition_ticket", "transition": "approve"})),
        ),
        expect![[r#"
            rejected: transition `approve` needs an internal note in the current state; allowed here: request_evidence (to waiting_on_customer), approve (to approved), reject (to rejected)
            {"rule":"transition_requirements_unmet","transition":"approve","unmet":[{"kind":"internal_note"}],"allowed":[{"name":"request_evidence","to":"waiting_on_customer"},{"name":"approve","to":"approved"},{"name":"reject","to":"rejected"}]}
        "#]],
    );
}

#[test]
fn ticket_on_an_unloaded_blueprint_cannot_transition() {
    let (mut ticket, _) = decide_all(&created());
    if let Some(details) = ticket.details.as_mut() {
        details.blueprint.version = 99;
    }
    let rejection = domain::decide(
        &command(json!({"type": "transition_ticket", "transition": "start"})),
        &ticket,
        &ctx(agent(), 100),
    )
    .unwrap_err();
    expect!["blueprint general v99 is not loaded"].assert_eq(&rejection.to_string());
}

// Reopen.

#[test]
fn reopen_a_solved_ticket_with_a_reason() {
    check(
        &resolved(),
        (
            agent(),
            command(json!({"type": "reopen_ticket", "reason": "customer called back"})),
        ),
        expect![[r#"
            TicketReopened v1 {"cause":"requested","from":"resolved","from_category":"solved","to":"in_progress","to_category":"open","pii":{"reason":"customer called back"}}
        "#]],
    );
}

#[test]
fn reopen_an_open_ticket_records_nothing() {
    check(
        &in_progress(),
        (
            customer(),
            command(json!({"type": "reopen_ticket", "reason": "again"})),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

#[test]
fn closed_ticket_accepts_nothing_but_a_link() {
    check(
        &closed(),
        (
            customer(),
            command(json!({"type": "reopen_ticket", "reason": "again"})),
        ),
        expect![[r#"
            rejected: the ticket is closed; it accepts nothing but links
            {"rule":"ticket_closed"}
        "#]],
    );
    check(
        &closed(),
        (
            agent(),
            command(json!({"type": "add_tags", "tags": ["late"]})),
        ),
        expect![[r#"
            rejected: the ticket is closed; it accepts nothing but links
            {"rule":"ticket_closed"}
        "#]],
    );
    check(
        &closed(),
        (
            agent(),
            command(json!({"type": "link_ticket", "other": OTHER_TICKET, "kind": "related"})),
        ),
        expect![[r#"
            TicketLinked v1 {"other":"00000000-0000-0000-0000-000000007001","kind":"related"}
        "#]],
    );
}

// Satisfaction.

#[test]
fn rate_a_resolution_once() {
    let rate = json!({"type": "rate_satisfaction", "score": 5, "comment": "很满意"});
    check(
        &resolved(),
        (customer(), command(rate.clone())),
        expect![[r#"
            SatisfactionRated v1 {"score":5,"resolution":1,"pii":{"comment":"很满意"}}
        "#]],
    );
    let given = with(resolved(), customer(), rate.clone());
    check(
        &given,
        (customer(), command(rate.clone())),
        expect![[r#"
        rejected: resolution 1 is already rated
        {"rule":"already_rated","resolution":1}
    "#]],
    );
    // After a reopen and a second resolution, the customer may rate again.
    let mut given = with(
        given,
        customer(),
        json!({"type": "reopen_ticket", "reason": "broke again"}),
    );
    given.push((
        agent(),
        command(json!({"type": "post_public_reply", "body": "Replaced."})),
    ));
    given.push((
        agent(),
        command(json!({"type": "transition_ticket", "transition": "resolve"})),
    ));
    check(
        &given,
        (integration(), command(rate)),
        expect![[r#"
        SatisfactionRated v1 {"score":5,"resolution":2,"pii":{"comment":"很满意"}}
    "#]],
    );
}

#[test]
fn a_survey_after_the_close_lets_the_customer_rate_the_closed_ticket() {
    let survey = json!({"type": "send_satisfaction_survey", "rule_id": "timed:close_solved"});
    let rate = json!({"type": "rate_satisfaction", "score": 4});
    // Closed without a survey: no rating.
    check(
        &closed(),
        (customer(), command(rate.clone())),
        expect![[r#"
            rejected: the ticket is closed; it accepts nothing but links
            {"rule":"ticket_closed"}
        "#]],
    );
    check(
        &closed(),
        (system(), command(survey.clone())),
        expect![[r#"
            SatisfactionSurveySent v1 {"resolution":1,"rule_id":"timed:close_solved"}
        "#]],
    );
    let surveyed = with(closed(), system(), survey.clone());
    // Once per resolution.
    check(
        &surveyed,
        (system(), command(survey.clone())),
        expect![[r#"
        no events
    "#]],
    );
    check(
        &surveyed,
        (customer(), command(rate)),
        expect![[r#"
        SatisfactionRated v1 {"score":4,"resolution":1,"pii":{"comment":null}}
    "#]],
    );
    // Only a resolution can be surveyed, and only by the system.
    check(
        &in_progress(),
        (system(), command(survey.clone())),
        expect![[r#"
        rejected: only a solved ticket can be rated; this one is open
        {"rule":"not_solved","category":"open"}
    "#]],
    );
    check(
        &resolved(),
        (agent(), command(survey)),
        expect![[r#"
        rejected: role agent may not send_satisfaction_survey
        {"rule":"role_not_allowed","command":"send_satisfaction_survey","role":"agent"}
    "#]],
    );
}

#[test]
fn rating_needs_a_solved_ticket_and_a_score_from_1_to_5() {
    check(
        &in_progress(),
        (
            customer(),
            command(json!({"type": "rate_satisfaction", "score": 4})),
        ),
        expect![[r#"
            rejected: only a solved ticket can be rated; this one is open
            {"rule":"not_solved","category":"open"}
        "#]],
    );
    check(
        &resolved(),
        (
            customer(),
            command(json!({"type": "rate_satisfaction", "score": 0})),
        ),
        expect![[r#"
            rejected: invalid score: must be from 1 to 5
            {"rule":"invalid_input","field":"score","problem":{"kind":"out_of_range","min":1,"max":5}}
        "#]],
    );
    check(
        &resolved(),
        (
            customer(),
            command(json!({"type": "rate_satisfaction", "score": 6})),
        ),
        expect![[r#"
            rejected: invalid score: must be from 1 to 5
            {"rule":"invalid_input","field":"score","problem":{"kind":"out_of_range","min":1,"max":5}}
        "#]],
    );
}

// SLA and escalation.

fn sla_applied() -> Given {
    with(
        created(),
        system(),
        json!({
            "type": "apply_sla",
            "policy_id": "vip",
            "policy_version": 3,
            "targets": [
                {"metric": "first_response", "due_at": at(2)},
                {"metric": "resolution", "due_at": at(24 * 60)},
            ],
            "reason": "customer tier vip, priority normal",
        }),
    )
}

#[test]
fn apply_sla_records_policy_targets_and_reason() {
    let given = created();
    let (_, history) = decide_all(&sla_applied());
    check(
        &given,
        (
            system(),
            command(json!({
                "type": "apply_sla",
                "policy_id": "vip",
                "policy_version": 3,
                "targets": [{"metric": "first_response", "due_at": at(2)}],
                "reason": "customer tier vip, priority normal",
            })),
        ),
        expect![[r#"
            SlaApplied v1 (internal) {"policy_id":"vip","policy_version":3,"targets":[{"metric":"first_response","due_at":"2026-01-05T09:02:00Z"}],"reason":"customer tier vip, priority normal"}
        "#]],
    );
    // Applying the same targets again is a retry and records nothing.
    let last = history.last().expect("sla applied");
    assert_eq!(last.event_type(), "SlaApplied");
    check(
        &sla_applied(),
        (
            system(),
            command(json!({
                "type": "apply_sla",
                "policy_id": "vip",
                "policy_version": 3,
                "targets": [{"metric": "first_response", "due_at": at(2)}],
                "reason": "retry",
            })),
        ),
        expect![[r#"
            no events
        "#]],
    );
}

#[test]
fn sla_warning_once_per_clock() {
    let warning = json!({"type": "record_sla_warning", "policy_id": "vip", "metric": "first_response", "due_at": at(2)});
    check(
        &sla_applied(),
        (system(), command(warning.clone())),
        expect![[r#"
            SlaWarningRaised v1 (internal) {"policy_id":"vip","metric":"first_response","due_at":"2026-01-05T09:02:00Z","observed_at":"2026-01-05T10:40:00Z"}
        "#]],
    );
    let given = with(sla_applied(), system(), warning.clone());
    check(
        &given,
        (system(), command(warning)),
        expect![[r#"
        no events
    "#]],
    );
}

#[test]
fn sla_breach_once_and_only_when_due() {
    let breach = json!({"type": "record_sla_breach", "policy_id": "vip", "metric": "first_response", "due_at": at(2)});
    check(
        &sla_applied(),
        (system(), command(breach.clone())),
        expect![[r#"
            SlaBreached v1 (internal) {"policy_id":"vip","metric":"first_response","due_at":"2026-01-05T09:02:00Z","observed_at":"2026-01-05T10:40:00Z"}
        "#]],
    );
    let given = with(sla_applied(), system(), breach.clone());
    check(
        &given,
        (system(), command(breach.clone())),
        expect![[r#"
        no events
    "#]],
    );
    // Applying the policy again with the same first-response target (only the resolution target
    // moves) keeps that clock's breach: it is never recorded twice (found in review).
    let reapplied = with(
        with(sla_applied(), system(), breach.clone()),
        system(),
        json!({
            "type": "apply_sla",
            "policy_id": "vip",
            "policy_version": 3,
            "targets": [
                {"metric": "first_response", "due_at": at(2)},
                {"metric": "resolution", "due_at": at(12 * 60)},
            ],
            "reason": "priority raised to high",
        }),
    );
    check(
        &reapplied,
        (system(), command(breach.clone())),
        expect![[r#"
            no events
        "#]],
    );
    let not_due = json!({"type": "record_sla_breach", "policy_id": "vip", "metric": "resolution", "due_at": at(24 * 60)});
    check(
        &sla_applied(),
        (system(), command(not_due)),
        expect![[r#"
        rejected: SLA clock due at 2026-01-06T09:00:00Z has not passed at 2026-01-05T10:40:00Z
        {"rule":"sla_not_due","due_at":"2026-01-06T09:00:00Z","at":"2026-01-05T10:40:00Z"}
    "#]],
    );
}

#[test]
fn sla_events_need_a_running_clock() {
    check(
        &sla_applied(),
        (
            system(),
            command(
                json!({"type": "record_sla_breach", "policy_id": "vip", "metric": "first_response", "due_at": at(3)}),
            ),
        ),
        expect![[r#"
            rejected: no SLA clock `vip`/`first_response` due at 2026-01-05T09:03:00Z runs on this ticket
            {"rule":"sla_not_applied","policy_id":"vip","metric":"first_response","due_at":"2026-01-05T09:03:00Z"}
        "#]],
    );
    check(
        &sla_applied(),
        (
            agent(),
            command(
                json!({"type": "record_sla_breach", "policy_id": "vip", "metric": "first_response", "due_at": at(2)}),
            ),
        ),
        expect![[r#"
            rejected: role agent may not record_sla_breach
            {"rule":"role_not_allowed","command":"record_sla_breach","role":"agent"}
        "#]],
    );
}

#[test]
fn escalation_records_rule_and_only_goes_up() {
    let escalate = json!({
        "type": "escalate",
        "level": 1,
        "rule_id": "sla.first_response.breached",
        "reason": "first response overdue by 40 minutes",
        "notify": [BOB],
    });
    check(
        &created(),
        (system(), command(escalate.clone())),
        expect![[r#"
            Escalated v1 (internal) {"from_level":0,"to_level":1,"rule_id":"sla.first_response.breached","reason":"first response overdue by 40 minutes","notify":["00000000-0000-0000-0000-00000000a002"]}
        "#]],
    );
    let given = with(created(), system(), escalate.clone());
    check(
        &given,
        (system(), command(escalate)),
        expect![[r#"
        no events
    "#]],
    );
}

#[test]
fn automatic_escalation_names_its_rule() {
    check(
        &created(),
        (
            system(),
            command(json!({"type": "escalate", "level": 2, "reason": "late"})),
        ),
        expect![[r#"
            rejected: invalid rule_id: is required for this role
            {"rule":"invalid_input","field":"rule_id","problem":{"kind":"required"}}
        "#]],
    );
    check(
        &created(),
        (
            supervisor(),
            command(json!({"type": "escalate", "level": 9, "reason": "late"})),
        ),
        expect![[r#"
            rejected: invalid level: must be from 1 to 5
            {"rule":"invalid_input","field":"level","problem":{"kind":"out_of_range","min":1,"max":5}}
        "#]],
    );
}

#[test]
fn sla_breach_runs_its_escalations_once_each_naming_policy_and_rule() {
    let breach = json!({
        "type": "record_sla_breach", "policy_id": "vip", "metric": "first_response", "due_at": at(2),
        "escalations": [
            {"rule": "page_boss", "actions": [
                {"action": "raise_priority", "priority": "urgent"},
                {"action": "reassign_team", "team": TECH},
                {"action": "add_collaborator", "agent": BOB},
                {"action": "notify", "agents": [BOB]},
            ]},
            // Already as high as this asks: records nothing.
            {"rule": "raise_high", "actions": [{"action": "raise_priority", "priority": "high"}]},
        ],
    });
    check(
        &sla_applied(),
        (system(), command(breach.clone())),
        expect![[r#"
            SlaBreached v1 (internal) {"policy_id":"vip","metric":"first_response","due_at":"2026-01-05T09:02:00Z","observed_at":"2026-01-05T10:40:00Z"}
            PriorityChangedByRule v1 (internal) {"from":"normal","to":"urgent","rule_id":"sla:vip:page_boss","pii":{"evidence":"first_response breach"}}
            TeamAssigned v1 (internal) {"from":null,"to":"00000000-0000-0000-0000-00000000b002","reason":"sla policy vip rule page_boss: first_response breach"}
            CollaboratorAdded v2 (internal) {"agent":"00000000-0000-0000-0000-00000000a002","reason":"sla policy vip rule page_boss: first_response breach"}
            Escalated v1 (internal) {"from_level":0,"to_level":1,"rule_id":"sla:vip:page_boss","reason":"sla policy vip rule page_boss: first_response breach","notify":["00000000-0000-0000-0000-00000000a002"]}
        "#]],
    );
    let given = with(sla_applied(), system(), breach.clone());
    check(
        &given,
        (system(), command(breach)),
        expect![[r#"
        no events
    "#]],
    );
}

#[test]
fn recompute_sla_moves_one_clock_and_says_why() {
    let recompute = |due: i64, cause: &str| {
        json!({
            "type": "recompute_sla", "policy_id": "vip", "policy_version": 3,
            "metric": "resolution", "due_at": at(due), "elapsed_business_seconds": 600,
            "cause": cause, "reason": "left pending",
        })
    };
    check(
        &sla_applied(),
        (system(), command(recompute(25 * 60, "resumed"))),
        expect![[r#"
            SlaRecomputed v1 (internal) {"policy_id":"vip","policy_version":3,"metric":"resolution","from_policy_id":"vip","from_due_at":"2026-01-06T09:00:00Z","to_due_at":"2026-01-06T10:00:00Z","elapsed_business_seconds":600,"cause":"resumed","reason":"left pending"}
        "#]],
    );
    // The same due time again is a retry; a new metric's first clock has no old due time.
    check(
        &with(sla_applied(), system(), recompute(25 * 60, "resumed")),
        (system(), command(recompute(25 * 60, "resumed"))),
        expect![[r#"
            no events
        "#]],
    );
    let mut next_reply = recompute(3 * 60, "new_cycle");
    next_reply["metric"] = json!("next_reply");
    check(
        &sla_applied(),
        (system(), command(next_reply)),
        expect![[r#"
            SlaRecomputed v1 (internal) {"policy_id":"vip","policy_version":3,"metric":"next_reply","from_policy_id":null,"from_due_at":null,"to_due_at":"2026-01-05T12:00:00Z","elapsed_business_seconds":600,"cause":"new_cycle","reason":"left pending"}
        "#]],
    );
    // A breached clock stays breached when it moves, unless a new cycle starts.
    let breach = json!({"type": "record_sla_breach", "policy_id": "vip", "metric": "first_response", "due_at": at(2)});
    let mut moved = recompute(90, "priority_changed");
    moved["metric"] = json!("first_response");
    let given = with(with(sla_applied(), system(), breach), system(), moved);
    check(
        &given,
        (
            system(),
            command(
                json!({"type": "record_sla_breach", "policy_id": "vip", "metric": "first_response", "due_at": at(90)}),
            ),
        ),
        expect![[r#"
            no events
        "#]],
    );
    check(
        &sla_applied(),
        (agent(), command(recompute(25 * 60, "resumed"))),
        expect![[r#"
            rejected: role agent may not recompute_sla
            {"rule":"role_not_allowed","command":"recompute_sla","role":"agent"}
        "#]],
    );
}
