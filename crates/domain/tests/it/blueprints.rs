//! Blueprints: the shipped ones load, broken ones fail with file and line, versions never change
//! the rules of existing tickets, and the exhaustive transition matrix of each shipped blueprint.

use std::fmt::Write as _;

use domain::{
    decide, evolve, AgentAssigned, AttachmentId, BlueprintCatalog, BlueprintRef, BodyPii, Channel,
    Command, Event, FieldValue, FileAttached, FileNamePii, InternalNoteAdded, Priority,
    PublicReplyPosted, Rejection, Role, Ticket, TicketCreated, TicketCreatedPii,
    TicketTransitioned, TransitionTicket, Visibility, BUILTIN_BLUEPRINTS,
};
use expect_test::{expect, Expect};
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

const MINI: &str = r#"id = "mini"
version = 1
name = "Mini"
initial = "new"
reopen_to = "open"

[[states]]
name = "new"
label = "New"
category = "new"

[[states]]
name = "open"
label = "Open"
category = "open"

[[states]]
name = "done"
label = "Done"
category = "solved"

[[states]]
name = "closed"
label = "Closed"
category = "closed"

[[transitions]]
name = "start"
from = ["new"]
to = "open"
roles = ["agent"]

[[transitions]]
name = "finish"
from = ["open"]
to = "done"
roles = ["agent"]
requires = { attachment = "image/*" }

[[transitions]]
name = "close"
from = ["done"]
to = "closed"
roles = ["agent", "system"]
"#;

fn load_error(source: &str) -> String {
    match domain::Blueprint::from_toml("mini.toml", source) {
        Ok(_) => "loaded".to_owned(),
        Err(error) => error.to_string(),
    }
}

#[test]
fn shipped_blueprints_load() {
    let catalog = BlueprintCatalog::load(BUILTIN_BLUEPRINTS).expect("shipped blueprints load");
    let summary: Vec<String> = catalog
        .iter()
        .map(|blueprint| {
            format!(
                "{} v{} from {}: {} states, {} transitions",
                blueprint.id,
                blueprint.version,
                blueprint.file,
                blueprint.states.len(),
                blueprint.transitions.len()
            )
        })
        .collect();
    expect![[r#"
        general v1 from general.toml: 6 states, 9 transitions
        refund v1 from refund.toml: 7 states, 8 transitions"#]]
    .assert_eq(&summary.join("\n"));
    assert_eq!(load_error(MINI), "loaded");
}

#[test]
fn broken_blueprints_name_file_and_line() {
    let cases: &[(&str, String)] = &[
        ("syntax", MINI.replace("version = 1", "version = ")),
        (
            "unknown key",
            MINI.replace("label = \"Open\"", "label = \"Open\"\ncolour = \"red\""),
        ),
        (
            "unknown role",
            MINI.replace("roles = [\"agent\"]\n\n[[transitions]]\nname = \"finish\"", "roles = [\"auditor\"]\n\n[[transitions]]\nname = \"finish\""),
        ),
        (
            "duplicate state",
            MINI.replace("name = \"done\"", "name = \"open\""),
        ),
        (
            "duplicate transition",
            MINI.replace("name = \"close\"", "name = \"start\""),
        ),
        (
            "unknown target state",
            MINI.replace("to = \"closed\"", "to = \"archived\""),
        ),
        (
            "unknown source state",
            MINI.replace("from = [\"done\"]", "from = [\"done\", \"limbo\"]"),
        ),
        (
            "unreachable state",
            format!("{MINI}\n[[states]]\nname = \"limbo\"\nlabel = \"Limbo\"\ncategory = \"open\"\n\n[[transitions]]\nname = \"escape\"\nfrom = [\"limbo\"]\nto = \"closed\"\nroles = [\"admin\"]\n"),
        ),
        (
            "transition out of closed",
            MINI.replace("from = [\"done\"]", "from = [\"done\", \"closed\"]"),
        ),
        (
            "dead end",
            MINI.replace("from = [\"done\"]", "from = [\"open\"]"),
        ),
        (
            "initial not new",
            MINI.replace("initial = \"new\"", "initial = \"open\""),
        ),
        (
            "reopen to a solved state",
            MINI.replace("reopen_to = \"open\"", "reopen_to = \"done\""),
        ),
        (
            "no closed state",
            MINI.replace("category = \"closed\"", "category = \"solved\""),
        ),
        (
            "bad content type pattern",
            MINI.replace("image/*", "image"),
        ),
        ("bad name", MINI.replace("name = \"start\"", "name = \"Start Work\"")),
        (
            "no roles",
            MINI.replace("roles = [\"agent\", \"system\"]", "roles = []"),
        ),
        (
            "duplicate role",
            MINI.replace("roles = [\"agent\", \"system\"]", "roles = [\"agent\", \"agent\"]"),
        ),
        ("too large", format!("{MINI}\n#{}", "x".repeat(domain::limits::BLUEPRINT_SOURCE_BYTES_MAX))),
        // Found in review: both loaded, and neither transition could ever be taken.
        ("no source states", MINI.replace("from = [\"done\"]", "from = []")),
        (
            "ordering on a yes/no value",
            MINI.replace(
                "requires = { attachment = \"image/*\" }",
                "requires = { attachment = \"image/*\", conditions = [{ field = \"vip\", op = \"gt\", value = true }] }",
            ),
        ),
    ];
    let mut actual = String::new();
    for (name, source) in cases {
        assert_ne!(source, MINI, "case `{name}` did not change the blueprint");
        writeln!(actual, "{name}: {}", load_error(source)).unwrap();
    }
    expect![[r#"
        syntax: mini.toml:2:11: string values must be quoted, expected literal string
        unknown key: mini.toml:15:1: unknown field `colour`, expected one of `name`, `label`, `category`
        unknown role: mini.toml:31:10: unknown variant `auditor`, expected one of `customer`, `agent`, `supervisor`, `admin`, `system`, `integration`
        duplicate state: mini.toml:18:8: state `open` is defined twice
        duplicate transition: mini.toml:41:8: transition `start` is defined twice
        unknown target state: mini.toml:43:6: transition `close` to names unknown state `archived`
        unknown source state: mini.toml:42:17: transition `close` from names unknown state `limbo`
        unreachable state: mini.toml:47:8: state `limbo` cannot be reached from the initial state
        transition out of closed: mini.toml:42:17: transition `close` leaves closed state `closed`; closed is terminal
        dead end: mini.toml:18:8: state `done` has no transition out and is not closed
        initial not new: mini.toml:4:11: initial state `open` has category open, expected new
        reopen to a solved state: mini.toml:5:13: reopen_to state `done` has category solved, expected open
        no closed state: mini.toml:1:6: no state has category closed, so tickets could never end
        bad content type pattern: mini.toml:38:27: `image` is not a content type pattern such as `image/*` or `application/pdf`
        bad name: mini.toml:28:8: `Start Work` is not a valid name (lowercase letters, digits and `_`, starting with a letter, at most 128 bytes)
        no roles: mini.toml:44:9: transition `close` allows no role
        duplicate role: mini.toml:44:9: transition `close` allows the same role twice
        too large: mini.toml:1:1: blueprint is 262744 bytes, over the 262144 byte limit
        no source states: mini.toml:41:8: transition `close` starts from no state
        ordering on a yes/no value: mini.toml:38:62: condition on `vip` compares a yes/no value with `>`, which can never hold; use eq or ne
    "#]].assert_eq(&actual);
}

#[test]
fn a_version_is_loaded_once_and_a_ticket_type_has_one_blueprint() {
    let error = BlueprintCatalog::load(&[("a.toml", MINI), ("b.toml", MINI)]).unwrap_err();
    let claims_refund = MINI.replace("id = \"mini\"", "id = \"refund_v2\"").replace(
        "name = \"Mini\"",
        "name = \"Mini\"\nticket_types = [\"refund\"]",
    );
    let claimed = BlueprintCatalog::load(&[BUILTIN_BLUEPRINTS[1], ("mini.toml", &claims_refund)])
        .unwrap_err();
    expect![[r#"
        b.toml:2:1: blueprint `mini` version 1 is loaded twice
        mini.toml:4:1: ticket type `refund` already follows blueprint `refund`"#]]
    .assert_eq(&format!("{error}\n{claimed}"));
}

#[test]
fn without_a_default_blueprint_unknown_types_are_rejected() {
    let catalog = BlueprintCatalog::load(&BUILTIN_BLUEPRINTS[1..]).unwrap();
    let context = domain::CommandContext::new(at(0), Uuid::nil(), agent(), &catalog);
    let rejection = decide(&create("question"), &Ticket::initial(), &context).unwrap_err();
    expect![[r#"{"rule":"no_blueprint_for_type","ticket_type":"question"}"#]]
        .assert_eq(&serde_json::to_string(&rejection).unwrap());
}

#[test]
fn content_type_patterns() {
    let cases = [
        ("image/*", "image/png"),
        ("image/*", "IMAGE/JPEG"),
        ("image/*", "application/pdf"),
        ("*/*", "text/plain; charset=utf-8"),
        ("application/pdf", "application/pdf"),
        ("application/pdf", "application/pdfx"),
        ("image/*", "image"),
    ];
    let actual: String = cases
        .iter()
        .map(|(pattern, content_type)| {
            format!(
                "{pattern} ~ {content_type}: {}\n",
                domain::content_type_matches(pattern, content_type)
            )
        })
        .collect();
    expect![[r#"
        image/* ~ image/png: true
        image/* ~ IMAGE/JPEG: true
        image/* ~ application/pdf: false
        */* ~ text/plain; charset=utf-8: true
        application/pdf ~ application/pdf: true
        application/pdf ~ application/pdfx: false
        image/* ~ image: false
    "#]]
    .assert_eq(&actual);
}

/// A new blueprint version applies to new tickets only; existing ones keep their version's rules.
#[test]
fn new_version_never_changes_rules_for_existing_tickets() {
    let general = BUILTIN_BLUEPRINTS[0].1;
    let stricter = general.replace("version = 1", "version = 2").replace(
        "to = \"resolved\"\nroles = [\"agent\", \"supervisor\", \"admin\"]\nrequires = { public_reply = true }",
        "to = \"resolved\"\nroles = [\"agent\", \"supervisor\", \"admin\"]\nrequires = { public_reply = true, internal_note = true }",
    );
    assert_ne!(general, stricter);
    let v1_only = BlueprintCatalog::load(&BUILTIN_BLUEPRINTS[..1]).unwrap();
    let both = BlueprintCatalog::load(&[("general.toml", general), ("general-v2.toml", &stricter)])
        .unwrap();

    let resolve = Command::TransitionTicket(TransitionTicket {
        transition: "resolve".to_owned(),
    });
    let mut old_ticket = Ticket::initial();
    let history = [
        create("general"),
        command(json!({"type": "assign_agent", "agent": ANN})),
        command(json!({"type": "post_public_reply", "body": "done"})),
    ];
    for command in &history {
        let context = domain::CommandContext::new(at(0), Uuid::nil(), agent(), &v1_only);
        for event in decide(command, &old_ticket, &context).unwrap() {
            old_ticket = evolve(old_ticket, &event);
        }
    }
    let context = domain::CommandContext::new(at(1), Uuid::nil(), agent(), &both);
    let old_outcome = decide(&resolve, &old_ticket, &context).map(|events| events.len());

    let mut new_ticket = Ticket::initial();
    for command in &history {
        for event in decide(command, &new_ticket, &context).unwrap() {
            new_ticket = evolve(new_ticket, &event);
        }
    }
    let new_outcome = decide(&resolve, &new_ticket, &context).map_err(|r| r.to_string());
    expect![[r#"
        ticket on v1: Ok(1)
        ticket on v2: Err("transition `resolve` needs an internal note in the current state; allowed here: start (to in_progress), resolve (to resolved)")
    "#]].assert_eq(&format!(
        "ticket on v1: {old_outcome:?}\nticket on v2: {new_outcome:?}\n"
    ));
}

/// A ticket in `state` of `blueprint` on which every requirement a shipped blueprint can ask
/// for holds (`prepared`), or none does.
fn ticket_in(blueprint: &BlueprintRef, state: &str, prepared: bool) -> Ticket {
    let catalog = catalog();
    let category = catalog
        .get(&blueprint.id, blueprint.version)
        .and_then(|blueprint| blueprint.state(state))
        .expect("state exists")
        .category;
    let mut events = vec![Event::TicketCreated(TicketCreated {
        ticket_id: TICKET,
        number: NUMBER,
        channel: Channel::Web,
        requester: CUSTOMER,
        ticket_type: blueprint.id.clone(),
        priority: if prepared {
            Priority::Urgent
        } else {
            Priority::Low
        },
        tags: vec![],
        fields: if prepared {
            [
                ("order_id".to_owned(), FieldValue::Text("A-1".to_owned())),
                ("refund_amount".to_owned(), FieldValue::Integer(500)),
            ]
            .into()
        } else {
            Default::default()
        },
        blueprint: blueprint.clone(),
        state: "new".to_owned(),
        category: domain::StateCategory::New,
        pii: TicketCreatedPii {
            subject: "s".to_owned(),
            description: "d".to_owned(),
            requester_name: None,
            requester_email: None,
        },
    })];
    if prepared {
        events.push(Event::AgentAssigned(AgentAssigned {
            from: None,
            to: ANN,
            reason: None,
            routing: None,
        }));
        events.push(Event::FileAttached(FileAttached {
            attachment: AttachmentId(Uuid::from_u128(1)),
            content_type: "image/png".to_owned(),
            size_bytes: 1,
            sha256: SHA.to_owned(),
            visibility: Visibility::Public,
            pii: FileNamePii {
                name: "photo.png".to_owned(),
            },
        }));
    }
    // Put the ticket in the state directly: the matrix is about leaving each state.
    events.push(Event::TicketTransitioned(TicketTransitioned {
        transition: "fixture".to_owned(),
        from: "new".to_owned(),
        from_category: domain::StateCategory::New,
        to: state.to_owned(),
        to_category: category,
    }));
    if prepared {
        events.push(Event::InternalNoteAdded(InternalNoteAdded {
            mentions: vec![],
            pii: BodyPii {
                body: "why".to_owned(),
            },
        }));
        events.push(Event::PublicReplyPosted(PublicReplyPosted {
            attachments: vec![],
            pii: BodyPii {
                body: "answer".to_owned(),
            },
        }));
    }
    Ticket::replay(&events)
}

fn cell(outcome: Result<Vec<Event>, Rejection>) -> String {
    match outcome {
        Ok(events) => match events.as_slice() {
            [Event::TicketTransitioned(transitioned)] => format!("→{}", transitioned.to),
            other => format!("unexpected {other:?}"),
        },
        Err(Rejection::TransitionNotFromState { .. }) => "·".to_owned(),
        Err(Rejection::TransitionRoleNotAllowed { .. }) => "role".to_owned(),
        Err(Rejection::RoleNotAllowed { .. }) => "role".to_owned(),
        Err(Rejection::TransitionRequirementsUnmet { unmet, .. }) => {
            let kinds: Vec<String> = unmet
                .iter()
                .map(|requirement| {
                    serde_json::to_value(requirement).unwrap()["kind"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            format!("needs {}", kinds.join("+"))
        }
        Err(Rejection::TicketClosed) => "closed".to_owned(),
        Err(other) => format!("{other}"),
    }
}

/// Every state × transition × role of a shipped blueprint: on a prepared ticket (all
/// requirements met) and, where the role may take the transition, what a bare ticket lacks.
fn check_matrix(id: &str, expect: Expect) {
    let blueprint = catalog().latest(id).expect("shipped blueprint");
    let reference = blueprint.reference();
    let mut table = format!(
        "{reference}: state / transition / {}\n",
        Role::ALL.map(|role| role.as_str()).join(" / ")
    );
    for state in &blueprint.states {
        let prepared = ticket_in(&reference, &state.name, true);
        let bare = ticket_in(&reference, &state.name, false);
        for transition in &blueprint.transitions {
            let command = Command::TransitionTicket(TransitionTicket {
                transition: transition.name.clone(),
            });
            let mut cells = Vec::new();
            let mut bare_needs = None;
            for role in Role::ALL {
                let context = ctx(actor_of(role), 100);
                let outcome = cell(decide(&command, &prepared, &context));
                if outcome.starts_with('→') && bare_needs.is_none() {
                    bare_needs = Some(cell(decide(&command, &bare, &context)));
                }
                cells.push(outcome);
            }
            // Rows where the transition does not start from the state, or the state is closed
            // and refuses everything, carry no information and are left out.
            if cells.iter().all(|cell| cell == "·" || cell == "closed") {
                continue;
            }
            write!(
                table,
                "{} / {} / {}",
                state.name,
                transition.name,
                cells.join(" / ")
            )
            .unwrap();
            if let Some(needs) = bare_needs.filter(|needs| needs.starts_with("needs")) {
                write!(table, "   (bare ticket {needs})").unwrap();
            }
            table.push('\n');
        }
        let from_state = blueprint
            .transitions
            .iter()
            .any(|transition| transition.from.contains(&state.name));
        if !from_state {
            writeln!(
                table,
                "{} / (no transitions: {})",
                state.name, state.category
            )
            .unwrap();
        }
    }
    expect.assert_eq(&table);
}

#[test]
fn general_transition_matrix() {
    check_matrix(
        "general",
        expect![[r#"
            general v1: state / transition / customer / agent / supervisor / admin / system / integration
            new / start / role / →in_progress / →in_progress / →in_progress / →in_progress / role
            new / resolve / role / →resolved / →resolved / →resolved / role / role   (bare ticket needs assignee+public_reply)
            new / cancel / role / role / →closed / →closed / role / role   (bare ticket needs internal_note)
            in_progress / ask_customer / role / →waiting_on_customer / →waiting_on_customer / →waiting_on_customer / role / role   (bare ticket needs public_reply)
            in_progress / resolve / role / →resolved / →resolved / →resolved / role / role   (bare ticket needs assignee+public_reply)
            waiting_on_customer / resume / role / →in_progress / →in_progress / →in_progress / →in_progress / role
            waiting_on_customer / expire / role / role / role / role / →closed / role
            waiting_on_customer / resolve / role / →resolved / →resolved / →resolved / role / role   (bare ticket needs assignee+public_reply)
            resolved / schedule_follow_up / role / →follow_up / →follow_up / →follow_up / →follow_up / role   (bare ticket needs assignee)
            resolved / confirm / →closed / role / role / role / role / →closed
            resolved / close / role / →closed / →closed / →closed / →closed / role
            follow_up / confirm / →closed / role / role / role / role / →closed
            follow_up / close / role / →closed / →closed / →closed / →closed / role
            closed / (no transitions: closed)
        "#]],
    );
}

#[test]
fn refund_transition_matrix() {
    check_matrix(
        "refund",
        expect![[r#"
        refund v1: state / transition / customer / agent / supervisor / admin / system / integration
        new / start_review / role / →reviewing / →reviewing / →reviewing / →reviewing / role
        reviewing / request_evidence / role / →waiting_on_customer / →waiting_on_customer / →waiting_on_customer / role / role   (bare ticket needs public_reply)
        reviewing / approve / role / →approved / →approved / role / role / role   (bare ticket needs field_set+field_set+attachment+internal_note+field_condition)
        reviewing / approve_large / role / role / →approved / →approved / role / role   (bare ticket needs field_set+field_set+attachment+internal_note)
        reviewing / reject / role / →rejected / →rejected / →rejected / role / role   (bare ticket needs assignee+internal_note+public_reply)
        waiting_on_customer / resume_review / role / →reviewing / →reviewing / →reviewing / →reviewing / role
        waiting_on_customer / reject / role / →rejected / →rejected / →rejected / role / role   (bare ticket needs assignee+internal_note+public_reply)
        approved / mark_refunded / role / →refunded / →refunded / →refunded / →refunded / →refunded   (bare ticket needs assignee+public_reply)
        refunded / close / role / →closed / →closed / →closed / →closed / role
        rejected / close / role / →closed / →closed / →closed / →closed / role
        closed / (no transitions: closed)
    "#]],
    );
}
