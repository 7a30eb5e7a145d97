//! Tests of the SLA engine and scheduler: policy configuration (`policy`), the engine driven
//! through the real decider with a manual clock in minutes (`engine`). The driver against real stores, and the
//! simulation with its brute-force oracle, are in the workspace's `tests` (`tests/it/sla.rs`).

mod engine;
mod policy;
mod support;
