//! Read models of the event log: the "Q" of CQRS. It owns the pure folds that turn records into
//! queryable views (tickets, queues, agent load, SLA timers, customer history, reports) and, in a
//! separate module, the runner that feeds them from the log's subscription with checkpoints.
//!
//! Nothing here writes events: projections only read the log. The folds are filled in by the
//! projections issue; until then the crate holds no code.
