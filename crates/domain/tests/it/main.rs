//! Integration tests for the ticket domain, one binary. Read this as a table of contents:
//!
//! - `decider`: given/when/then for every command and every rejection;
//! - `agents`: the agent aggregate's commands, rejections and golden event files
//!   (`tests/golden-agent`);
//! - `limits`: every `*_MAX` bound, accepted at the bound and rejected past it;
//! - `blueprints`: loading, validation errors with file and line, versioning, and the
//!   exhaustive transition matrix of each shipped blueprint;
//! - `golden`: every event's JSON pinned in `tests/golden`, read back through the upcasters;
//! - `properties`: random command sequences against the decider's invariants;
//! - `json`: commands and rejections as the HTTP API sees them;
//! - `tidy`: project rules (module comments, no clock or randomness in `src`).
//!
//! Snapshots refresh with `UPDATE_EXPECT=1`, golden files with `UPDATE_GOLDEN=1`.

mod agents;
mod blueprints;
mod decider;
mod golden;
mod json;
mod limits;
mod properties;
mod support;
mod tidy;
