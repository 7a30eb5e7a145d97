//! Routing decisions per second with 1,000 agents and 100,000 queued tickets, beside the raw
//! limit measured in the same run: the bare loop over the same candidate set (each member's
//! presence and load read, nothing decided or recorded). Wall clock and CPU time per decision
//! are both printed, because the machine may be shared.
//!
//! `cargo bench -p routing --bench routing` (`-- --quick` for a smaller run).

use std::time::Instant;

use domain::{
    AgentEvent, AgentId, AgentPii, AgentPresenceChanged, AgentProfileUpdated, AgentRegistered,
    BlueprintRef, Channel, CustomerId, Event, Presence, Priority, RoutingStrategy, StateCategory,
    TeamAssigned, TeamId, TicketCreated, TicketCreatedPii, TicketId, TicketNumber,
};
use routing::{Engine, RoutingConfig, TeamConfig};
use store::Record;
use uuid::Uuid;

fn record(
    position: u64,
    stream: String,
    version: u64,
    event_type: &str,
    schema_version: u32,
    payload: String,
) -> Record {
    let at = jiff::Timestamp::from_second(1_714_953_600 + position as i64).unwrap();
    Record {
        position,
        category: stream.split('-').next().unwrap().to_owned(),
        stream_id: stream,
        stream_version: version,
        event_id: Uuid::from_u128(u128::from(position)),
        event_type: event_type.to_owned(),
        schema_version,
        payload,
        metadata: "{}".to_owned(),
        command_id: Uuid::from_u128(u128::from(position)),
        recorded_at: at,
        stream_hash: [0; 32],
        global_hash: [0; 32],
    }
}

/// CPU time of this thread so far, in nanoseconds (Linux), for figures on a shared machine.
fn cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn build(strategy: RoutingStrategy, agents: u64, tickets: u64, capacity: u32) -> (Engine, TeamId) {
    let team = TeamId(Uuid::from_u128(0x7ea0_0000_0001));
    let config = RoutingConfig {
        teams: [(
            "Support".to_owned(),
            TeamConfig {
                strategy,
                ..TeamConfig::default()
            },
        )]
        .into_iter()
        .collect(),
        ..RoutingConfig::default()
    };
    let mut engine = Engine::new(config);
    let mut position = 0;
    let mut push = |engine: &mut Engine,
                    stream: String,
                    version: u64,
                    event_type: &str,
                    schema: u32,
                    payload: String| {
        position += 1;
        engine.apply(&record(
            position, stream, version, event_type, schema, payload,
        ));
    };
    push(
        &mut engine,
        format!("team-{}", team.0),
        1,
        "TeamCreated",
        1,
        serde_json::json!({"team_id": team, "name": "Support"}).to_string(),
    );
    for n in 0..agents {
        let id = AgentId(Uuid::from_u128(0xa9e0_0000_0000 + u128::from(n)));
        let stream = format!("agent-{}", id.0);
        let events = [
            AgentEvent::AgentRegistered(AgentRegistered {
                agent_id: id,
                teams: vec![team],
                pii: AgentPii {
                    name: format!("agent {n}"),
                    email: None,
                },
            }),
            AgentEvent::AgentProfileUpdated(AgentProfileUpdated {
                teams: vec![team],
                skills: vec![],
                languages: vec![],
                capacity,
                weighted: false,
            }),
            AgentEvent::AgentPresenceChanged(AgentPresenceChanged {
                from: Presence::Offline,
                to: Presence::Online,
                reason: None,
            }),
        ];
        for (version, event) in events.iter().enumerate() {
            push(
                &mut engine,
                stream.clone(),
                version as u64 + 1,
                event.event_type(),
                1,
                event.to_payload().to_string(),
            );
        }
    }
    for n in 0..tickets {
        let id = TicketId(Uuid::from_u128(0x71c4_0000_0000_0000 + u128::from(n)));
        let events = [
            Event::TicketCreated(TicketCreated {
                ticket_id: id,
                number: TicketNumber(n),
                channel: Channel::Web,
                requester: CustomerId(Uuid::from_u128(u128::from(n % 5_000))),
                ticket_type: "question".to_owned(),
                priority: Priority::ALL[(n % 4) as usize],
                tags: vec![],
                fields: Default::default(),
                blueprint: BlueprintRef {
                    id: "general".to_owned(),
                    version: 1,
                },
                state: "new".to_owned(),
                category: StateCategory::New,
                pii: TicketCreatedPii {
                    subject: "Where is my order?".to_owned(),
                    description: String::new(),
                    requester_name: None,
                    requester_email: None,
                },
            }),
            Event::TeamAssigned(TeamAssigned {
                from: None,
                to: team,
                reason: Some("bench".to_owned()),
            }),
        ];
        for (version, event) in events.iter().enumerate() {
            push(
                &mut engine,
                id.stream_id(),
                version as u64 + 1,
                event.event_type(),
                event.schema_version(),
                event.to_payload_json(),
            );
        }
    }
    (engine, team)
}

/// The bare decision over the candidate set: members as `(online, load, capacity)`, least
/// loaded reads every one, round robin walks from a pointer to the first with room. No queue,
/// no narrowing, no record: what a decision cannot go below. Returns (per second, µs wall,
/// µs cpu) per decision.
fn raw_candidate_scan(
    agents: usize,
    capacity: u32,
    decisions: u64,
    strategy: RoutingStrategy,
) -> (f64, f64, Option<f64>) {
    let mut members: Vec<(bool, u32, u32)> = vec![(true, 0, capacity); agents];
    let mut pointer = 0usize;
    let started = Instant::now();
    let cpu_started = cpu_nanos();
    for _ in 0..decisions {
        let chosen = match strategy {
            RoutingStrategy::LeastLoaded => {
                let mut best: Option<(usize, u32)> = None;
                for (index, (online, load, capacity)) in members.iter().enumerate() {
                    if *online && load < capacity {
                        let spare = capacity - load;
                        if best.is_none_or(|(_, best)| spare > best) {
                            best = Some((index, spare));
                        }
                    }
                }
                best.map(|(index, _)| index)
            }
            RoutingStrategy::RoundRobin => (1..=agents)
                .map(|offset| (pointer + offset) % agents)
                .find(|index| members[*index].0 && members[*index].1 < members[*index].2),
        };
        let chosen = std::hint::black_box(chosen).expect("capacity fits every decision");
        members[chosen].1 += 1;
        pointer = chosen;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_started
        .zip(cpu_nanos())
        .map(|(a, b)| (b - a) as f64 / 1e3 / decisions as f64);
    (decisions as f64 / wall, wall * 1e6 / decisions as f64, cpu)
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (agents, tickets) = if quick {
        (1_000, 20_000)
    } else {
        (1_000, 100_000)
    };
    let capacity = u32::try_from(tickets / agents).unwrap();
    for strategy in [RoutingStrategy::RoundRobin, RoutingStrategy::LeastLoaded] {
        let setup = Instant::now();
        let (mut engine, team) = build(strategy, agents, tickets, capacity);
        let setup = setup.elapsed();
        assert_eq!(engine.queued(team), tickets as usize);
        let decisions = tickets;
        // Raw limit: per decision, the bare loop over the team's candidates that least loaded
        // needs (every member read once) and round robin's first candidate (one member).
        let raw = raw_candidate_scan(agents as usize, capacity, decisions, strategy);
        let started = Instant::now();
        let cpu_started = cpu_nanos();
        let mut made = 0u64;
        while let Some(assignment) = engine.next_assignment(team) {
            assert!(engine.assume(&assignment));
            made += 1;
        }
        let wall = started.elapsed();
        let cpu = cpu_started.zip(cpu_nanos()).map(|(a, b)| b - a);
        assert_eq!(made, decisions, "every queued ticket fits the capacity");
        let per_second = made as f64 / wall.as_secs_f64();
        #[allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
        {
            println!(
                "{}: {agents} agents, {tickets} queued tickets (setup {:.1} s)",
                strategy.as_str(),
                setup.as_secs_f64()
            );
            println!(
                "  routing decisions: {made} in {:.3} s = {:.0}/s, {:.2} µs wall, {} per decision",
                wall.as_secs_f64(),
                per_second,
                wall.as_secs_f64() * 1e6 / made as f64,
                cpu.map_or("cpu n/a".to_owned(), |cpu| format!(
                    "{:.2} µs cpu",
                    cpu as f64 / 1e3 / made as f64
                )),
            );
            println!(
                "  raw limit (bare scan of the same candidates): {:.0}/s, {:.3} µs wall, {} per decision",
                raw.0, raw.1, raw.2.map_or("cpu n/a".to_owned(), |cpu| format!("{cpu:.3} µs cpu")),
            );
        }
    }
}
