//! Tests of the automation crate, by boundary: configuration errors, trigger evaluation and
//! planning, macros.

mod config;
mod manager;
mod support;
mod timed;
mod triggers;
mod webhooks;
