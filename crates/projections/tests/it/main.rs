//! Integration tests of the projections crate against real databases (SQLite always,
//! PostgreSQL when `DOCKET_TEST_DATABASE_URL` is set): the runner's catch-up, live following,
//! read-your-writes, exactly-once checkpointing across crashes, and rebuild.

mod determinism;
mod runner;
