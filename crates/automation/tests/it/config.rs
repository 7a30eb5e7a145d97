//! Configuration errors name the line and the key of what is wrong.

use expect_test::expect;

use crate::support::section;

fn check(text: &str) -> String {
    match section(text).compile() {
        Ok(automation) => format!(
            "ok: {} triggers, {} macros",
            automation.triggers.len(),
            automation.macros.len()
        ),
        Err(error) => error.display_in("docket.toml", text),
    }
}

#[test]
fn errors_name_the_line_and_the_key() {
    let cases = [
        "",
        "[[automation.triggers]]\nid = \"ok\"\non = [\"TicketCreated\"]\nactions = [{ add_tags = [\"a\"] }]\n",
        "[[automation.triggers]]\nid = \"Bad Id\"\non = [\"TicketCreated\"]\nactions = [{ add_tags = [\"a\"] }]\n",
        "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\", \"TicketDeleted\"]\nactions = [{ add_tags = [\"a\"] }]\n",
        "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nall = [{ text_matches = \"(unclosed\" }]\nactions = [{ add_tags = [\"a\"] }]\n",
        "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = [\n  { add_tags = [\"a\"] },\n  { apply_macro = \"nope\" },\n]\n",
        "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = [{ add_tags = [\"two words\"] }]\n",
        "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = []\n",
        "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = [{ add_note = \"hi {{agent.nmae}}\" }]\n",
        "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = [{ add_tags = [\"a\"] }]\n[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = [{ add_tags = [\"b\"] }]\n",
        "[[automation.macros]]\nid = \"m\"\ntitle = \"M\"\nreply = \"Dear {{customer.nam}}\"\n",
        "[[automation.macros]]\nid = \"m\"\ntitle = \"M\"\n",
        "[automation.business_hours]\nzone = \"Mars/Olympus\"\nmonday = [\"09:00-18:00\"]\n",
        "[automation.business_hours]\nzone = \"UTC\"\nmonday = [\"9am-6pm\"]\n",
        "[automation.timed]\nremind_pending_after_hours = 72\n",
        "[automation.timed]\nclose_solved_after_hours = 0\n",
        "[automation.timed]\nremind_pending_after_hours = 72\nreminder = \"Hi {{agent.name}}\"\n",
        "[automation.timed]\nreminder = \"Hi\"\nclose_pending_after_hours = 5\n",
    ];
    let actual: Vec<String> = cases.iter().map(|text| check(text)).collect();
    expect![[r#"
        ok: 0 triggers, 0 macros
        ok: 1 triggers, 0 macros
        docket.toml:2: automation.triggers[0].id: "Bad Id" must be 1 to 64 of a-z, 0-9, `_` and `-`
        docket.toml:3: automation.triggers[0].on: unknown event type "TicketDeleted"; known: TicketCreated, TicketFieldsUpdated, PriorityChanged, PriorityChangedByRule, TagsAdded, TagsRemoved, TeamAssigned, TeamTransferred, AgentAssigned, AgentUnassigned, CollaboratorAdded, CollaboratorRemoved, PublicReplyPosted, CustomerMessageReceived, InternalNoteAdded, FileAttached, TicketLinked, TicketMergedInto, DuplicateMerged, TicketTransitioned, TicketReopened, SatisfactionRated, SlaApplied, SlaWarningRaised, SlaBreached, SlaRecomputed, Escalated, CustomerUpsetFlagged, SatisfactionSurveySent
        docket.toml:4: automation.triggers[0].all[0].text_matches: "(unclosed" is not a regular expression: error: unclosed group
        docket.toml:6: automation.triggers[0].actions[1].apply_macro: no macro "nope"; known: none
        docket.toml:4: automation.triggers[0].actions[0].add_tags: tag "two words" must be 1 to 64 bytes without whitespace
        docket.toml:4: automation.triggers[0].actions: 1 to 16 actions
        docket.toml:4: automation.triggers[0].actions[0].add_note: unknown placeholder {{agent.nmae}} at byte 3; known: {{customer.name}}, {{customer.email}}, {{ticket.number}}, {{ticket.subject}}, {{agent.name}}
        docket.toml:6: automation.triggers[1].id: trigger id "t" is used twice
        docket.toml:4: automation.macros[0].reply: unknown placeholder {{customer.nam}} at byte 5; known: {{customer.name}}, {{customer.email}}, {{ticket.number}}, {{ticket.subject}}, {{agent.name}}
        docket.toml:2: automation.macros[0]: a macro needs at least one of reply, note, add_tags, remove_tags, priority, transition
        docket.toml:2: automation.business_hours: unknown time zone "Mars/Olympus" (use an IANA name such as Asia/Shanghai)
        docket.toml:3: automation.business_hours.monday: "9am-6pm" is not an interval like "09:00-18:00"
        docket.toml:2: automation.timed.reminder: remind_pending_after_hours needs a reminder text
        docket.toml:2: automation.timed.close_solved_after_hours: 0 must be 1 to 8784 hours
        docket.toml:3: automation.timed.reminder: {{agent.name}} has no value in an automatic reminder
        docket.toml:3: automation.timed.close_pending_transition: close_pending_after_hours needs the transition that closes a pending ticket (one the system role may take)"#]].assert_eq(&actual.join("\n"));
}

#[test]
fn serde_errors_carry_the_span_too() {
    let text = "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nall = [{ priority_at_lest = \"high\" }]\nactions = [{ add_tags = [\"a\"] }]\n";
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)] // reason: only the error is looked at
    struct File {
        automation: automation::AutomationSection,
    }
    let error = toml::from_str::<File>(text).unwrap_err();
    let line = error
        .span()
        .map(|span| text[..span.start].matches('\n').count() + 1);
    expect!["line Some(4): unknown variant `priority_at_lest`, expected one of `priority`, `priority_at_least`, `channel`, `ticket_type`, `state`, `category`, `has_tag`, `lacks_tag`, `team`, `assignee`, `assigned`, `field`, `text_contains`, `text_matches`, `customer_tier`, `business_hours`"].assert_eq(&format!("line {line:?}: {}", error.message()));
}
