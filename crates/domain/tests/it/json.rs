//! Commands and rejections as the HTTP API sees them: tagged JSON in, tagged JSON out.

use domain::Command;
use expect_test::expect;
use serde_json::json;

use crate::support::*;

fn parse(value: serde_json::Value) -> String {
    match serde_json::from_value::<Command>(value) {
        Ok(command) => format!("ok {}", command.name()),
        Err(error) => format!("error: {error}"),
    }
}

#[test]
fn commands_are_tagged_and_strict() {
    let cases = [
        json!({"type": "assign_agent", "agent": ANN}),
        json!({"type": "assign_agent", "agent": ANN, "agnet": BOB}),
        json!({"type": "assign_agnet", "agent": ANN}),
        json!({"agent": ANN}),
        json!({"type": "unassign_agent"}),
        json!({"type": "rate_satisfaction", "score": 300}),
        json!({"type": "set_priority", "priority": "critical", "reason": "r"}),
    ];
    let actual: Vec<String> = cases.into_iter().map(parse).collect();
    expect![[r#"
        ok assign_agent
        error: unknown field `agnet`, expected one of `agent`, `reason`, `routing`
        error: unknown variant `assign_agnet`, expected one of `create_ticket`, `update_fields`, `set_priority`, `change_priority_by_rule`, `add_tags`, `remove_tags`, `assign_team`, `transfer_team`, `assign_agent`, `unassign_agent`, `add_collaborator`, `remove_collaborator`, `post_public_reply`, `post_customer_message`, `add_internal_note`, `attach_file`, `link_ticket`, `merge_into`, `record_merged_duplicate`, `transition_ticket`, `reopen_ticket`, `rate_satisfaction`, `apply_sla`, `record_sla_warning`, `record_sla_breach`, `recompute_sla`, `escalate`, `flag_customer_upset`, `send_satisfaction_survey`
        error: missing field `type`
        ok unassign_agent
        error: invalid value: integer `300`, expected u8
        error: unknown variant `critical`, expected one of `low`, `normal`, `high`, `urgent`"#]].assert_eq(&actual.join("\n"));
}

#[test]
fn command_serializes_with_its_type_tag() {
    let command = command(json!({"type": "transition_ticket", "transition": "resolve"}));
    expect![[r#"{"type":"transition_ticket","transition":"resolve"}"#]]
        .assert_eq(&serde_json::to_string(&command).unwrap());
}

#[test]
fn ticket_numbers_and_stream_ids() {
    expect!["#10042 ticket-00000000-0000-0000-0000-000000007000"]
        .assert_eq(&format!("{NUMBER} {}", TICKET.stream_id()));
}
