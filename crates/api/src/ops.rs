//! Operations: liveness, readiness, Prometheus metrics, and the middleware that gives every
//! request a span with a request id and records its status and latency.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tracing::Instrument;
use uuid::Uuid;

use std::sync::atomic::Ordering::Relaxed;

use crate::error::ApiError;
use crate::metrics::{load, write_lines, Line};
use crate::AppState;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// How long readiness waits for the read side before answering "not ready".
const READY_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Ready when the store answers and the directory and every read model have caught up with the
/// log (a node that just started is not ready until it has).
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let (head, _) = state.store().head().await?;
    let directory = state.directory().position;
    if directory < head && !state.directory_caught_up(head).await {
        return Err(ApiError::Unavailable(format!(
            "the directory is at {directory} of {head}"
        )));
    }
    let projections = state.inner.projections.position();
    if projections < head && !state.inner.projections.wait_for(head, READY_WAIT).await {
        return Err(ApiError::Unavailable(format!(
            "the read models are at {projections} of {head}"
        )));
    }
    Ok(Json(json!({ "status": "ready", "log_position": head })))
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let head = state.store().committed_position();
    let mut lags = vec![(
        "directory",
        head.saturating_sub(state.directory().position),
        0,
    )];
    match state.inner.projections.lags(state.now()).await {
        Ok(read_models) => lags.extend(
            read_models
                .iter()
                .map(|lag| (lag.name, lag.events, lag.seconds)),
        ),
        Err(error) => tracing::warn!(%error, "reading projection lag"),
    }
    let mut body = state.inner.metrics.render(state.store(), &lags);
    let config = &state.inner.config;
    if let Some(sla) = state.inner.sla.get() {
        write_lines(&mut body, &scheduler_lines(&sla.stats));
    }
    if let Some(stats) = &config.trigger_stats {
        write_lines(&mut body, &trigger_lines(stats, head));
    }
    if let Some(stats) = &config.routing_stats {
        write_lines(&mut body, &routing_lines(stats, head));
    }
    if let Some(stats) = &config.webhook_stats {
        write_lines(&mut body, &webhook_lines(stats));
    }
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// The SLA scheduler's lines, on a node that runs it.
fn scheduler_lines(stats: &sla_scheduler::SchedulerStats) -> [Line; 6] {
    [
        (
            "docket_scheduler_leader",
            "gauge",
            "1 when this node runs the scheduler.",
            i64::from(stats.leader.load(Relaxed)),
        ),
        (
            "docket_scheduler_timers",
            "gauge",
            "Timers the scheduler holds.",
            load(&stats.timers),
        ),
        (
            "docket_scheduler_fired_total",
            "counter",
            "Due work items issued.",
            load(&stats.fired),
        ),
        (
            "docket_scheduler_failed_total",
            "counter",
            "Due work items that failed and were retried.",
            load(&stats.failed),
        ),
        (
            "docket_scheduler_last_lag_milliseconds",
            "gauge",
            "Due to processed, of the last work item.",
            stats.last_lag_ms.load(Relaxed),
        ),
        (
            "docket_scheduler_position",
            "gauge",
            "The log position the scheduler has folded.",
            load(&stats.position),
        ),
    ]
}

/// The trigger manager's lines: its position, its lag behind `head`, its firings by outcome.
fn trigger_lines(stats: &automation::ManagerStats, head: u64) -> [Line; 9] {
    let position = stats.position.load(Relaxed);
    [
        (
            "docket_trigger_position",
            "gauge",
            "The log position the trigger manager has handled.",
            position as i64,
        ),
        (
            "docket_trigger_lag_events",
            "gauge",
            "Events the trigger manager is behind the log.",
            head.saturating_sub(position) as i64,
        ),
        (
            "docket_trigger_firings_total",
            "counter",
            "Trigger firings handled: a trigger whose conditions held on an event (counted again when a record is handled again after a retry or a restart).",
            load(&stats.firings),
        ),
        (
            "docket_trigger_appended_total",
            "counter",
            "Firings whose actions were appended (a repeat of an appended one is not counted).",
            load(&stats.appended),
        ),
        (
            "docket_trigger_unchanged_total",
            "counter",
            "Firings whose actions would have changed nothing (counted again when handled again).",
            load(&stats.unchanged),
        ),
        (
            "docket_trigger_rejected_total",
            "counter",
            "Firings that could not be planned or whose actions the domain refused (counted again when handled again).",
            load(&stats.rejected),
        ),
        (
            "docket_trigger_depth_limited_total",
            "counter",
            "Ticket events at the chain depth limit, on which no trigger was evaluated.",
            load(&stats.depth_limited),
        ),
        (
            "docket_trigger_skipped_records_total",
            "counter",
            "Records skipped after repeated failures that were not the database's.",
            load(&stats.skipped),
        ),
        (
            "docket_trigger_checkpoint_failures_total",
            "counter",
            "Checkpoint saves that failed (the next save tries again).",
            load(&stats.checkpoint_failures),
        ),
    ]
}

/// The routing manager's lines: its position, its lag behind `head`, its actions by outcome.
fn routing_lines(stats: &routing::RoutingStats, head: u64) -> [Line; 8] {
    let position = stats.position.load(Relaxed);
    [
        (
            "docket_routing_position",
            "gauge",
            "The log position the routing manager has folded.",
            position as i64,
        ),
        (
            "docket_routing_lag_events",
            "gauge",
            "Events the routing manager is behind the log.",
            head.saturating_sub(position) as i64,
        ),
        (
            "docket_routing_rounds_total",
            "counter",
            "Rounds of planning that ran to the end.",
            load(&stats.rounds),
        ),
        (
            "docket_routing_failed_rounds_total",
            "counter",
            "Rounds that failed (reading or writing the log, or a ticket that did not decode), retried after a delay.",
            load(&stats.failed_rounds),
        ),
        (
            "docket_routing_assigned_total",
            "counter",
            "Assignments this node wrote, or found written already (by a twin node, or by this node before a failed round it retried).",
            load(&stats.assigned),
        ),
        (
            "docket_routing_handed_back_total",
            "counter",
            "Tickets handed back to their team's routing because of an agent's presence.",
            load(&stats.handed_back),
        ),
        (
            "docket_routing_prioritized_total",
            "counter",
            "Priority or sentiment rule results with at least one command written (a priority change and an upset flag count once).",
            load(&stats.prioritized),
        ),
        (
            "docket_routing_conflicts_total",
            "counter",
            "Planned actions not written: the ticket moved on, or the command changed nothing or was refused.",
            load(&stats.conflicts),
        ),
    ]
}

/// The webhook dispatcher's lines.
fn webhook_lines(stats: &automation::DispatcherStats) -> [Line; 5] {
    [
        (
            "docket_webhooks_leader",
            "gauge",
            "1 when this node's webhook dispatcher delivers.",
            i64::from(stats.leader.load(Relaxed)),
        ),
        (
            "docket_webhooks_pending",
            "gauge",
            "Deliveries waiting for an attempt (on the leading node).",
            load(&stats.pending),
        ),
        (
            "docket_webhooks_delivered_total",
            "counter",
            "Attempts answered with a 2xx status.",
            load(&stats.delivered),
        ),
        (
            "docket_webhooks_failed_attempts_total",
            "counter",
            "Attempts that failed and will be tried again.",
            load(&stats.failed_attempts),
        ),
        (
            "docket_webhooks_dead_lettered_total",
            "counter",
            "Deliveries given up after their last attempt.",
            load(&stats.dead_lettered),
        ),
    ]
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such route; see /v1/openapi.json".to_owned())
}

pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
}

pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A matched path is a shared string: cloning it allocates nothing.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let request_id = Uuid::now_v7();
    let span = tracing::info_span!("request", %request_id, method = %method.as_str(), %route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    state
        .inner
        .metrics
        .observe(route, method.as_str(), status.as_u16(), started.elapsed());
    let mut id_text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id_text = request_id.hyphenated().encode_lower(&mut id_text);
    if let Ok(value) = HeaderValue::from_str(id_text) {
        response.headers_mut().insert("x-request-id", value);
    }
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        span.in_scope(|| tracing::error!(status = status.as_u16(), "request failed"));
    }
    response
}
