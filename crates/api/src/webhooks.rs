//! Admin endpoints for outbound webhooks: subscriptions (made, listed, ended) and each
//! subscription's delivery log. Subscriptions and deliveries are events in the log
//! (`automation::webhook`); these handlers record and fold them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Principal;
use crate::body::{ApiQuery, JsonBody};
use crate::directory::ApiRole;
use crate::error::ApiError;
use crate::AppState;

const ADMIN: &[ApiRole] = &[ApiRole::Admin];
const READERS: &[ApiRole] = &[ApiRole::Admin, ApiRole::Auditor];
/// Most deliveries one page of the delivery log shows.
pub const DELIVERIES_PAGE_MAX: usize = 1_000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// 1 to 64 of a-z, 0-9, `_` and `-`; triggers name it in `send_webhook`.
    pub name: String,
    /// An `https://` URL (the receiver's certificate is verified against Mozilla's roots and
    /// the server's `DOCKET_WEBHOOK_CA_FILE`), or `http://`.
    pub url: String,
    /// Event types such as `TicketCreated`, or `*` for every ticket event.
    pub event_types: Vec<String>,
}

/// A subscription as listed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Webhook {
    pub subscription_id: Uuid,
    pub name: String,
    pub url: String,
    pub event_types: Vec<String>,
}

/// A new subscription, with its signing secret (shown once; re-derivable only with the
/// server's signing key).
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedWebhook {
    pub subscription_id: Uuid,
    pub name: String,
    pub url: String,
    pub event_types: Vec<String>,
    /// The HMAC-SHA256 key of `Docket-Signature: t=…,v1=…` (see docs/automation.md).
    pub secret: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WebhookList {
    pub subscriptions: Vec<Webhook>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EndedWebhook {
    pub subscription_id: Uuid,
    #[schemars(extend("const" = true))]
    pub unsubscribed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStateView {
    Pending,
    Delivered,
    DeadLetter,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AttemptView {
    pub attempt: u32,
    #[schemars(with = "crate::openapi::Rfc3339")]
    pub at: jiff::Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeliveryView {
    pub event_id: Uuid,
    pub event_type: String,
    pub position: u64,
    /// The trigger that asked for this delivery, if one did.
    pub trigger: Option<String>,
    pub state: DeliveryStateView,
    pub attempts: Vec<AttemptView>,
    #[schemars(with = "Option<crate::openapi::Rfc3339>")]
    pub next_attempt_at: Option<jiff::Timestamp>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeliveryLogView {
    pub subscription_id: Uuid,
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries in this state.
    #[serde(default)]
    pub state: Option<DeliveryStateView>,
    /// At most this many, newest first (default and maximum 1,000).
    #[serde(default)]
    pub limit: Option<usize>,
}

fn signing_key(state: &AppState) -> Result<&[u8], ApiError> {
    state
        .inner
        .config
        .webhook_signing_key
        .as_deref()
        .ok_or_else(|| {
            ApiError::Unprocessable(
                "webhooks are off: start the server with DOCKET_WEBHOOK_SIGNING_KEY set".to_owned(),
            )
        })
}

pub async fn create_webhook(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<NewWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    principal.require(ADMIN)?;
    let key = signing_key(&state)?.to_vec();
    let request = body.value;
    let subscribed = automation::webhook::subscribe(
        state.store(),
        &request.name,
        &request.url,
        request.event_types,
        state.now(),
    )
    .await?
    .map_err(|error| ApiError::Unprocessable(error.to_string()))?;
    let secret = automation::webhook::subscription_secret(&key, subscribed.subscription_id);
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            subscription_id: subscribed.subscription_id,
            name: subscribed.name,
            url: subscribed.url,
            event_types: subscribed.event_types,
            secret,
        }),
    ))
}

pub async fn list_webhooks(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<WebhookList>, ApiError> {
    principal.require(READERS)?;
    let subscriptions = automation::webhook::Subscriptions::load(state.store()).await?;
    Ok(Json(WebhookList {
        subscriptions: subscriptions
            .by_id
            .into_values()
            .map(|subscribed| Webhook {
                subscription_id: subscribed.subscription_id,
                name: subscribed.name,
                url: subscribed.url,
                event_types: subscribed.event_types,
            })
            .collect(),
    }))
}

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::NotFound(format!("no webhook subscription {text:?}")))
}

pub async fn unsubscribe_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(subscription_id): Path<String>,
) -> Result<Json<EndedWebhook>, ApiError> {
    principal.require(ADMIN)?;
    let subscription_id = parse_id(&subscription_id)?;
    if !automation::webhook::unsubscribe(state.store(), subscription_id, state.now()).await? {
        return Err(ApiError::NotFound(format!(
            "no live webhook subscription {subscription_id}"
        )));
    }
    Ok(Json(EndedWebhook {
        subscription_id,
        unsubscribed: true,
    }))
}

pub async fn webhook_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(subscription_id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryLogView>, ApiError> {
    principal.require(READERS)?;
    let subscription_id = parse_id(&subscription_id)?;
    let limit = query
        .limit
        .unwrap_or(DELIVERIES_PAGE_MAX)
        .clamp(1, DELIVERIES_PAGE_MAX);
    let log = automation::webhook::delivery_log(state.store(), subscription_id).await?;
    if log.deliveries.is_empty() {
        let known = automation::webhook::Subscriptions::load(state.store())
            .await?
            .by_id
            .contains_key(&subscription_id);
        if !known {
            return Err(ApiError::NotFound(format!(
                "no webhook subscription {subscription_id}"
            )));
        }
    }
    let deliveries = log
        .deliveries
        .into_iter()
        .rev()
        .map(|delivery| DeliveryView {
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            position: delivery.position,
            trigger: delivery.trigger,
            state: match delivery.state {
                automation::webhook::DeliveryState::Pending => DeliveryStateView::Pending,
                automation::webhook::DeliveryState::Delivered => DeliveryStateView::Delivered,
                automation::webhook::DeliveryState::DeadLetter => DeliveryStateView::DeadLetter,
            },
            attempts: delivery
                .attempts
                .into_iter()
                .map(|attempt| AttemptView {
                    attempt: attempt.attempt,
                    at: attempt.at,
                    status: attempt.status,
                    error: attempt.error,
                })
                .collect(),
            next_attempt_at: delivery.next_attempt_at,
        })
        .filter(|delivery| query.state.is_none_or(|state| delivery.state == state))
        .take(limit)
        .collect();
    Ok(Json(DeliveryLogView {
        subscription_id,
        deliveries,
    }))
}
