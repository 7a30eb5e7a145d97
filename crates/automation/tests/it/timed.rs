//! Time-based rules as the scheduler's source, with a manual clock: a ticket waiting on the
//! customer is reminded after 72 h and moved on after 7 days; a solved ticket is closed after
//! 48 h and surveyed; a fresh source fed the same log owes the same work with the same command
//! ids (so a restart or a second leader appends nothing twice).

use automation::timed::TimedSource;
use domain::Role;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sla_scheduler::TimerSource;
use store::scratch::ScratchDb;
use store::Store;

use crate::support::*;

// The shipped `general` blueprint's system-only `expire` closes a ticket the customer left
// unanswered.
const CONFIG: &str = r#"
[automation.timed]
remind_pending_after_hours = 72
reminder = "Hello {{customer.name}}, we are waiting for your answer on {{ticket.number}}."
close_pending_after_hours = 168
close_pending_transition = "expire"
close_solved_after_hours = 48
"#;

fn hours(h: i64) -> Timestamp {
    at(0) + SignedDuration::from_hours(h)
}

async fn source_from_log(store: &Store) -> TimedSource {
    let mut source = TimedSource::new(compile(CONFIG).timed);
    for record in store.read_all(0, 1000).await.unwrap() {
        source.observe(&record);
    }
    source
}

fn render(works: &[sla_scheduler::Work]) -> String {
    works
        .iter()
        .map(|work| {
            format!(
                "due {} {} {}\n",
                work.due_at,
                serde_json::to_string(&work.command).unwrap(),
                &work.command_id.to_string()[..8]
            )
        })
        .collect()
}

#[tokio::test]
async fn waiting_and_solved_tickets_move_on_in_time() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let agent_id = actor(Role::Agent).id.0;
    issue_at(
        &store,
        Role::Customer,
        create("Printer", "jammed", json!({})),
        at(0),
    )
    .await;
    issue_at(
        &store,
        Role::Agent,
        command(json!({"type": "assign_agent", "agent": agent_id})),
        at(1),
    )
    .await;
    issue_at(
        &store,
        Role::Agent,
        command(json!({"type": "transition_ticket", "transition": "start"})),
        at(2),
    )
    .await;
    issue_at(
        &store,
        Role::Agent,
        command(json!({"type": "post_public_reply", "body": "Which model?"})),
        at(3),
    )
    .await;
    issue_at(
        &store,
        Role::Agent,
        command(json!({"type": "transition_ticket", "transition": "ask_customer"})),
        at(4),
    )
    .await;

    let mut source = source_from_log(&store).await;
    let pending_since = at(4);
    assert_eq!(
        source.next_deadline(),
        Some(pending_since + SignedDuration::from_hours(72))
    );
    assert!(source
        .fire_due(pending_since + SignedDuration::from_hours(71), 10)
        .is_empty());
    let remind = source.fire_due(pending_since + SignedDuration::from_hours(72), 10);
    let close = source.fire_due(pending_since + SignedDuration::from_hours(168), 10);
    expect_test::expect![[r#"
        due 2026-11-26T10:04:00Z {"type":"post_public_reply","body":"Hello 李雷, we are waiting for your answer on #10042.","attachments":[]} 997d4f29
        due 2026-11-30T10:04:00Z {"type":"transition_ticket","transition":"expire"} afd85e8f
    "#]].assert_eq(&(render(&remind) + &render(&close)));

    // A restart: a fresh source owes the same work under the same command ids.
    let mut again = source_from_log(&store).await;
    let replayed = again.fire_due(hours(24 * 8), 10);
    assert_eq!(
        replayed.iter().map(|w| w.command_id).collect::<Vec<_>>(),
        remind
            .iter()
            .chain(&close)
            .map(|w| w.command_id)
            .collect::<Vec<_>>()
    );

    // The customer answers (the ticket leaves pending: its timers go), then it is resolved.
    issue_at(
        &store,
        Role::Customer,
        command(json!({"type": "post_customer_message", "body": "HP 1020"})),
        hours(10),
    )
    .await;
    issue_at(
        &store,
        Role::Agent,
        command(json!({"type": "post_public_reply", "body": "Fixed."})),
        hours(11),
    )
    .await;
    issue_at(
        &store,
        Role::Agent,
        command(json!({"type": "transition_ticket", "transition": "resolve"})),
        hours(12),
    )
    .await;
    let mut source = source_from_log(&store).await;
    assert_eq!(source.next_deadline(), Some(hours(12 + 48)));
    let solved = source.fire_due(hours(12 + 48), 1);
    assert_eq!(solved.len(), 1, "the driver's max is honoured");
    let rest = source.fire_due(hours(12 + 48), 10);
    expect_test::expect![[r#"
        due 2026-11-25T22:00:00Z {"type":"transition_ticket","transition":"close"} 4c1c1070
        due 2026-11-25T22:00:00Z {"type":"send_satisfaction_survey","rule_id":"timed:close_solved"} 48820935
    "#]].assert_eq(&(render(&solved) + &render(&rest)));
    assert!(source.next_deadline().is_none());
    drop(store);
    db.cleanup().await;
}
