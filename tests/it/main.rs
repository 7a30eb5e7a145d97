//! Docket's end-to-end tests: the whole system, or a whole component under real load, on every
//! backend (SQLite always; PostgreSQL when `DOCKET_TEST_DATABASE_URL` is set, always under CI).
//! Randomized tests print their seed; `DOCKET_SEED=<seed>` replays one, and
//! `DOCKET_SLOW_TESTS=1` runs the larger versions.
//!
//! - `stress`: many writers on several store instances, subscribers that start early, late and
//!   mid-way; every subscriber sees exactly the final log, and every acknowledgement is true.
//! - `crash`: a writer process killed with SIGKILL, three times over; everything it acknowledged
//!   is durable, no append is torn, the chains verify, and the store carries on.
//! - `sla`: the SLA scheduler with the real driver, decider and store: exactly once after
//!   restarts, a crash mid-fire, three hours of downtime, two nodes, a leader failover.
//! - `sla_sim`: a seeded simulation of tickets, pauses, priority changes, clock jumps, crashes
//!   and leader changes, every warning and breach checked against a minute-by-minute oracle.
//! - `routing`: routing through the API: agents come online, tickets given to a team are
//!   assigned by the routing process manager, an agent's vacation hands theirs to the others.
//! - `tidy`: project rules: dependency arrows, a pure domain, a `//!` header on every file.

mod crash;
mod routing;
mod sla;
mod sla_sim;
mod stress;
mod tidy;

/// Prints the seed where a failing test's output shows it.
#[allow(
    clippy::print_stderr,
    reason = "the seed must reach whoever reads the failure"
)]
pub fn announce_seed(test: &str, seed: u64) {
    eprintln!(
        "{test}: seed {seed}; replay with {}={seed}",
        tests::SEED_VAR
    );
}

/// Progress lines (timings) that `cargo test -- --nocapture` shows.
#[allow(
    clippy::print_stderr,
    reason = "timings are for whoever runs the tests by hand"
)]
pub fn report(line: &str) {
    eprintln!("{line}");
}
