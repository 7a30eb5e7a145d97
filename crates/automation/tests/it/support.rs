//! Fixtures: a compiled configuration from TOML text, a ticket built by a script of commands,
//! and rendering of events as one line each for snapshots.

use std::sync::OnceLock;

use automation::{Automation, AutomationSection};
use domain::{
    Actor, ActorId, BlueprintCatalog, Command, CommandContext, Event, Role, Ticket, TicketId,
};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use uuid::Uuid;

pub const TICKET: TicketId = TicketId(Uuid::from_u128(0x7000));
pub const CUSTOMER: Uuid = Uuid::from_u128(0xc001);

pub fn catalog() -> &'static BlueprintCatalog {
    static CATALOG: OnceLock<BlueprintCatalog> = OnceLock::new();
    CATALOG.get_or_init(BlueprintCatalog::builtin)
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    automation: AutomationSection,
}

/// The `[automation]` section of a docket.toml text, parsed.
pub fn section(text: &str) -> AutomationSection {
    toml::from_str::<File>(text)
        .map(|file| file.automation)
        .unwrap_or_else(|error| panic!("test configuration does not parse: {error}"))
}

pub fn compile(text: &str) -> Automation {
    section(text)
        .compile()
        .unwrap_or_else(|error| panic!("{}", error.display_in("docket.toml", text)))
}

pub fn actor(role: Role) -> Actor {
    let id = match role {
        Role::Customer => CUSTOMER,
        Role::System => Uuid::from_u128(0x5a5),
        _ => Uuid::from_u128(0xa001),
    };
    Actor {
        id: ActorId(id),
        role,
    }
}

/// Monday 2026-11-23 at `minutes` past 10:00 UTC.
pub fn at(minutes: i64) -> Timestamp {
    "2026-11-23T10:00:00Z".parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_mins(minutes)
}

pub fn context(role: Role, at: Timestamp) -> CommandContext<'static> {
    CommandContext::new(at, Uuid::from_u128(0x1), actor(role), catalog())
}

pub fn command(value: Value) -> Command {
    serde_json::from_value(value).unwrap_or_else(|error| panic!("bad test command: {error}"))
}

pub fn create(subject: &str, description: &str, extra: Value) -> Command {
    let mut value = json!({
        "type": "create_ticket",
        "ticket_id": TICKET,
        "number": 10042,
        "channel": "email",
        "requester": {"id": CUSTOMER, "name": "李雷"},
        "subject": subject,
        "description": description,
        "ticket_type": "general",
    });
    if let (Some(object), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        object.extend(extra.clone());
    }
    command(value)
}

/// Runs `script` from a new ticket; returns the ticket and the last command's events.
pub fn run(script: &[(Role, Command)]) -> (Ticket, Vec<Event>) {
    let mut ticket = Ticket::initial();
    let mut last = Vec::new();
    for (role, command) in script {
        let events = domain::decide(command, &ticket, &context(*role, at(0)))
            .unwrap_or_else(|rejection| panic!("script rejected {}: {rejection}", command.name()));
        ticket = events.iter().fold(ticket, domain::evolve);
        last = events;
    }
    (ticket, last)
}

pub fn render_event(event: &Event) -> String {
    format!("{} {}", event.event_type(), event.to_payload_json())
}

/// Appends what `command` decides on the ticket, as a person would through the API.
pub async fn issue_at(store: &Store, role: Role, command: Command, when: Timestamp) {
    let stream = StreamId::new(TICKET.stream_id()).unwrap();
    let records = store.read_stream(&stream, 1, 1000).await.unwrap();
    let ticket = records.iter().fold(Ticket::initial(), |ticket, record| {
        let event =
            Event::from_stored(&record.event_type, record.schema_version, &record.payload).unwrap();
        domain::evolve(ticket, &event)
    });
    let events = domain::decide(&command, &ticket, &context(role, when)).unwrap();
    let metadata = serde_json::value::to_raw_value(&json!({"at": when})).unwrap();
    let new_events = events
        .iter()
        .map(|event| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: serde_json::value::RawValue::from_string(event.to_payload_json()).unwrap(),
            metadata: metadata.clone(),
        })
        .collect();
    let expected = match ticket.version {
        0 => ExpectedVersion::NoStream,
        version => ExpectedVersion::Exact(version),
    };
    store
        .append(&stream, expected, new_events, Uuid::now_v7())
        .await
        .unwrap();
}
