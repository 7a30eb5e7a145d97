//! Outbound webhooks: subscriptions to event types, signed deliveries, retries with exponential
//! backoff and jitter, a dead-letter state, and a delivery log.
//!
//! Everything durable is an event in the log. Subscriptions live in the `webhooks` stream
//! (`WebhookSubscribed`, `WebhookUnsubscribed`); each subscription's deliveries live in its own
//! stream `webhook-{subscription_id}`: `WebhookDeliveryScheduled` when an event is due to be
//! sent, then `WebhookAttemptFailed` per failed attempt (with the next attempt's time),
//! `WebhookDelivered` or `WebhookDeadLettered`. Every append carries a command id derived from
//! the subscription, the event and the attempt, so a crash or a second node repeats nothing; the
//! delivery log is a fold of the subscription's stream, so it survives restarts by construction.
//!
//! Delivery is at least once: an attempt whose outcome was not recorded before a crash is made
//! again. Receivers de-duplicate by `Docket-Event-Id`.
//!
//! The pure parts (signature, retry schedule, delivery fold) are at the top; the dispatcher and
//! the minimal HTTP/1.1 client (hyper; `https://` with rustls, certificates verified) below.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sla_scheduler::{Leader, Leadership};
use store::{AppendError, ExpectedVersion, NewEvent, Record, Store, StoreError, StreamId};
use tokio::sync::watch;
use uuid::Uuid;

use crate::checkpoint::{CheckpointError, Checkpoints};

/// The stream of subscriptions.
pub const SUBSCRIPTIONS_STREAM: &str = "webhooks";
/// Most live subscriptions.
pub const SUBSCRIPTIONS_MAX: usize = 100;
/// Most event types one subscription names.
pub const SUBSCRIPTION_EVENT_TYPES_MAX: usize = 64;
/// Longest subscription URL, in bytes.
pub const URL_BYTES_MAX: usize = 2_048;
/// Longest subscription name, in bytes.
pub const SUBSCRIPTION_NAME_BYTES_MAX: usize = 64;
/// Attempts before a delivery is dead-lettered.
pub const ATTEMPTS_MAX: u32 = 8;
/// The first retry waits about this long; each further one twice as long.
pub const RETRY_BASE: SignedDuration = SignedDuration::from_secs(30);
/// No retry waits longer than this.
pub const RETRY_DELAY_MAX: SignedDuration = SignedDuration::from_secs(6 * 3600);
/// Jitter: a retry waits between 80 % and 120 % of its nominal delay.
pub const RETRY_JITTER_PERCENT: i64 = 20;
/// The longest one attempt may take, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most deliveries attempted in one `deliver_due` step.
pub const DELIVERIES_PER_STEP_MAX: usize = 100;
/// Most bytes of a receiver's error or status text kept in the log.
pub const ERROR_BYTES_MAX: usize = 200;
/// The checkpoint row of the webhook scheduler.
pub const CHECKPOINT_NAME: &str = "webhooks";

type HmacSha256 = Hmac<Sha256>;
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

// ---------------------------------------------------------------------------------------------
// Signatures

/// The per-subscription secret: derived from the operator's signing key, never stored. Shown to
/// the admin when the subscription is made.
pub fn subscription_secret(signing_key: &[u8], subscription_id: Uuid) -> String {
    let mut mac = HmacSha256::new_from_slice(signing_key).expect("HMAC takes keys of any length");
    mac.update(b"docket-webhook-secret\0");
    mac.update(subscription_id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, as in the
/// `Docket-Signature` header.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// What a receiver does: parses the header, recomputes the MAC in constant time, and refuses a
/// timestamp further than `tolerance` from its own clock (replays).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: Timestamp,
    tolerance: SignedDuration,
) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("no t= timestamp")?;
    if (now.as_second() - timestamp).abs() > tolerance.as_secs() {
        return Err("timestamp outside the tolerance");
    }
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures.iter().any(|signature| {
        unhex(signature).is_some_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err("no v1 signature matches")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Retry schedule

/// How long after failed attempt `attempt` (1-based) the next one is made: `RETRY_BASE` doubled
/// per attempt, capped at `RETRY_DELAY_MAX`, then spread by ±`RETRY_JITTER_PERCENT` % with a
/// jitter derived from the event id, so deliveries that failed together do not retry together,
/// and a replay computes the same time.
pub fn retry_delay(attempt: u32, event_id: Uuid) -> SignedDuration {
    let doublings = attempt.saturating_sub(1).min(30);
    let nominal = RETRY_BASE
        .checked_mul(1 << doublings)
        .unwrap_or(RETRY_DELAY_MAX)
        .min(RETRY_DELAY_MAX);
    let digest = Sha256::new()
        .chain_update(event_id.as_bytes())
        .chain_update(attempt.to_be_bytes())
        .finalize();
    let draw = i64::from(u16::from_be_bytes([digest[0], digest[1]])); // 0..=65535
    let permille = 1000 - RETRY_JITTER_PERCENT * 10 + draw * RETRY_JITTER_PERCENT * 20 / 65_535;
    let millis = i64::try_from(nominal.as_millis()).unwrap_or(i64::MAX) / 1000 * permille;
    SignedDuration::from_millis(millis)
}

// ---------------------------------------------------------------------------------------------
// Events of the webhook streams

/// A subscription as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSubscribed {
    pub subscription_id: Uuid,
    pub name: String,
    pub url: String,
    /// Event types (`TicketCreated`…), or `*` for every ticket event.
    pub event_types: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookUnsubscribed {
    pub subscription_id: Uuid,
}

/// An event is to be sent to the subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDeliveryScheduled {
    pub event_id: Uuid,
    pub event_type: String,
    pub position: u64,
    /// The trigger that asked for it, when a trigger did.
    pub trigger: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookAttemptFailed {
    pub event_id: Uuid,
    pub attempt: u32,
    pub at: Timestamp,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    pub error: String,
    pub next_attempt_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDelivered {
    pub event_id: Uuid,
    pub attempt: u32,
    pub at: Timestamp,
    pub status: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDeadLettered {
    pub event_id: Uuid,
    pub attempts: u32,
    pub at: Timestamp,
    pub status: Option<u16>,
    pub error: String,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    DeadLetter,
}

/// One attempt, as the delivery log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    pub attempt: u32,
    pub at: Timestamp,
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// One delivery, as the delivery log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub event_id: Uuid,
    pub event_type: String,
    pub position: u64,
    pub trigger: Option<String>,
    pub state: DeliveryState,
    pub attempts: Vec<AttemptView>,
    /// When the next attempt is due (pending deliveries only); `None` means now.
    pub next_attempt_at: Option<Timestamp>,
}

/// The deliveries of one subscription: a fold of its stream, in the order they were scheduled.
/// The first `WebhookDelivered` or `WebhookDeadLettered` ends a delivery, and an attempt number
/// is counted once: two dispatchers overlapping in a failover may both record an attempt, and
/// the log must not turn a delivered event into a dead letter.
#[derive(Clone, Debug, Default)]
pub struct DeliveryLog {
    pub deliveries: Vec<Delivery>,
    index: HashMap<Uuid, usize>,
}

impl DeliveryLog {
    /// Folds one record of the subscription's stream.
    pub fn apply(&mut self, record: &Record) {
        match record.event_type.as_str() {
            "WebhookDeliveryScheduled" => {
                let Ok(scheduled) =
                    serde_json::from_str::<WebhookDeliveryScheduled>(&record.payload)
                else {
                    return;
                };
                if self.index.contains_key(&scheduled.event_id) {
                    return;
                }
                self.index.insert(scheduled.event_id, self.deliveries.len());
                self.deliveries.push(Delivery {
                    event_id: scheduled.event_id,
                    event_type: scheduled.event_type,
                    position: scheduled.position,
                    trigger: scheduled.trigger,
                    state: DeliveryState::Pending,
                    attempts: Vec::new(),
                    next_attempt_at: None,
                });
            }
            "WebhookAttemptFailed" => {
                let Ok(failed) = serde_json::from_str::<WebhookAttemptFailed>(&record.payload)
                else {
                    return;
                };
                if let Some(delivery) = self.get_mut(failed.event_id, failed.attempt) {
                    delivery.attempts.push(AttemptView {
                        attempt: failed.attempt,
                        at: failed.at,
                        status: failed.status,
                        error: Some(failed.error),
                    });
                    delivery.next_attempt_at = Some(failed.next_attempt_at);
                }
            }
            "WebhookDelivered" => {
                let Ok(delivered) = serde_json::from_str::<WebhookDelivered>(&record.payload)
                else {
                    return;
                };
                if let Some(delivery) = self.get_mut(delivered.event_id, delivered.attempt) {
                    delivery.attempts.push(AttemptView {
                        attempt: delivered.attempt,
                        at: delivered.at,
                        status: Some(delivered.status),
                        error: None,
                    });
                    delivery.state = DeliveryState::Delivered;
                    delivery.next_attempt_at = None;
                }
            }
            "WebhookDeadLettered" => {
                let Ok(dead) = serde_json::from_str::<WebhookDeadLettered>(&record.payload) else {
                    return;
                };
                if let Some(delivery) = self.get_mut(dead.event_id, dead.attempts) {
                    delivery.attempts.push(AttemptView {
                        attempt: dead.attempts,
                        at: dead.at,
                        status: dead.status,
                        error: Some(dead.error),
                    });
                    delivery.state = DeliveryState::DeadLetter;
                    delivery.next_attempt_at = None;
                }
            }
            _ => {}
        }
    }

    /// The delivery of `event_id` while it is pending and `attempt` is new to it.
    fn get_mut(&mut self, event_id: Uuid, attempt: u32) -> Option<&mut Delivery> {
        let index = *self.index.get(&event_id)?;
        self.deliveries.get_mut(index).filter(|delivery| {
            delivery.state == DeliveryState::Pending
                && delivery
                    .attempts
                    .last()
                    .is_none_or(|last| last.attempt < attempt)
        })
    }

    pub fn get(&self, event_id: Uuid) -> Option<&Delivery> {
        self.deliveries.get(*self.index.get(&event_id)?)
    }
}

/// The live subscriptions: a fold of the `webhooks` stream.
#[derive(Clone, Debug, Default)]
pub struct Subscriptions {
    pub by_id: BTreeMap<Uuid, WebhookSubscribed>,
    /// Each live subscription's log position: the position of its `WebhookSubscribed` record.
    /// Only events after it are delivered to it.
    pub since: BTreeMap<Uuid, u64>,
}

impl Subscriptions {
    pub fn apply(&mut self, record: &Record) {
        match record.event_type.as_str() {
            "WebhookSubscribed" => {
                if let Ok(subscribed) = serde_json::from_str::<WebhookSubscribed>(&record.payload) {
                    self.since
                        .insert(subscribed.subscription_id, record.position);
                    self.by_id.insert(subscribed.subscription_id, subscribed);
                }
            }
            "WebhookUnsubscribed" => {
                if let Ok(gone) = serde_json::from_str::<WebhookUnsubscribed>(&record.payload) {
                    self.by_id.remove(&gone.subscription_id);
                    self.since.remove(&gone.subscription_id);
                }
            }
            _ => {}
        }
    }

    /// Whether `record` came after `subscription` was created (events before it are never
    /// delivered to it, however late the dispatcher reads them).
    pub fn is_after(&self, subscription: Uuid, record: &Record) -> bool {
        self.since
            .get(&subscription)
            .is_some_and(|since| record.position > *since)
    }

    pub fn by_name(&self, name: &str) -> Option<&WebhookSubscribed> {
        self.by_id
            .values()
            .find(|subscription| subscription.name == name)
    }

    /// Reads the whole `webhooks` stream.
    pub async fn load(store: &Store) -> Result<Subscriptions, StoreError> {
        Ok(Subscriptions::load_versioned(store).await?.0)
    }

    /// Reads the whole `webhooks` stream; also answers the stream's version (0: no stream), so
    /// that a change decided on what was read appends only if nothing came in between.
    pub async fn load_versioned(store: &Store) -> Result<(Subscriptions, u64), StoreError> {
        let mut subscriptions = Subscriptions::default();
        let stream = subscriptions_stream();
        let mut from = 1;
        loop {
            let page = store
                .read_stream(&stream, from, store::READ_LIMIT_MAX)
                .await?;
            page.iter().for_each(|record| subscriptions.apply(record));
            if page.len() < store::READ_LIMIT_MAX {
                return Ok((subscriptions, from - 1 + page.len() as u64));
            }
            from += page.len() as u64;
        }
    }
}

fn subscriptions_stream() -> StreamId {
    StreamId::new(SUBSCRIPTIONS_STREAM).expect("a valid stream id")
}

/// The stream of one subscription's deliveries.
pub fn deliveries_stream(subscription_id: Uuid) -> StreamId {
    StreamId::new(format!("webhook-{subscription_id}")).expect("a valid stream id")
}

/// Reads one subscription's delivery log.
pub async fn delivery_log(store: &Store, subscription_id: Uuid) -> Result<DeliveryLog, StoreError> {
    let mut log = DeliveryLog::default();
    let stream = deliveries_stream(subscription_id);
    let mut from = 1;
    loop {
        let page = store
            .read_stream(&stream, from, store::READ_LIMIT_MAX)
            .await?;
        page.iter().for_each(|record| log.apply(record));
        if page.len() < store::READ_LIMIT_MAX {
            return Ok(log);
        }
        from += page.len() as u64;
    }
}

/// Why a subscription request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("url {url:?} must be an https:// or http:// URL with a host, at most {max} bytes", max = URL_BYTES_MAX)]
    BadUrl { url: String },
    #[error("name {name:?} must be 1 to {max} of a-z, 0-9, `_` and `-`", max = SUBSCRIPTION_NAME_BYTES_MAX)]
    BadName { name: String },
    #[error("name {name:?} is taken by subscription {existing}")]
    NameTaken { name: String, existing: Uuid },
    #[error("event type {event_type:?} is unknown; use `*` or one of {known}")]
    UnknownEventType { event_type: String, known: String },
    #[error("1 to {max} event types", max = SUBSCRIPTION_EVENT_TYPES_MAX)]
    EventTypeCount,
    #[error("at most {max} subscriptions", max = SUBSCRIPTIONS_MAX)]
    TooMany,
}

/// Checks a subscription request against the live ones.
pub fn check_subscription(
    subscriptions: &Subscriptions,
    name: &str,
    url: &str,
    event_types: &[String],
) -> Result<(), SubscriptionError> {
    let name_ok = !name.is_empty()
        && name.len() <= SUBSCRIPTION_NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !name_ok {
        return Err(SubscriptionError::BadName {
            name: name.to_owned(),
        });
    }
    if let Some(existing) = subscriptions.by_name(name) {
        return Err(SubscriptionError::NameTaken {
            name: name.to_owned(),
            existing: existing.subscription_id,
        });
    }
    let url_ok = url.len() <= URL_BYTES_MAX
        && url.parse::<hyper::Uri>().is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
        });
    if !url_ok {
        return Err(SubscriptionError::BadUrl {
            url: url.to_owned(),
        });
    }
    if event_types.is_empty() || event_types.len() > SUBSCRIPTION_EVENT_TYPES_MAX {
        return Err(SubscriptionError::EventTypeCount);
    }
    for event_type in event_types {
        let known = event_type == "*"
            || domain::EVENT_TYPES
                .iter()
                .any(|(name, _)| name == event_type);
        if !known {
            return Err(SubscriptionError::UnknownEventType {
                event_type: event_type.clone(),
                known: domain::EVENT_TYPES
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    if subscriptions.by_id.len() >= SUBSCRIPTIONS_MAX {
        return Err(SubscriptionError::TooMany);
    }
    Ok(())
}

fn derived_id(parts: &[&[u8]]) -> Uuid {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update(b"\0");
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn new_event<T: Serialize>(event_type: &str, payload: &T, metadata: &Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: serde_json::value::to_raw_value(payload).expect("webhook events serialize"),
        metadata: serde_json::value::to_raw_value(metadata).expect("metadata serializes"),
    }
}

/// Appends one event to a webhook stream, idempotently by `command_id`.
async fn append_once<T: Serialize>(
    store: &Store,
    stream: &StreamId,
    event_type: &str,
    payload: &T,
    command_id: Uuid,
    at: Timestamp,
) -> Result<(), AppendError> {
    append_expecting(
        store,
        stream,
        ExpectedVersion::Any,
        event_type,
        payload,
        command_id,
        at,
    )
    .await
}

/// Appends one event to a webhook stream if it is at `expected`, idempotently by `command_id`.
async fn append_expecting<T: Serialize>(
    store: &Store,
    stream: &StreamId,
    expected: ExpectedVersion,
    event_type: &str,
    payload: &T,
    command_id: Uuid,
    at: Timestamp,
) -> Result<(), AppendError> {
    let metadata = json!({
        "actor": {"role": "system", "id": crate::manager::AUTOMATION_ACTOR, "name": "webhooks"},
        "command_id": command_id,
        "correlation_id": command_id,
        "at": at,
    });
    store
        .append(
            stream,
            expected,
            vec![new_event(event_type, payload, &metadata)],
            command_id,
        )
        .await
        .map(|_| ())
}

/// Schedules a delivery of `record` to `subscription_id` (at most once per subscription, event
/// and trigger).
pub async fn schedule(
    store: &Store,
    subscription_id: Uuid,
    record: &Record,
    trigger: Option<&str>,
    at: Timestamp,
) -> Result<(), AppendError> {
    let command_id = derived_id(&[
        b"webhook-scheduled",
        subscription_id.as_bytes(),
        record.event_id.as_bytes(),
        trigger.unwrap_or("").as_bytes(),
    ]);
    let scheduled = WebhookDeliveryScheduled {
        event_id: record.event_id,
        event_type: record.event_type.clone(),
        position: record.position,
        trigger: trigger.map(str::to_owned),
    };
    append_once(
        store,
        &deliveries_stream(subscription_id),
        "WebhookDeliveryScheduled",
        &scheduled,
        command_id,
        at,
    )
    .await
}

/// Records a new subscription (checked with `check_subscription` first) in the `webhooks`
/// stream. The caller shows the admin `subscription_secret` for it once.
pub async fn subscribe(
    store: &Store,
    name: &str,
    url: &str,
    event_types: Vec<String>,
    at: Timestamp,
) -> Result<Result<WebhookSubscribed, SubscriptionError>, AppendError> {
    let subscribed = WebhookSubscribed {
        subscription_id: Uuid::now_v7(),
        name: name.to_owned(),
        url: url.to_owned(),
        event_types,
    };
    let command_id = Uuid::now_v7();
    // Checked on what was read, appended only if the stream is still at the version read: two
    // admins subscribing one name at once make one subscription, the other is told the name is
    // taken.
    let mut attempt = 1;
    loop {
        let (subscriptions, version) = Subscriptions::load_versioned(store).await?;
        if let Err(error) = check_subscription(&subscriptions, name, url, &subscribed.event_types) {
            return Ok(Err(error));
        }
        let expected = match version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        match append_expecting(
            store,
            &subscriptions_stream(),
            expected,
            "WebhookSubscribed",
            &subscribed,
            command_id,
            at,
        )
        .await
        {
            Err(AppendError::WrongExpectedVersion { .. }) if attempt < SUBSCRIBE_ATTEMPTS_MAX => {
                attempt += 1;
            }
            Err(error) => return Err(error),
            Ok(()) => return Ok(Ok(subscribed)),
        }
    }
}

/// How often `subscribe` reads and checks again after another change came in between.
pub const SUBSCRIBE_ATTEMPTS_MAX: u32 = 10;

/// Ends a subscription: no further deliveries are scheduled or attempted for it; its delivery
/// log stays readable.
pub async fn unsubscribe(
    store: &Store,
    subscription_id: Uuid,
    at: Timestamp,
) -> Result<bool, AppendError> {
    let subscriptions = Subscriptions::load(store).await?;
    if !subscriptions.by_id.contains_key(&subscription_id) {
        return Ok(false);
    }
    append_once(
        store,
        &subscriptions_stream(),
        "WebhookUnsubscribed",
        &WebhookUnsubscribed { subscription_id },
        derived_id(&[b"webhook-unsubscribed", subscription_id.as_bytes()]),
        at,
    )
    .await?;
    Ok(true)
}

/// The trigger manager's handle for `send_webhook` actions.
#[derive(Clone, Debug)]
pub struct WebhookRequests {
    store: Store,
}

impl WebhookRequests {
    pub fn new(store: Store) -> WebhookRequests {
        WebhookRequests { store }
    }

    /// Schedules `record` for the subscription named `name`; an unknown name is logged and
    /// skipped (subscriptions are managed at run time, triggers in the configuration).
    pub async fn request(
        &self,
        name: &str,
        record: &Record,
        trigger: &str,
    ) -> Result<(), AppendError> {
        let subscriptions = Subscriptions::load(&self.store).await?;
        let Some(subscription) = subscriptions.by_name(name) else {
            tracing::warn!(
                webhook = name,
                trigger,
                "send_webhook names no live subscription"
            );
            return Ok(());
        };
        if !subscriptions.is_after(subscription.subscription_id, record) {
            tracing::info!(
                webhook = name,
                trigger,
                position = record.position,
                "send_webhook on an event from before the subscription: not sent"
            );
            return Ok(());
        }
        schedule(
            &self.store,
            subscription.subscription_id,
            record,
            Some(trigger),
            record.recorded_at,
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// The HTTP client

/// What a receiver answered, or why there was no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Status(u16),
    Failed(String),
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptOutcome::Status(status) => write!(f, "HTTP {status}"),
            AttemptOutcome::Failed(error) => f.write_str(error),
        }
    }
}

/// Most extra CA certificates the operator may add to the trusted roots.
pub const EXTRA_CAS_MAX: usize = 64;

/// Why the webhook client could not be set up (a configuration error: the server does not
/// start).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("extra CA PEM: {0}")]
    Pem(String),
    #[error("extra CA PEM holds no CERTIFICATE block")]
    NoCertificate,
    #[error("extra CA PEM holds more than {EXTRA_CAS_MAX} certificates")]
    TooManyCertificates,
    #[error("extra CA certificate {index} is not a usable trust anchor: {error}")]
    BadCertificate { index: usize, error: rustls::Error },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// How the dispatcher reaches receivers: plain `http://`, or `https://` with rustls (the `ring`
/// provider), verifying the receiver's certificate chain and name against Mozilla's roots
/// (`webpki-roots`) plus any CA certificates the operator adds (an on-prem internal CA, a test
/// CA). There is no switch that turns verification off.
#[derive(Clone)]
pub struct WebhookClient {
    tls: tokio_rustls::TlsConnector,
    extra_cas: usize,
}

impl fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookClient")
            .field("extra_cas", &self.extra_cas)
            .finish_non_exhaustive()
    }
}

impl WebhookClient {
    /// Trusts Mozilla's roots, and the certificates in `extra_ca_pem` (one or more PEM
    /// `CERTIFICATE` blocks) when given.
    pub fn new(extra_ca_pem: Option<&[u8]>) -> Result<WebhookClient, ClientError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;

        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut extra_cas = 0;
        if let Some(pem) = extra_ca_pem {
            for (index, certificate) in CertificateDer::pem_slice_iter(pem).enumerate() {
                let certificate =
                    certificate.map_err(|error| ClientError::Pem(error.to_string()))?;
                if index >= EXTRA_CAS_MAX {
                    return Err(ClientError::TooManyCertificates);
                }
                roots
                    .add(certificate)
                    .map_err(|error| ClientError::BadCertificate { index, error })?;
                extra_cas += 1;
            }
            if extra_cas == 0 {
                return Err(ClientError::NoCertificate);
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(WebhookClient {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            extra_cas,
        })
    }

    /// POSTs `body` to `url` with `headers` over one HTTP/1.1 connection (TLS for `https://`),
    /// within `DELIVERY_TIMEOUT`. Every failure is an outcome with a precise reason, never a
    /// panic: the dispatcher records it and retries like any other.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> AttemptOutcome {
        match tokio::time::timeout(DELIVERY_TIMEOUT, self.post_inner(url, headers, body)).await {
            Ok(Ok(status)) => AttemptOutcome::Status(status),
            Ok(Err(error)) => AttemptOutcome::Failed(truncate(error)),
            Err(_) => {
                AttemptOutcome::Failed(format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs()))
            }
        }
    }

    async fn post_inner(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<u16, String> {
        let uri: hyper::Uri = url.parse().map_err(|error| format!("bad url: {error}"))?;
        let host = uri.host().ok_or("url has no host")?;
        // An IPv6 literal is bracketed in a URL, bare in a socket address and a server name.
        let host = host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => return Err(format!("unsupported scheme {other:?}")),
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|error| format!("connect: {error}"))?;
        if !tls {
            return exchange(stream, &uri, headers, body).await;
        }
        let server_name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|error| format!("tls: {host:?} is not a valid server name: {error}"))?;
        let stream = self
            .tls
            .connect(server_name, stream)
            .await
            .map_err(|error| format!("tls handshake with {host}: {error}"))?;
        exchange(stream, &uri, headers, body).await
    }
}

/// One HTTP/1.1 request and its status over an established connection.
async fn exchange<Io>(
    io: Io,
    uri: &hyper::Uri,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<u16, String>
where
    Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|error| format!("handshake: {error}"))?;
    let driver = tokio::spawn(connection);
    let authority = uri
        .authority()
        .map_or_else(String::new, ToString::to_string);
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    let mut request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "docket-webhooks/1");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|error| format!("request: {error}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| format!("send: {error}"));
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            driver.abort();
            return Err(error);
        }
    };
    let status = response.status().as_u16();
    // Read (and drop) the body so the connection ends cleanly; its content is not used.
    let _ = response.into_body().collect().await;
    driver.abort();
    Ok(status)
}

fn truncate(mut text: String) -> String {
    if text.len() > ERROR_BYTES_MAX {
        let mut end = ERROR_BYTES_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// The dispatcher

/// The wall clock, injected.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// Why a dispatcher step failed; the step can be repeated.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    #[error("append: {0}")]
    Append(#[from] AppendError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PendingKey {
    due_at: Timestamp,
    subscription: Uuid,
    event_id: Uuid,
}

#[derive(Clone, Debug)]
struct Pending {
    position: u64,
    trigger: Option<String>,
    attempts_made: u32,
}

/// One delivery attempt, as a step reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempted {
    pub subscription: Uuid,
    pub event_id: Uuid,
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub state: DeliveryState,
}

/// Schedules deliveries from the log and makes the attempts that are due.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    signing_key: Arc<[u8]>,
    client: WebhookClient,
    checkpoints: Checkpoints,
    subscriptions: Subscriptions,
    /// Records up to here have been looked at for scheduling.
    position: u64,
    /// The log head when the dispatcher opened: webhook records up to here were folded then.
    folded_until: u64,
    /// Pending deliveries by due time, and where each is.
    queue: BTreeSet<PendingKey>,
    pending: HashMap<(Uuid, Uuid), (PendingKey, Pending)>,
    /// Where each attempt is counted once its outcome is recorded.
    stats: Arc<DispatcherStats>,
}

impl Dispatcher {
    /// Counts its attempts into `stats` (`run_elected` gives every term the same ones).
    pub fn with_stats(self, stats: Arc<DispatcherStats>) -> Dispatcher {
        Dispatcher { stats, ..self }
    }

    /// Loads the subscriptions, every subscription's pending deliveries, and the checkpoint.
    pub async fn open(
        store: Store,
        signing_key: Arc<[u8]>,
        client: WebhookClient,
    ) -> Result<Dispatcher, DispatchError> {
        let migrated = migrate(&store).await?;
        Dispatcher::open_migrated(store, signing_key, client, migrated).await
    }

    /// `open` without the migration, which `migrate` did: this future can be spawned.
    pub async fn open_migrated(
        store: Store,
        signing_key: Arc<[u8]>,
        client: WebhookClient,
        _migrated: Migrated,
    ) -> Result<Dispatcher, DispatchError> {
        let checkpoints = Checkpoints::connect(&store).await?;
        let position = checkpoints.load(CHECKPOINT_NAME).await?;
        let (folded_until, _) = store.head().await?;
        let subscriptions = Subscriptions::load(&store).await?;
        let mut dispatcher = Dispatcher {
            store,
            signing_key,
            client,
            checkpoints,
            subscriptions,
            position,
            folded_until,
            queue: BTreeSet::new(),
            pending: HashMap::new(),
            stats: Arc::default(),
        };
        let ids: Vec<Uuid> = dispatcher.subscriptions.by_id.keys().copied().collect();
        for subscription in ids {
            let log = delivery_log(&dispatcher.store, subscription).await?;
            for delivery in log.deliveries {
                if delivery.state == DeliveryState::Pending {
                    dispatcher.enqueue(subscription, &delivery);
                }
            }
        }
        Ok(dispatcher)
    }

    fn enqueue(&mut self, subscription: Uuid, delivery: &Delivery) {
        let key = PendingKey {
            due_at: delivery.next_attempt_at.unwrap_or(Timestamp::UNIX_EPOCH),
            subscription,
            event_id: delivery.event_id,
        };
        if let Some((old, _)) = self.pending.remove(&(subscription, delivery.event_id)) {
            self.queue.remove(&old);
        }
        self.queue.insert(key);
        self.pending.insert(
            (subscription, delivery.event_id),
            (
                key,
                Pending {
                    position: delivery.position,
                    trigger: delivery.trigger.clone(),
                    attempts_made: delivery.attempts.len() as u32,
                },
            ),
        );
    }

    /// How many deliveries wait.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// When the earliest pending delivery is due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.queue.first().map(|key| key.due_at)
    }

    /// Reads the log past the checkpoint: subscription changes, events to schedule for matching
    /// subscriptions, and scheduled deliveries to queue. Returns how many records it read.
    pub async fn catch_up(&mut self, now: Timestamp) -> Result<usize, DispatchError> {
        let page = self
            .store
            .read_all(self.position, store::READ_LIMIT_MAX)
            .await?;
        for record in &page {
            self.look_at(record, now).await?;
            self.position = record.position;
        }
        if !page.is_empty() {
            self.checkpoints
                .save(CHECKPOINT_NAME, self.position)
                .await?;
        }
        Ok(page.len())
    }

    async fn look_at(&mut self, record: &Record, now: Timestamp) -> Result<(), DispatchError> {
        match record.category.as_str() {
            // Folded when the dispatcher opened; later ones are new.
            "webhooks" | "webhook" if record.position <= self.folded_until => {}
            "webhooks" => self.subscriptions.apply(record),
            "webhook" => {
                let Some(subscription) = record
                    .stream_id
                    .strip_prefix("webhook-")
                    .and_then(|id| Uuid::parse_str(id).ok())
                else {
                    return Ok(());
                };
                self.fold_outcome(subscription, record);
            }
            "ticket" => {
                let matching: Vec<Uuid> = self
                    .subscriptions
                    .by_id
                    .values()
                    .filter(|subscription| {
                        subscription
                            .event_types
                            .iter()
                            .any(|wanted| wanted == "*" || *wanted == record.event_type)
                            && self
                                .subscriptions
                                .is_after(subscription.subscription_id, record)
                    })
                    .map(|subscription| subscription.subscription_id)
                    .collect();
                for subscription in matching {
                    schedule(&self.store, subscription, record, None, now).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Folds a record of a deliveries stream written after the dispatcher opened, by itself or
    /// by another dispatcher (a previous leader's last attempts): a newly scheduled delivery is
    /// queued, a recorded failure moves the delivery to its next attempt, a delivery or dead
    /// letter ends it. Folding its own records again changes nothing.
    fn fold_outcome(&mut self, subscription: Uuid, record: &Record) {
        let key = |event_id: Uuid| (subscription, event_id);
        match record.event_type.as_str() {
            "WebhookDeliveryScheduled" => {
                let Ok(scheduled) =
                    serde_json::from_str::<WebhookDeliveryScheduled>(&record.payload)
                else {
                    return;
                };
                let known = self.pending.contains_key(&key(scheduled.event_id));
                if !known && self.subscriptions.by_id.contains_key(&subscription) {
                    let mut log = DeliveryLog::default();
                    log.apply(record);
                    if let Some(delivery) = log.deliveries.first() {
                        self.enqueue(subscription, delivery);
                    }
                }
            }
            "WebhookAttemptFailed" => {
                let Ok(failed) = serde_json::from_str::<WebhookAttemptFailed>(&record.payload)
                else {
                    return;
                };
                let Some((old, pending)) = self.pending.get_mut(&key(failed.event_id)) else {
                    return;
                };
                if pending.attempts_made >= failed.attempt {
                    return;
                }
                pending.attempts_made = failed.attempt;
                self.queue.remove(old);
                old.due_at = failed.next_attempt_at;
                self.queue.insert(*old);
            }
            "WebhookDelivered" | "WebhookDeadLettered" => {
                let event_id = match record.event_type.as_str() {
                    "WebhookDelivered" => serde_json::from_str::<WebhookDelivered>(&record.payload)
                        .map(|delivered| delivered.event_id),
                    _ => serde_json::from_str::<WebhookDeadLettered>(&record.payload)
                        .map(|dead| dead.event_id),
                };
                if let Ok(event_id) = event_id {
                    if let Some((old, _)) = self.pending.remove(&key(event_id)) {
                        self.queue.remove(&old);
                    }
                }
            }
            _ => {}
        }
    }

    /// Makes the attempts due at `now` (at most `DELIVERIES_PER_STEP_MAX`) and records each
    /// outcome.
    pub async fn deliver_due(&mut self, now: Timestamp) -> Result<Vec<Attempted>, DispatchError> {
        let due: Vec<PendingKey> = self
            .queue
            .iter()
            .take_while(|key| key.due_at <= now)
            .take(DELIVERIES_PER_STEP_MAX)
            .copied()
            .collect();
        let mut attempted = Vec::new();
        for key in due {
            let Some((_, pending)) = self.pending.get(&(key.subscription, key.event_id)).cloned()
            else {
                continue;
            };
            let Some(subscription) = self.subscriptions.by_id.get(&key.subscription).cloned()
            else {
                // Unsubscribed: its deliveries stay pending in its log and are not attempted.
                self.queue.remove(&key);
                self.pending.remove(&(key.subscription, key.event_id));
                continue;
            };
            let source = self
                .store
                .read_all(pending.position.saturating_sub(1), 1)
                .await?;
            let Some(source) = source.first().filter(|r| r.event_id == key.event_id) else {
                tracing::error!(event = %key.event_id, "a scheduled webhook's event is not at its position");
                self.queue.remove(&key);
                self.pending.remove(&(key.subscription, key.event_id));
                continue;
            };
            let attempt = pending.attempts_made + 1;
            let body = delivery_body(source, pending.trigger.as_deref());
            let secret = subscription_secret(&self.signing_key, key.subscription);
            let headers = [
                ("docket-event-id", key.event_id.to_string()),
                ("docket-event-type", source.event_type.clone()),
                ("docket-delivery-attempt", attempt.to_string()),
                (
                    "docket-signature",
                    signature_header(&secret, now.as_second(), &body),
                ),
            ];
            let outcome = self.client.post(&subscription.url, &headers, body).await;
            let stream = deliveries_stream(key.subscription);
            let command_id = derived_id(&[
                b"webhook-attempt",
                key.subscription.as_bytes(),
                key.event_id.as_bytes(),
                &attempt.to_be_bytes(),
            ]);
            let (status, error) = match &outcome {
                AttemptOutcome::Status(status) => (Some(*status), format!("HTTP {status}")),
                AttemptOutcome::Failed(error) => (None, error.clone()),
            };
            self.queue.remove(&key);
            let state = match status {
                Some(status) if (200..300).contains(&status) => {
                    let delivered = WebhookDelivered {
                        event_id: key.event_id,
                        attempt,
                        at: now,
                        status,
                    };
                    append_once(
                        &self.store,
                        &stream,
                        "WebhookDelivered",
                        &delivered,
                        command_id,
                        now,
                    )
                    .await?;
                    self.pending.remove(&(key.subscription, key.event_id));
                    DeliveryState::Delivered
                }
                _ if attempt >= ATTEMPTS_MAX => {
                    let dead = WebhookDeadLettered {
                        event_id: key.event_id,
                        attempts: attempt,
                        at: now,
                        status,
                        error,
                    };
                    append_once(
                        &self.store,
                        &stream,
                        "WebhookDeadLettered",
                        &dead,
                        command_id,
                        now,
                    )
                    .await?;
                    self.pending.remove(&(key.subscription, key.event_id));
                    DeliveryState::DeadLetter
                }
                _ => {
                    let next_attempt_at = now + retry_delay(attempt, key.event_id);
                    let failed = WebhookAttemptFailed {
                        event_id: key.event_id,
                        attempt,
                        at: now,
                        status,
                        error,
                        next_attempt_at,
                    };
                    append_once(
                        &self.store,
                        &stream,
                        "WebhookAttemptFailed",
                        &failed,
                        command_id,
                        now,
                    )
                    .await?;
                    let next = PendingKey {
                        due_at: next_attempt_at,
                        ..key
                    };
                    self.queue.insert(next);
                    self.pending.insert(
                        (key.subscription, key.event_id),
                        (
                            next,
                            Pending {
                                attempts_made: attempt,
                                ..pending
                            },
                        ),
                    );
                    DeliveryState::Pending
                }
            };
            self.stats.count(state);
            attempted.push(Attempted {
                subscription: key.subscription,
                event_id: key.event_id,
                attempt,
                outcome,
                state,
            });
        }
        Ok(attempted)
    }

    /// Runs while this node leads and `stop` says go on: catches up with the log, makes due
    /// attempts, and sleeps until the next due time or new records (polling at most
    /// `IDLE_WAKE_MAX` apart). Checks the lead at most `LEADER_CHECK_INTERVAL` apart, and
    /// before every step that follows a check interval, so a node that lost its lock stops
    /// within about a second; an attempt it makes in that second is at worst a duplicate,
    /// which at-least-once delivery allows.
    async fn run_while_leading(
        &mut self,
        leader: &mut Leader,
        clock: &dyn Clock,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut last_check = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            if last_check.elapsed() >= LEADER_CHECK_INTERVAL {
                if !leader.still_leading().await {
                    tracing::warn!("webhook dispatcher: lost leadership");
                    return;
                }
                last_check = tokio::time::Instant::now();
            }
            let now = clock.now();
            // Boxed as `Send` here, where the lifetimes are concrete: left to inference inside
            // `run_elected`'s future, sqlx's higher-ranked bounds defeat the `Send` proof
            // (rust-lang/rust#102211) and the dispatcher could not be spawned.
            let step: BoxFuture<'_, Result<usize, DispatchError>> = Box::pin(async {
                let read = self.catch_up(now).await?;
                let attempted = self.deliver_due(now).await?;
                Ok(read + attempted.len())
            });
            let stepped = step.await;
            self.stats
                .pending
                .store(self.pending() as u64, Ordering::Relaxed);
            let busy = match stepped {
                Ok(work) => work > 0,
                Err(error) => {
                    tracing::warn!(%error, "webhook dispatcher step failed; retrying");
                    false
                }
            };
            if busy {
                continue;
            }
            let wait = self
                .next_due()
                .map(|due| due.duration_since(clock.now()))
                .and_then(|wait| Duration::try_from(wait).ok())
                .unwrap_or(IDLE_WAKE_MAX)
                .min(IDLE_WAKE_MAX);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = stop.changed() => {
                    // A dropped sender stops the dispatcher too.
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Proof that the dispatcher's table exists: `migrate` made it.
#[derive(Clone, Copy, Debug)]
pub struct Migrated(());

/// Creates the dispatcher's checkpoint table if it is missing. Await it before spawning
/// `run_elected` (its own future cannot be proven `Send`; see `Checkpoints::migrate`).
pub async fn migrate(store: &Store) -> Result<Migrated, DispatchError> {
    Checkpoints::migrate(store).await?;
    Ok(Migrated(()))
}

/// The advisory lock the webhook dispatchers of a cluster elect under (PostgreSQL).
pub const DISPATCHER_LOCK: &str = "docket.webhooks.dispatcher";
/// The longest the dispatcher sleeps when nothing is due, so new records are seen this soon.
pub const IDLE_WAKE_MAX: Duration = Duration::from_secs(1);
/// How often a leading dispatcher checks it still leads.
pub const LEADER_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What a running dispatcher shows (tests, status).
#[derive(Debug, Default)]
pub struct DispatcherStats {
    /// Whether this node's dispatcher leads now.
    pub leader: AtomicBool,
    /// How many times it has come to lead.
    pub terms: AtomicU64,
    /// Attempts answered with a 2xx status.
    pub delivered: AtomicU64,
    /// Attempts that failed and will be tried again.
    pub failed_attempts: AtomicU64,
    /// Deliveries given up after their last attempt.
    pub dead_lettered: AtomicU64,
    /// Deliveries waiting for an attempt when the dispatcher last stepped (while it leads).
    pub pending: AtomicU64,
}

impl DispatcherStats {
    /// Counts one attempt whose outcome was recorded, by the state it left the delivery in.
    fn count(&self, state: DeliveryState) {
        let counter = match state {
            DeliveryState::Delivered => &self.delivered,
            DeliveryState::DeadLetter => &self.dead_lettered,
            DeliveryState::Pending => &self.failed_attempts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a dispatcher is run: the store (migrated), the operator's signing key, the client, the
/// clock and the election (`Leadership::for_store(&store, DISPATCHER_LOCK)`).
#[derive(Debug)]
pub struct DispatcherSetup {
    pub store: Store,
    pub migrated: Migrated,
    pub signing_key: Arc<[u8]>,
    pub client: WebhookClient,
    pub clock: Arc<dyn Clock>,
    pub leadership: Leadership,
    pub stats: Arc<DispatcherStats>,
}

/// Runs the webhook dispatcher for the life of the process on whichever node leads
/// `DISPATCHER_LOCK`, so a cluster on one PostgreSQL delivers each event from one node: waits
/// to lead, opens a fresh dispatcher (everything it knows comes from the log, so what an
/// earlier leader did is seen), delivers while it leads, and on losing the lead drops
/// everything and waits again. Returns when `stop` says so (or its sender is dropped).
pub async fn run_elected(setup: DispatcherSetup, mut stop: watch::Receiver<bool>) {
    let DispatcherSetup {
        store,
        migrated,
        signing_key,
        client,
        clock,
        leadership,
        stats,
    } = setup;
    loop {
        let mut leader = tokio::select! {
            leader = leadership.acquire() => leader,
            _ = stop.changed() => return,
        };
        if *stop.borrow() {
            leader.release().await;
            return;
        }
        let mut dispatcher = loop {
            let open: BoxFuture<'_, Result<Dispatcher, DispatchError>> =
                Box::pin(Dispatcher::open_migrated(
                    store.clone(),
                    signing_key.clone(),
                    client.clone(),
                    migrated,
                ));
            match open.await {
                Ok(dispatcher) => break dispatcher.with_stats(stats.clone()),
                Err(error) => {
                    tracing::warn!(%error, "webhook dispatcher: opening failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_WAKE_MAX) => {}
                        _ = stop.changed() => {
                            leader.release().await;
                            return;
                        }
                    }
                }
            }
        };
        stats.leader.store(true, Ordering::Relaxed);
        stats.terms.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            pending = dispatcher.pending(),
            "webhook dispatcher: leading"
        );
        dispatcher
            .run_while_leading(&mut leader, clock.as_ref(), &mut stop)
            .await;
        stats.leader.store(false, Ordering::Relaxed);
        stats.pending.store(0, Ordering::Relaxed);
        drop(dispatcher);
        leader.release().await;
        if *stop.borrow() {
            return;
        }
    }
}

/// The JSON a receiver gets.
pub fn delivery_body(record: &Record, trigger: Option<&str>) -> Bytes {
    let data: Value = serde_json::from_str(&record.payload).unwrap_or(Value::Null);
    let body = json!({
        "id": record.event_id,
        "type": record.event_type,
        "schema_version": record.schema_version,
        "stream_id": record.stream_id,
        "stream_version": record.stream_version,
        "position": record.position,
        "recorded_at": record.recorded_at,
        "trigger": trigger,
        "data": data,
    });
    Bytes::from(serde_json::to_vec(&body).expect("a JSON value serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_doubles_with_bounded_jitter() {
        let event = Uuid::from_u128(42);
        let actual: Vec<String> = (1..=ATTEMPTS_MAX)
            .map(|attempt| format!("after attempt {attempt}: {:?}", retry_delay(attempt, event)))
            .collect();
        expect_test::expect![[r#"
            after attempt 1: 35s 430ms
            after attempt 2: 58s 740ms
            after attempt 3: 1m 56s 160ms
            after attempt 4: 3m 33s 840ms
            after attempt 5: 6m 48s 480ms
            after attempt 6: 16m 55s 680ms
            after attempt 7: 34m 14s 400ms
            after attempt 8: 1h 7m 35s 40ms"#]]
        .assert_eq(&actual.join("\n"));
        for attempt in 1..=40 {
            for id in 0..50 {
                let delay = retry_delay(attempt, Uuid::from_u128(id));
                let nominal = RETRY_BASE
                    .checked_mul(1 << attempt.saturating_sub(1).min(30))
                    .unwrap_or(RETRY_DELAY_MAX)
                    .min(RETRY_DELAY_MAX);
                assert!(delay >= nominal * 8 / 10 && delay <= nominal * 12 / 10);
            }
        }
    }

    #[test]
    fn the_first_outcome_of_an_attempt_and_the_first_end_win() {
        let event_id = Uuid::from_u128(9);
        let at: Timestamp = "2026-11-24T08:00:00Z".parse().unwrap();
        let record = |n: u64, event_type: &str, payload: Value| Record {
            position: n,
            stream_id: "webhook-00000000-0000-0000-0000-000000000001".to_owned(),
            category: "webhook".to_owned(),
            stream_version: n,
            event_id: Uuid::from_u128(u128::from(n)),
            event_type: event_type.to_owned(),
            schema_version: 1,
            payload: payload.to_string(),
            metadata: "{}".to_owned(),
            command_id: Uuid::from_u128(u128::from(n)),
            recorded_at: at,
            stream_hash: [0; 32],
            global_hash: [0; 32],
        };
        let failed = |attempt: u32, error: &str| {
            json!({"event_id": event_id, "attempt": attempt, "at": at, "status": null,
                "error": error, "next_attempt_at": at})
        };
        let mut log = DeliveryLog::default();
        let records = [
            record(
                1,
                "WebhookDeliveryScheduled",
                json!({"event_id": event_id,
                "event_type": "TicketCreated", "position": 7, "trigger": null}),
            ),
            record(2, "WebhookAttemptFailed", failed(1, "first node")),
            record(3, "WebhookAttemptFailed", failed(1, "second node")),
            record(
                4,
                "WebhookDelivered",
                json!({"event_id": event_id, "attempt": 2, "at": at,
                "status": 200}),
            ),
            record(5, "WebhookAttemptFailed", failed(3, "late")),
            record(
                6,
                "WebhookDeadLettered",
                json!({"event_id": event_id, "attempts": 8,
                "at": at, "status": null, "error": "late"}),
            ),
        ];
        records.iter().for_each(|record| log.apply(record));
        let delivery = log.get(event_id).unwrap();
        assert_eq!(delivery.state, DeliveryState::Delivered);
        let attempts: Vec<(u32, Option<&str>)> = delivery
            .attempts
            .iter()
            .map(|attempt| (attempt.attempt, attempt.error.as_deref()))
            .collect();
        assert_eq!(attempts, [(1, Some("first node")), (2, None)]);
    }

    #[test]
    fn signatures_verify_and_refuse_tampering() {
        let secret = subscription_secret(b"operator key", Uuid::from_u128(7));
        let body = br#"{"id":"x"}"#;
        let now: Timestamp = "2026-11-24T08:00:00Z".parse().unwrap();
        let header = signature_header(&secret, now.as_second(), body);
        let tolerance = SignedDuration::from_mins(5);
        assert_eq!(
            verify_signature(&secret, &header, body, now, tolerance),
            Ok(())
        );
        assert_eq!(
            verify_signature(&secret, &header, br#"{"id":"y"}"#, now, tolerance),
            Err("no v1 signature matches")
        );
        assert_eq!(
            verify_signature("other", &header, body, now, tolerance),
            Err("no v1 signature matches")
        );
        let later = now + SignedDuration::from_mins(6);
        assert_eq!(
            verify_signature(&secret, &header, body, later, tolerance),
            Err("timestamp outside the tolerance")
        );
        // RFC 4231 test case 2 pins the HMAC itself.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
