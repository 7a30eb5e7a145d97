//! Benchmark of the SLA source, the state a leader holds: 500,000 tickets whose two SLA clocks
//! (first response, resolution) make 1,000,000 active timers, folded from their events in
//! memory. Prints the fold rate, the resident memory per active timer (ticket clocks and timers
//! together; target ≤ 256 bytes) and the CPU time per event. Run with
//! `cargo bench -p sla-scheduler --bench source`. It measures and prints; it never asserts.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on stdout"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use domain::{
    BlueprintRef, Channel, CustomerId, Event, Priority, SlaApplied, SlaTarget, StateCategory,
    TicketCreated, TicketCreatedPii, TicketId, TicketNumber,
};
use jiff::{SignedDuration, Timestamp};
use sla_scheduler::{Policies, SlaConfig, SlaSource, TimerSource};
use uuid::Uuid;

const TICKETS: u64 = 500_000;

fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// CPU time of this thread so far, in nanoseconds (Linux).
fn cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let config: SlaConfig = toml::from_str(
        "version = 1\n[[policies]]\nid = \"bench\"\ntargets.first_response = \"60m\"\ntargets.resolution = \"720h\"\n",
    )
    .expect("bench policies parse");
    let policies = Arc::new(Policies::compile(&config).expect("bench policies compile"));
    let start: Timestamp = "2026-11-02T09:00:00Z".parse().expect("a timestamp");
    let before = resident_bytes();
    let (began, cpu_before) = (Instant::now(), cpu_nanos());
    let mut source = SlaSource::new(policies);
    for n in 0..TICKETS {
        let ticket_id = TicketId(Uuid::from_u128(0xbe4c_0000_0000 + u128::from(n)));
        let at = start + SignedDuration::from_secs((n * 2_592_000 / TICKETS) as i64);
        let created = Event::TicketCreated(TicketCreated {
            ticket_id,
            number: TicketNumber(n + 1),
            channel: Channel::Email,
            requester: CustomerId(Uuid::from_u128(0xc000 + u128::from(n % 5000))),
            ticket_type: "question".to_owned(),
            priority: Priority::Normal,
            tags: vec![],
            fields: BTreeMap::new(),
            blueprint: BlueprintRef {
                id: "general".to_owned(),
                version: 1,
            },
            state: "new".to_owned(),
            category: StateCategory::New,
            pii: TicketCreatedPii {
                subject: String::new(),
                description: String::new(),
                requester_name: None,
                requester_email: None,
            },
        });
        let applied = Event::SlaApplied(SlaApplied {
            policy_id: "bench".to_owned(),
            policy_version: 1,
            targets: vec![
                SlaTarget {
                    metric: "first_response".to_owned(),
                    due_at: at + SignedDuration::from_mins(60),
                },
                SlaTarget {
                    metric: "resolution".to_owned(),
                    due_at: at + SignedDuration::from_hours(720),
                },
            ],
            reason: "policy bench (fallback)".to_owned(),
        });
        source.observe_event(ticket_id, &created, at);
        source.observe_event(ticket_id, &applied, at);
    }
    let elapsed = began.elapsed();
    let cpu = cpu_nanos().saturating_sub(cpu_before);
    let grown = resident_bytes().saturating_sub(before);
    let timers = source.timers() as u64;
    let events = 2 * TICKETS;
    println!(
        "fold {events} events of {TICKETS} tickets: {:.0} ms ({:.0} events/s; CPU {:.2} µs per event)",
        elapsed.as_secs_f64() * 1000.0,
        events as f64 / elapsed.as_secs_f64(),
        cpu as f64 / 1000.0 / events as f64
    );
    println!(
        "memory: {timers} active timers, {} bytes per timer ({} bytes per ticket; resident set growth)",
        grown / timers.max(1),
        grown / TICKETS
    );
    println!(
        "held by structure: {} bytes per timer; sizes: a packed ticket {} bytes + {} bytes per started clock (the engine's working form, unpacked for one event: {} bytes)",
        source.held_bytes() as u64 / timers.max(1),
        size_of::<sla_scheduler::packed::PackedTicket>(),
        size_of::<sla_scheduler::packed::PackedClock>(),
        size_of::<sla_scheduler::engine::TicketSla>(),
    );
    assert_eq!(source.tickets() as u64, TICKETS);
}
