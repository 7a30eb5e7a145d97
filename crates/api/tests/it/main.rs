//! The HTTP API through its router (`tower::ServiceExt::oneshot`), on every backend: routes,
//! roles, errors as problem+json, idempotency, concurrency and read-your-writes.
//!
//! - `support`: a test server with a manual clock, and a client that renders responses.
//! - `flows`: tickets from creation to resolution, as the roles that may do each step.
//! - `openapi`: `docs/openapi.json` is the generated document, and real traffic matches it.

mod flows;
mod openapi;
mod support;
