//! The HTTP API through its router (`tower::ServiceExt::oneshot`), on every backend: routes,
//! roles, errors as problem+json, idempotency, concurrency and read-your-writes.
//!
//! - `support`: a test server with a manual clock, and a client that renders responses.
//! - `flows`: tickets from creation to resolution, as the roles that may do each step.
//! - `read`: the ticket list, the agent's next ticket and reports, from the read models.
//! - `access`: customers see only their own tickets and nothing internal; revoked tokens stop
//!   working; health, readiness and metrics.
//! - `errors`: every problem+json status, provoked as a client would, with its headers.
//! - `feed`: the global feed's pages and its live, resumable Server-Sent Events stream.
//! - `roles`: every route against every role.
//! - `agents`: agent commands on a node whose directory lags the log.
//! - `macros`: `apply_macro` applies a configured macro as one atomic command.
//! - `webhooks`: subscriptions and the delivery log over the admin API.
//! - `timed`: time-based automations run by the scheduler in the background, as serve runs
//!   them.
//! - `openapi`: `docs/openapi.json` is the generated document, and real traffic matches it.

mod access;
mod agents;
mod errors;
mod feed;
mod flows;
mod macros;
mod metrics;
mod openapi;
mod read;
mod roles;
mod sla;
mod support;
mod timed;
mod webhooks;
