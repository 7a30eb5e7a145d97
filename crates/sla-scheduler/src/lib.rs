//! SLA timers: a sans-IO core that learns due times from the SLA projection and answers
//! `next_deadline()` and `fire_due(now)` with commands, and a thin tokio driver that sleeps until
//! the next deadline and issues them through the domain. Exactly once, across restarts and nodes.
//!
//! Filled in by the SLA issue; until then the crate holds no code.
