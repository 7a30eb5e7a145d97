//! The HTTP/JSON command and query API (axum): the only crate that knows HTTP and JSON DTOs. It
//! owns authentication, problem+json errors, idempotency keys, `If-Match` concurrency, the
//! OpenAPI document and the live event feed; commands go through the domain's decider and the
//! store, queries through the projections.
//!
//! Filled in by the API issue; until then the crate holds no code.
