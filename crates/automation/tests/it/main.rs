//! Tests of the automation crate, by boundary: configuration errors, trigger evaluation and
//! planning, macros, time-based rules, webhooks (signed delivery and retries, TLS, one
//! dispatcher per cluster).

mod config;
mod manager;
mod support;
mod timed;
mod triggers;
mod webhooks;
mod webhooks_election;
mod webhooks_tls;
