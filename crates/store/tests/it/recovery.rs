//! Losing the database: an unreachable server is a clear, transient error; connections killed by
//! the server (`pg_terminate_backend`) fail at most the appends in flight, and the store
//! reconnects by itself; nothing acknowledged is lost.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;
use store::scratch::ScratchDb;
use store::{AppendError, ExpectedVersion, Store, StoreConfig};
use uuid::Uuid;

use crate::{event, open, stream};

#[tokio::test]
async fn an_unreachable_server_is_a_clear_transient_error() {
    // Port 1 on loopback refuses connections at once.
    let error = Store::open_with(StoreConfig::new("postgres://postgres@127.0.0.1:1/test"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("the event store is unavailable: "),
        "{error}"
    );
}

#[tokio::test]
async fn a_bad_url_is_a_configuration_error() {
    let error = Store::open("mysql://localhost/x").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad store configuration: database url \"mysql://localhost/x\" must start with sqlite:// or \
         postgres:// (e.g. sqlite://docket-data/docket.db)"
    );
}

#[tokio::test]
async fn recovers_after_the_server_terminates_its_connections() {
    let Some(db) = ScratchDb::postgres().await else {
        return;
    };
    let store = open(&db).await;
    let mut subscription = store.subscribe(0);
    let mut acknowledged = Vec::new();
    for round in 0..6 {
        for i in 0..10 {
            let stream_id = format!("ticket-{round}-{i}");
            let command_id = Uuid::now_v7();
            // Retry with the same command id until acknowledged: a retry after an ambiguous
            // failure must not write twice.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let events = vec![event("E", json!({ "round": round, "i": i }))];
                match store
                    .append(
                        &stream(&stream_id),
                        ExpectedVersion::NoStream,
                        events,
                        command_id,
                    )
                    .await
                {
                    Ok(outcome) => {
                        acknowledged.push(outcome.last_position);
                        break;
                    }
                    Err(AppendError::Store(error)) if error.is_transient() && attempts < 50 => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(error) => panic!("append failed with a non-transient error: {error:?}"),
                }
            }
        }
        terminate_connections(&db).await;
    }
    // Every acknowledged append is there once, and the subscription continued across the kills.
    let all = store.read_all(0, 1000).await.unwrap();
    assert_eq!(all.len(), 60);
    let mut positions: Vec<u64> = all.iter().map(|record| record.position).collect();
    assert_eq!(positions, (1..=60).collect::<Vec<_>>());
    acknowledged.sort_unstable();
    positions.retain(|position| acknowledged.contains(position));
    assert_eq!(positions.len(), 60);
    for expected in 1..=60 {
        let record = loop {
            match tokio::time::timeout(Duration::from_secs(10), subscription.next())
                .await
                .unwrap()
            {
                Ok(record) => break record,
                Err(error) if error.is_transient() => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(error) => panic!("{error:?}"),
            }
        };
        assert_eq!(record.position, expected);
    }
    assert!(store
        .verify(1, None, &mut |_, _| {})
        .await
        .unwrap()
        .is_intact());
    drop(store);
    db.cleanup().await;
}

/// Kills every server connection the store holds, as a restart or a network cut would.
async fn terminate_connections(db: &ScratchDb) {
    let mut admin = db.postgres_connection().await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&db.config.application_name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the store had connections to kill");
    admin.close().await.unwrap();
}
