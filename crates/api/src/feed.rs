//! The log itself, for analysts and auditors: the global event feed (paged JSON and live
//! Server-Sent Events, resumable with `Last-Event-ID`) and chain verification.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use store::Record;

use crate::auth::Principal;
use crate::body::ApiQuery;
use crate::directory::ApiRole;
use crate::error::ApiError;
use crate::AppState;

/// Most events one page of the feed returns.
pub const FEED_LIMIT_MAX: usize = 1000;
const FEED_ROLES: &[ApiRole] = &[ApiRole::Admin, ApiRole::Auditor, ApiRole::Analyst];

/// A record as JSON; `full` adds metadata and hashes (never shown to customers).
pub fn record_json(record: &Record, full: bool) -> Value {
    let mut value = json!({
        "position": record.position,
        "stream_id": record.stream_id,
        "stream_version": record.stream_version,
        "event_id": record.event_id,
        "type": record.event_type,
        "schema_version": record.schema_version,
        "recorded_at": record.recorded_at,
        "data": serde_json::from_str::<Value>(&record.payload).unwrap_or(Value::Null),
    });
    if full {
        value["metadata"] = serde_json::from_str::<Value>(&record.metadata).unwrap_or(Value::Null);
        value["command_id"] = json!(record.command_id);
        value["stream_hash"] = json!(store::hash::hex(&record.stream_hash));
        value["global_hash"] = json!(store::hash::hex(&record.global_hash));
    }
    value
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    #[serde(default)]
    pub after: u64,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /v1/events?after=&limit=`: the global feed, in position order.
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require(FEED_ROLES)?;
    let limit = query.limit.unwrap_or(100).clamp(1, FEED_LIMIT_MAX);
    let records = state.store().read_all(query.after, limit).await?;
    let next_after = records.last().map_or(query.after, |record| record.position);
    let events: Vec<Value> = records
        .iter()
        .map(|record| record_json(record, true))
        .collect();
    Ok(Json(json!({ "events": events, "next_after": next_after })))
}

/// `GET /v1/events/stream?after=`: the same feed, live, as Server-Sent Events whose ids are
/// positions; a reconnecting client sends `Last-Event-ID` and loses nothing.
pub async fn event_stream(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    principal.require(FEED_ROLES)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok());
    let after = resume.unwrap_or(query.after);
    let subscription = state.store().subscribe(after);
    let guard = state.inner.metrics.sse_client();
    let events = stream::unfold(
        (subscription, guard),
        |(mut subscription, guard)| async move {
            loop {
                match subscription.next().await {
                    Ok(record) => {
                        let event = SseEvent::default()
                            .id(record.position.to_string())
                            .event(record.event_type.clone())
                            .data(record_json(&record, true).to_string());
                        return Some((Ok(event), (subscription, guard)));
                    }
                    // The store is unreachable for a moment: keep the client, try again.
                    Err(error) if error.is_transient() => {
                        tokio::time::sleep(Duration::from_millis(500)).await
                    }
                    Err(error) => {
                        tracing::error!(%error, "event stream stopped");
                        return None;
                    }
                }
            }
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub to: Option<u64>,
}

/// `GET /v1/audit/verify`: walks both hash chains and reports the first broken record.
pub async fn audit_verify(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<VerifyQuery>,
) -> Result<Json<store::VerifyReport>, ApiError> {
    principal.require(&[ApiRole::Admin, ApiRole::Auditor])?;
    let report = state
        .store()
        .verify(query.from.unwrap_or(1), query.to, &mut |_, _| {})
        .await?;
    Ok(Json(report))
}
