//! The store's conformance suite. Every test runs the same scenario against SQLite and, when
//! `DOCKET_TEST_DATABASE_URL` is set (always under CI), against PostgreSQL in a fresh schema.
//!
//! - `append`: versions, positions, conflicts, idempotency, group commit, limits.
//! - `follow`: catch-up-then-live subscriptions, also across store instances (nodes).
//! - `tamper`: the hash chains detect a changed byte, a deleted row, swapped rows.
//! - `recovery`: a lost database connection is a clear error, and the store recovers.

mod append;
mod follow;
mod recovery;
mod tamper;

use serde_json::value::{to_raw_value, RawValue};
use store::scratch::ScratchDb;
use store::{ExpectedVersion, NewEvent, Store, StreamId};
use uuid::Uuid;

/// Runs `scenario` once per backend with a fresh database, and cleans up after it.
pub async fn each_backend<F, Fut>(scenario: F)
where
    F: Fn(ScratchDb) -> Fut,
    Fut: std::future::Future<Output = ScratchDb>,
{
    for db in ScratchDb::all().await {
        let db = scenario(db).await;
        db.cleanup().await;
    }
}

pub async fn open(db: &ScratchDb) -> Store {
    Store::open_with(db.config.clone())
        .await
        .expect("opening the scratch store")
}

pub fn json(value: serde_json::Value) -> Box<RawValue> {
    to_raw_value(&value).unwrap()
}

pub fn event(event_type: &str, payload: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: json(payload),
        metadata: json(serde_json::json!({"actor": "test"})),
    }
}

pub fn stream(id: &str) -> StreamId {
    StreamId::new(id).unwrap()
}

/// Appends one event with a fresh command id and returns its position.
pub async fn append_one(store: &Store, stream_id: &str, expected: ExpectedVersion) -> u64 {
    store
        .append(
            &stream(stream_id),
            expected,
            vec![event("Happened", serde_json::json!({}))],
            Uuid::now_v7(),
        )
        .await
        .unwrap()
        .last_position
}
