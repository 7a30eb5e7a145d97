//! The SLA engine and the scheduler that runs time in Docket.
//!
//! - `policy`: SLA policies from `docket.toml` (calendars, conditions, targets, pauses,
//!   warnings, escalations), checked and compiled.
//! - `engine`: the pure fold of one ticket's events into its metric clocks, and the commands the
//!   log still lacks (apply, recompute, warning, breach).
//! - `packed`: the compact form a leader keeps each ticket's SLA state in between events.
//! - `timers`: the sans-IO timer core (`schedule`, `cancel`, `next_deadline()`, `fire_due(now)`
//!   in due order and bounded batches, deterministic command ids).
//! - `source`: `TimerSource`, a source of due work fed by the log; `SlaSource` is the SLA one,
//!   time-based automations are another.
//! - `driver`: the thin tokio driver that follows the log, sleeps until the next deadline and
//!   issues due work through a `CommandSink`; `leader`: who runs it (PostgreSQL advisory lock).
//!
//! Exactly once, across restarts and nodes: state is rebuilt from the log whenever a node
//! becomes leader, and every fire's command id is derived from what is fired and its due time.

pub mod driver;
pub mod engine;
pub mod leader;
pub mod packed;
pub mod policy;
pub mod source;
pub mod timers;

pub use driver::{
    BatchOutcome, Clock, CommandSink, Driver, Fired, Issued, SchedulerStats, Settling, SinkError,
};
pub use leader::{Leader, Leadership, SCHEDULER_LOCK};
pub use policy::{Metric, Policies, PolicyError, SlaConfig};
pub use source::{SlaSource, TimerSource, Work};
pub use timers::{
    command_id, ticket_ordered_id, Due, TimerId, TimerKey, TimerKind, Timers, FIRE_BATCH_MAX,
};
