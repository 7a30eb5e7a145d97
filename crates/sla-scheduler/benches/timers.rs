//! Benchmark of the scheduler core with 1,000,000 active timers: memory per timer (resident
//! set growth), time to load them, and how fast a burst of 100,000 timers due in the same second
//! is taken out in due order. Run with `cargo bench -p sla-scheduler`. It measures and prints; it
//! never asserts a time.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on stdout"
)]

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use sla_scheduler::{TimerId, TimerKind, Timers};
use uuid::Uuid;

const TIMERS: u64 = 1_000_000;
const BURST: u64 = 100_000;

/// Resident memory in bytes, from /proc (Linux); 0 elsewhere.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn main() {
    let start: Timestamp = "2026-11-24T00:00:00Z".parse().expect("a timestamp");
    let before = resident_bytes();
    let began = Instant::now();
    let mut timers = Timers::default();
    for n in 0..TIMERS {
        // The first BURST timers are due in the same second; the rest spread over a month.
        let due = if n < BURST {
            start + SignedDuration::from_millis((n % 1000) as i64)
        } else {
            start + SignedDuration::from_secs(60 + (n * 2_591_940 / TIMERS) as i64)
        };
        let kind = if n % 2 == 0 {
            TimerKind::Warning
        } else {
            TimerKind::Breach
        };
        timers.schedule(
            TimerId {
                ticket: Uuid::from_u128(u128::from(n) * 7919),
                clock: 0,
                kind,
            },
            due,
        );
    }
    let load = began.elapsed();
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "load {TIMERS} timers: {:.0} ms ({:.0} timers/s)",
        load.as_secs_f64() * 1000.0,
        TIMERS as f64 / load.as_secs_f64()
    );
    println!(
        "memory: {} bytes per timer (resident set growth)",
        grown / TIMERS
    );
    let now = start + SignedDuration::from_secs(1);
    let began = Instant::now();
    let mut fired = 0;
    loop {
        let batch = timers.fire_due(now);
        if batch.is_empty() {
            break;
        }
        fired += batch.len();
    }
    let burst = began.elapsed();
    println!(
        "burst: {fired} timers due in one second taken out in {:.1} ms ({:.0} timers/s); next deadline {:?}",
        burst.as_secs_f64() * 1000.0,
        fired as f64 / burst.as_secs_f64(),
        timers.next_deadline()
    );
}
