//! Routing: who gets a ticket, and how urgent it is.
//!
//! `engine` is the pure routing model, a fold over the log with the strategies on top;
//! `language` and `sentiment` read a ticket's text; `priority` holds the automatic priority
//! rules; `config` is the `[routing]` section of `docket.toml`; `manager` is the process
//! manager that follows the log and issues the commands the engine plans. Only `manager` does
//! I/O. See docs/routing.md.

pub mod config;
pub mod engine;
pub mod language;
pub mod manager;
pub mod priority;
pub mod sentiment;

pub use config::{RoutingConfig, TeamConfig};
pub use engine::{Action, Assignment, Engine};
pub use manager::{Manager, ManagerError, Now, RoundOutcome, RoutingStats};
