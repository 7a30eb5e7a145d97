//! Routing tests: the `[routing]` config check (`config`), the engine's strategies and narrowing as data-driven snapshots (`engine`),
//! round-robin fairness as a property (`fairness`), the sentiment detector measured on the
//! labelled set (`sentiment`), and the process manager on real stores, two nodes on one
//! PostgreSQL included (`manager`).

mod config;
mod engine;
mod fairness;
mod manager;
mod sentiment;
mod support;
