//! Fixtures shared by the tests: fixed ids, actors, clock readings, the catalog, and the
//! `check` helper that runs given commands, then the command under test, and renders the
//! outcome as text for a snapshot.

use std::sync::OnceLock;

use domain::{
    decide, evolve, Actor, ActorId, AgentId, BlueprintCatalog, Command, CommandContext, CustomerId,
    Event, Role, TeamId, Ticket, TicketId, TicketNumber,
};
use expect_test::Expect;
use jiff::Timestamp;
use serde_json::{json, Value};
use uuid::Uuid;

pub const TICKET: TicketId = TicketId(Uuid::from_u128(0x7000));
pub const OTHER_TICKET: TicketId = TicketId(Uuid::from_u128(0x7001));
pub const NUMBER: TicketNumber = TicketNumber(10042);
pub const CUSTOMER: CustomerId = CustomerId(Uuid::from_u128(0xc001));
pub const STRANGER: CustomerId = CustomerId(Uuid::from_u128(0xc002));
pub const ANN: AgentId = AgentId(Uuid::from_u128(0xa001));
pub const BOB: AgentId = AgentId(Uuid::from_u128(0xa002));
pub const BILLING: TeamId = TeamId(Uuid::from_u128(0xb001));
pub const TECH: TeamId = TeamId(Uuid::from_u128(0xb002));
pub const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub fn catalog() -> &'static BlueprintCatalog {
    static CATALOG: OnceLock<BlueprintCatalog> = OnceLock::new();
    CATALOG.get_or_init(BlueprintCatalog::builtin)
}

pub fn customer() -> Actor {
    Actor {
        id: ActorId(CUSTOMER.0),
        role: Role::Customer,
    }
}
pub fn stranger() -> Actor {
    Actor {
        id: ActorId(STRANGER.0),
        role: Role::Customer,
    }
}
pub fn agent() -> Actor {
    Actor {
        id: ActorId(ANN.0),
        role: Role::Agent,
    }
}
pub fn supervisor() -> Actor {
    Actor {
        id: ActorId(Uuid::from_u128(0x5001)),
        role: Role::Supervisor,
    }
}
pub fn admin() -> Actor {
    Actor {
        id: ActorId(Uuid::from_u128(0xad01)),
        role: Role::Admin,
    }
}
pub fn system() -> Actor {
    Actor {
        id: ActorId(Uuid::from_u128(0x5a5)),
        role: Role::System,
    }
}
pub fn integration() -> Actor {
    Actor {
        id: ActorId(Uuid::from_u128(0x1e1)),
        role: Role::Integration,
    }
}

pub fn actor_of(role: Role) -> Actor {
    match role {
        Role::Customer => customer(),
        Role::Agent => agent(),
        Role::Supervisor => supervisor(),
        Role::Admin => admin(),
        Role::System => system(),
        Role::Integration => integration(),
    }
}

/// Monday 2026-01-05 09:00 UTC plus `minutes`: every test reads this clock, never the real one.
pub fn at(minutes: i64) -> Timestamp {
    let start: Timestamp = "2026-01-05T09:00:00Z".parse().expect("valid timestamp");
    start + jiff::SignedDuration::from_mins(minutes)
}

pub fn ctx(actor: Actor, minutes: i64) -> CommandContext<'static> {
    CommandContext::new(
        at(minutes),
        Uuid::from_u128(0xc0de_0000 + minutes as u128),
        actor,
        catalog(),
    )
}

/// A command from its JSON form, exactly as the HTTP API receives it.
pub fn command(value: Value) -> Command {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|error| panic!("test command {value} does not parse: {error}"))
}

pub fn attachment(n: u128, name: &str, content_type: &str) -> Value {
    json!({
        "id": Uuid::from_u128(0xf000 + n),
        "name": name,
        "content_type": content_type,
        "size_bytes": 48213,
        "sha256": SHA,
    })
}

pub fn create(ticket_type: &str) -> Command {
    command(json!({
        "type": "create_ticket",
        "ticket_id": TICKET,
        "number": NUMBER,
        "channel": "email",
        "requester": {"id": CUSTOMER, "name": "李四", "email": "li.si@example.com"},
        "subject": "订单 12345 未发货",
        "description": "I paid a week ago and nothing arrived.",
        "ticket_type": ticket_type,
        "priority": "normal",
        "tags": ["shipping"],
        "fields": {"order_id": "12345"},
    }))
}

pub fn decide_all(given: &[(Actor, Command)]) -> (Ticket, Vec<Event>) {
    let mut ticket = Ticket::initial();
    let mut history = Vec::new();
    for (minute, (actor, command)) in given.iter().enumerate() {
        let events = decide(command, &ticket, &ctx(*actor, minute as i64))
            .unwrap_or_else(|rejection| panic!("given {command:?} was rejected: {rejection}"));
        for event in events {
            ticket = evolve(ticket, &event);
            history.push(event);
        }
    }
    (ticket, history)
}

pub fn render_events(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events\n".to_owned();
    }
    events
        .iter()
        .map(|event| {
            format!(
                "{} v{}{} {}\n",
                event.event_type(),
                event.schema_version(),
                if event.is_internal() {
                    " (internal)"
                } else {
                    ""
                },
                event.to_payload_json()
            )
        })
        .collect()
}

/// Given a history built by commands, when `when` is decided at minute 100, expect this outcome.
pub fn check(given: &[(Actor, Command)], when: (Actor, Command), expect: Expect) {
    let (ticket, _) = decide_all(given);
    let outcome = decide(&when.1, &ticket, &ctx(when.0, 100));
    let actual = match outcome {
        Ok(events) => {
            // The events must fold without surprises and advance the version by their count.
            let version = ticket.version;
            let after = events.iter().fold(ticket, evolve);
            assert_eq!(after.version, version + events.len() as u64);
            render_events(&events)
        }
        Err(rejection) => format!(
            "rejected: {rejection}\n{}\n",
            serde_json::to_string(&rejection).expect("rejections serialize")
        ),
    };
    expect.assert_eq(&actual);
}
