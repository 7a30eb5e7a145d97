//! Benchmark of the pure decider: decide + evolve throughput for typical commands on one core,
//! plus ticket creation and replay from stored JSON. Run with `cargo bench -p domain`.
//!
//! It measures and prints; it never asserts a time, because timings belong in docs, not tests.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on stdout"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use domain::{
    decide, evolve, Actor, ActorId, AddInternalNote, AddTags, AgentId, AssignAgent,
    BlueprintCatalog, Channel, Command, CommandContext, CreateTicket, CustomerId, Event,
    PostCustomerMessage, PostPublicReply, Priority, RemoveTags, Requester, Role, SetPriority,
    Ticket, TicketId, TicketNumber, TransitionTicket,
};
use jiff::Timestamp;
use uuid::Uuid;

/// Each measurement runs at least this long, so that the figure is not noise.
const MEASURE_TIME_MIN: Duration = Duration::from_secs(2);

const CUSTOMER: CustomerId = CustomerId(Uuid::from_u128(0xc001));
const ANN: AgentId = AgentId(Uuid::from_u128(0xa001));
const BOB: AgentId = AgentId(Uuid::from_u128(0xa002));

fn create(n: u64) -> Command {
    Command::CreateTicket(CreateTicket {
        ticket_id: TicketId(Uuid::from_u128(u128::from(n))),
        number: TicketNumber(10_000 + n),
        channel: Channel::Email,
        requester: Requester {
            id: CUSTOMER,
            name: Some("李四".to_owned()),
            email: Some("li.si@example.com".to_owned()),
        },
        subject: "订单 12345 未发货".to_owned(),
        description: "I paid a week ago and nothing arrived. Please check.".to_owned(),
        ticket_type: "general".to_owned(),
        priority: Priority::Normal,
        tags: vec!["shipping".to_owned()],
        fields: [(
            "order_id".to_owned(),
            domain::FieldValue::Text("12345".to_owned()),
        )]
        .into(),
        attachments: vec![],
    })
}

fn transition(name: &str) -> Command {
    Command::TransitionTicket(TransitionTicket {
        transition: name.to_owned(),
    })
}

/// One working cycle on an open ticket; it returns the ticket to where it started, so the cycle
/// can repeat forever without the ticket growing.
fn cycle() -> Vec<(Role, Command)> {
    vec![
        (
            Role::Agent,
            Command::AssignAgent(AssignAgent {
                agent: BOB,
                reason: None,
                routing: None,
            }),
        ),
        (
            Role::Agent,
            Command::PostPublicReply(PostPublicReply {
                body: "We have asked the warehouse; could you confirm the address?".to_owned(),
                attachments: vec![],
            }),
        ),
        (Role::Agent, transition("ask_customer")),
        (
            Role::Customer,
            Command::PostCustomerMessage(PostCustomerMessage {
                body: "Yes, 1 Main Street.".to_owned(),
                attachments: vec![],
            }),
        ),
        (
            Role::Agent,
            Command::AddInternalNote(AddInternalNote {
                body: "@Ann address confirmed, reship.".to_owned(),
                mentions: vec![ANN],
            }),
        ),
        (
            Role::Agent,
            Command::SetPriority(SetPriority {
                priority: Priority::High,
                reason: "second contact".to_owned(),
            }),
        ),
        (
            Role::Agent,
            Command::AddTags(AddTags {
                tags: vec!["reship".to_owned()],
            }),
        ),
        (
            Role::Agent,
            Command::RemoveTags(RemoveTags {
                tags: vec!["reship".to_owned()],
            }),
        ),
        (
            Role::Agent,
            Command::SetPriority(SetPriority {
                priority: Priority::Normal,
                reason: "reshipped".to_owned(),
            }),
        ),
        (
            Role::Agent,
            Command::AssignAgent(AssignAgent {
                agent: ANN,
                reason: None,
                routing: None,
            }),
        ),
    ]
}

fn context(role: Role, blueprints: &BlueprintCatalog) -> CommandContext<'_> {
    let id = match role {
        Role::Customer => CUSTOMER.0,
        _ => ANN.0,
    };
    CommandContext::new(
        Timestamp::from_second(1_767_603_600).expect("valid timestamp"),
        Uuid::from_u128(1),
        Actor {
            id: ActorId(id),
            role,
        },
        blueprints,
    )
}

fn run(ticket: Ticket, command: &Command, ctx: &CommandContext<'_>) -> (Ticket, usize) {
    let events = decide(black_box(command), &ticket, ctx).expect("benchmark commands succeed");
    let count = events.len();
    (events.iter().fold(ticket, evolve), count)
}

fn report(name: &str, commands: u64, events: u64, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "{name:<34} {:>12.0} commands/s {:>12.0} events/s ({commands} commands in {seconds:.2} s)",
        commands as f64 / seconds,
        events as f64 / seconds,
    );
}

fn main() {
    let blueprints = BlueprintCatalog::builtin();
    let cycle = cycle();
    let contexts: Vec<CommandContext<'_>> = cycle
        .iter()
        .map(|(role, _)| context(*role, &blueprints))
        .collect();
    let agent = context(Role::Agent, &blueprints);

    // Typical work on an open ticket.
    let mut ticket = Ticket::initial();
    for command in [
        create(1),
        Command::AssignAgent(AssignAgent {
            agent: ANN,
            reason: None,
            routing: None,
        }),
        transition("start"),
    ] {
        ticket = run(ticket, &command, &agent).0;
    }
    let (mut commands, mut events) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < MEASURE_TIME_MIN {
        for _ in 0..1_000 {
            for ((_, command), ctx) in cycle.iter().zip(&contexts) {
                let (next, count) = run(ticket, command, ctx);
                ticket = next;
                events += count as u64;
            }
            commands += cycle.len() as u64;
        }
    }
    report(
        "decide+evolve, typical mix",
        commands,
        events,
        started.elapsed(),
    );
    black_box(&ticket);

    // Creating tickets: the widest command and event.
    let creates: Vec<Command> = (0..1_000).map(create).collect();
    let (mut commands, mut events) = (0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < MEASURE_TIME_MIN {
        for command in &creates {
            let (created, count) = run(Ticket::initial(), command, &agent);
            black_box(created);
            events += count as u64;
        }
        commands += creates.len() as u64;
    }
    report(
        "decide+evolve, create_ticket",
        commands,
        events,
        started.elapsed(),
    );

    // Replay: decode stored payloads and fold them, as a projection rebuild does.
    let mut history: Vec<Event> = Vec::new();
    let mut ticket = Ticket::initial();
    for command in [
        create(2),
        Command::AssignAgent(AssignAgent {
            agent: ANN,
            reason: None,
            routing: None,
        }),
        transition("start"),
    ] {
        for event in decide(&command, &ticket, &agent).expect("setup succeeds") {
            ticket = evolve(ticket, &event);
            history.push(event);
        }
    }
    for ((_, command), ctx) in cycle.iter().zip(&contexts) {
        for event in decide(command, &ticket, ctx).expect("setup succeeds") {
            ticket = evolve(ticket, &event);
            history.push(event);
        }
    }
    let stored: Vec<(&str, u32, String)> = history
        .iter()
        .map(|event| {
            (
                event.event_type(),
                event.schema_version(),
                event.to_payload_json(),
            )
        })
        .collect();
    let mut decoded = 0u64;
    let started = Instant::now();
    while started.elapsed() < MEASURE_TIME_MIN {
        for _ in 0..1_000 {
            let mut ticket = Ticket::initial();
            for (event_type, version, payload) in &stored {
                let event = Event::from_stored(event_type, *version, black_box(payload))
                    .expect("stored events decode");
                ticket = evolve(ticket, &event);
            }
            black_box(ticket);
            decoded += stored.len() as u64;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{:<34} {:>12.0} events/s ({decoded} events in {seconds:.2} s)",
        "from_stored+evolve, replay",
        decoded as f64 / seconds
    );
}
