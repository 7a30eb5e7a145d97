//! The HTTP/JSON command and query API (axum): the only crate that knows HTTP and JSON DTOs. It
//! owns authentication and roles, problem+json errors, idempotency keys, `If-Match`
//! concurrency, rate limits, metrics and the live event feed. Commands go through the domain's
//! decider and are appended to the store; the directory of agents, teams, customers and tokens
//! is event-sourced in the same log.

mod admin;
mod agents;
mod auth;
mod body;
mod cache;
pub mod directory;
mod error;
mod feed;
mod metrics;
mod numbers;
pub mod openapi;
mod ops;
mod ratelimit;
mod read;
pub mod scheduler;
mod tickets;
mod webhooks;

use std::fmt;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use domain::BlueprintCatalog;
use jiff::Timestamp;
use serde_json::value::to_raw_value;
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use tokio::sync::watch;
use uuid::Uuid;

pub use crate::auth::Principal;
pub use crate::directory::{ApiRole, Directory, DirectoryEvent};
pub use crate::error::ApiError;
pub use crate::ratelimit::RateLimit;
pub use crate::tickets::{command_as, system_command, SystemOutcome};

/// The wall clock, injected: the binary passes the system clock, tests a manual one.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// Settings of the API that operators may change in `docket.toml`.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub rate_limit: RateLimit,
    /// The longest a query with `?min_position=` waits for the read side to catch up.
    pub read_wait_max: Duration,
    /// Macros (applied with `apply_macro`) and the rest of `[automation]`.
    pub automation: Arc<automation::Automation>,
    /// The key webhook secrets derive from (`DOCKET_WEBHOOK_SIGNING_KEY`); webhooks are off
    /// without it.
    pub webhook_signing_key: Option<Arc<[u8]>>,
    /// Whether the directory (agents, teams, customers, tokens) follows the log after start.
    /// Always on in service; off only in tests that need a node whose directory lags the log.
    pub directory_follows_log: bool,
    /// The trigger manager's counters, shown in `/metrics` (`docket serve` passes the ones its
    /// manager counts into; none when no trigger is configured).
    pub trigger_stats: Option<Arc<automation::ManagerStats>>,
    /// The webhook dispatcher's counters, shown in `/metrics` (none when webhooks are off).
    pub webhook_stats: Option<Arc<automation::DispatcherStats>>,
    /// The routing manager's counters, shown in `/metrics` (none when routing is off).
    pub routing_stats: Option<Arc<routing::RoutingStats>>,
    /// Where the read models fold (`projections::RunnerConfig::fold_nice`): `docket serve`
    /// gives them a thread of their own at a lower priority; by default (tests) they are tasks
    /// of the caller's runtime.
    pub fold_nice: Option<i32>,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            rate_limit: RateLimit::default(),
            read_wait_max: Duration::from_secs(5),
            automation: Arc::default(),
            webhook_signing_key: None,
            directory_follows_log: true,
            trigger_stats: None,
            webhook_stats: None,
            routing_stats: None,
            fold_nice: None,
        }
    }
}

/// Everything a request handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    blueprints: BlueprintCatalog,
    clock: Arc<dyn Clock>,
    config: ApiConfig,
    directory: RwLock<Directory>,
    directory_position: watch::Sender<u64>,
    numbers: numbers::NumberAllocator,
    tickets: cache::TicketCache,
    ticket_turns: cache::TicketLocks,
    limiter: ratelimit::Limiter,
    metrics: metrics::Metrics,
    projections: projections::Projections,
    sla: std::sync::OnceLock<scheduler::SlaRuntime>,
}

impl AppState {
    /// Catches the directory up with the log, then keeps it current in the background.
    pub async fn start(
        store: Store,
        blueprints: BlueprintCatalog,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
    ) -> Result<AppState, store::StoreError> {
        let mut directory = Directory::default();
        let mut subscription = store.subscribe(0);
        loop {
            let records = subscription.poll_available().await?;
            if records.is_empty() {
                break;
            }
            records.iter().for_each(|record| directory.apply(record));
        }
        let (directory_position, _) = watch::channel(directory.position);
        let directory_follows_log = config.directory_follows_log;
        let runner = projections::RunnerConfig {
            fold_nice: config.fold_nice,
            ..projections::RunnerConfig::default()
        };
        let projections = projections::Projections::start(store.clone(), runner)
            .await
            .map_err(|error| store::StoreError::Database {
                message: format!("starting the read models: {error}"),
            })?;
        let shared = Arc::new(Shared {
            projections,
            limiter: ratelimit::Limiter::new(config.rate_limit),
            store,
            blueprints,
            clock,
            config,
            directory: RwLock::new(directory),
            directory_position,
            numbers: numbers::NumberAllocator::default(),
            tickets: cache::TicketCache::default(),
            ticket_turns: cache::TicketLocks::default(),
            metrics: metrics::Metrics::default(),
            sla: std::sync::OnceLock::new(),
        });
        if directory_follows_log {
            tokio::spawn(follow_directory(Arc::downgrade(&shared), subscription));
        }
        Ok(AppState { inner: shared })
    }

    /// The read models, for status, snapshots and rebuilds.
    pub fn projections(&self) -> &projections::Projections {
        &self.inner.projections
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn directory(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        self.inner
            .directory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits (bounded) until the directory has applied `position`, for read-your-writes.
    async fn directory_caught_up(&self, position: u64) -> bool {
        let mut seen = self.inner.directory_position.subscribe();
        let caught_up = tokio::time::timeout(
            self.inner.config.read_wait_max,
            seen.wait_for(|applied| *applied >= position),
        )
        .await
        .is_ok_and(|result| result.is_ok());
        caught_up
    }

    /// Appends one directory event (admin actions and the bootstrap token).
    pub async fn record_directory_event(
        &self,
        event: &DirectoryEvent,
        actor: serde_json::Value,
    ) -> Result<store::AppendOutcome, ApiError> {
        let stream = StreamId::new(event.stream_id())
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        let command_id = Uuid::now_v7();
        let metadata = serde_json::json!({
            "actor": actor,
            "command_id": command_id,
            "correlation_id": command_id,
            "at": self.now(),
        });
        let new_event = NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event.event_type().to_owned(),
            schema_version: 1,
            payload: to_raw_value(&event.payload())
                .map_err(|error| ApiError::Internal(error.to_string()))?,
            metadata: to_raw_value(&metadata)
                .map_err(|error| ApiError::Internal(error.to_string()))?,
        };
        let outcome = self
            .inner
            .store
            .append(&stream, ExpectedVersion::Any, vec![new_event], command_id)
            .await?;
        self.directory_caught_up(outcome.last_position).await;
        Ok(outcome)
    }

    /// Issues a token directly (the bootstrap admin, the demo workspace) and returns its secret.
    pub async fn issue_token(
        &self,
        role: ApiRole,
        subject: Option<Uuid>,
        label: &str,
    ) -> Result<String, ApiError> {
        let secret = auth::new_token_secret();
        let event = DirectoryEvent::TokenIssued {
            token_id: Uuid::now_v7(),
            role,
            subject,
            token_sha256: directory::hash_token(&secret),
            label: label.to_owned(),
        };
        self.record_directory_event(
            &event,
            serde_json::json!({"role": "system", "id": "docket"}),
        )
        .await?;
        Ok(secret)
    }

    /// How many teams the directory knows.
    pub fn team_count(&self) -> usize {
        self.directory().teams.len()
    }

    /// Makes sure an admin token exists. With `token` given (from `DOCKET_ADMIN_TOKEN`), that
    /// token becomes valid if it is not yet; without, a new one is made when no admin token is
    /// live. Returns a newly made token, to be shown once.
    pub async fn ensure_admin_token(
        &self,
        token: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        let (secret, fresh) = match token {
            Some(token) => {
                if token.len() < auth::TOKEN_CHARS_MIN {
                    return Err(ApiError::BadRequest(format!(
                        "DOCKET_ADMIN_TOKEN must be at least {} characters",
                        auth::TOKEN_CHARS_MIN
                    )));
                }
                if self
                    .directory()
                    .has_token_hash(&directory::hash_token(token))
                {
                    return Ok(None);
                }
                (token.to_owned(), false)
            }
            None => {
                if self.directory().live_admin_tokens() > 0 {
                    return Ok(None);
                }
                (auth::new_token_secret(), true)
            }
        };
        let event = DirectoryEvent::TokenIssued {
            token_id: Uuid::now_v7(),
            role: ApiRole::Admin,
            subject: None,
            token_sha256: directory::hash_token(&secret),
            label: "bootstrap admin".to_owned(),
        };
        self.record_directory_event(
            &event,
            serde_json::json!({"role": "system", "id": "bootstrap"}),
        )
        .await?;
        Ok(fresh.then_some(secret))
    }
}

async fn follow_directory(shared: Weak<Shared>, mut subscription: store::Subscription) {
    loop {
        let next = subscription.next().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match next {
            Ok(record) => {
                // Whatever else is at hand is applied under the same lock.
                let more = subscription.take_buffered().unwrap_or_else(|error| {
                    tracing::warn!(%error, "directory follower: reading the log");
                    Vec::new()
                });
                let mut directory = shared
                    .directory
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                for record in std::iter::once(&record).chain(&more) {
                    if record.position > directory.position {
                        directory.apply(record);
                    }
                }
                let position = directory.position;
                drop(directory);
                shared.directory_position.send_replace(position);
            }
            Err(error) => {
                tracing::warn!(%error, "directory follower: reading the log failed; retrying");
                drop(shared);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route(
            "/admin/agents",
            post(agents::create_agent).get(admin::list_agents),
        )
        .route("/admin/agents/{agent_id}", post(agents::update_agent))
        .route(
            "/agents/{agent_id}/presence",
            axum::routing::put(agents::change_presence),
        )
        .route(
            "/admin/teams",
            post(admin::create_team).get(admin::list_teams),
        )
        .route(
            "/admin/customers",
            post(admin::create_customer).get(admin::list_customers),
        )
        .route(
            "/admin/tokens",
            post(admin::create_token).get(admin::list_tokens),
        )
        .route("/admin/tokens/{token_id}/revoke", post(admin::revoke_token))
        .route(
            "/admin/webhooks",
            post(webhooks::create_webhook).get(webhooks::list_webhooks),
        )
        .route(
            "/admin/webhooks/{subscription_id}/unsubscribe",
            post(webhooks::unsubscribe_webhook),
        )
        .route(
            "/admin/webhooks/{subscription_id}/deliveries",
            get(webhooks::webhook_deliveries),
        )
        .route(
            "/tickets",
            post(tickets::create_ticket).get(read::list_tickets),
        )
        .route("/queues/next", get(read::next_ticket))
        .route("/reports/summary", get(read::report))
        .route("/tickets/{ticket_id}", get(tickets::get_ticket))
        .route("/tickets/{ticket_id}/commands", post(tickets::post_command))
        .route("/tickets/{ticket_id}/events", get(tickets::ticket_events))
        .route("/events", get(feed::events))
        .route("/events/stream", get(feed::event_stream))
        .route("/audit/verify", get(feed::audit_verify))
        .route("/openapi.json", get(openapi::openapi_json));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/v1", v1)
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::observe,
        ))
        .with_state(state)
}
