//! SLA timers: a sans-IO core that learns due times from the SLA projection and answers
//! `next_deadline()` and `fire_due(now)` with what is due, and a thin tokio driver that sleeps
//! until the next deadline and issues the commands through the domain. Exactly once, across
//! restarts and nodes: a fire's command id is derived from the timer and its due time.
//!
//! Today the crate holds the core (`timers`); the driver, leader election and the policy
//! engine come with the SLA issue.

pub mod timers;

pub use timers::{command_id, Due, TimerId, TimerKind, Timers, FIRE_BATCH_MAX};
