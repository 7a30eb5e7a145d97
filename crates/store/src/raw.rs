//! The raw limit of the database under the store, for benchmarks: plain batched INSERTs of rows
//! shaped like the log's (same columns, same indexes, same durability settings) with no checks
//! and no hashing, in transactions of a given size. The store's figures are read against these.

use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection, Executor};
use uuid::Uuid;

use crate::error::StoreError;
use crate::{postgres, sqlite, StoreConfig};

const SQLITE_TABLE: &str = "
DROP TABLE IF EXISTS raw_bench_events;
CREATE TABLE raw_bench_events (
    position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, category TEXT NOT NULL,
    stream_version INTEGER NOT NULL, event_id BLOB NOT NULL, event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL, payload TEXT NOT NULL, metadata TEXT NOT NULL,
    command_id BLOB NOT NULL, recorded_at INTEGER NOT NULL, stream_hash BLOB NOT NULL,
    global_hash BLOB NOT NULL, command_index INTEGER NOT NULL, command_events INTEGER NOT NULL);
CREATE UNIQUE INDEX raw_bench_events_stream ON raw_bench_events (stream_id, stream_version);
CREATE UNIQUE INDEX raw_bench_events_command ON raw_bench_events (command_id) WHERE command_index = 0;";

const POSTGRES_TABLE: &str = "
DROP TABLE IF EXISTS raw_bench_events;
CREATE TABLE raw_bench_events (
    position BIGINT PRIMARY KEY, stream_id TEXT NOT NULL, category TEXT NOT NULL,
    stream_version BIGINT NOT NULL, event_id UUID NOT NULL, event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL, payload TEXT NOT NULL, metadata TEXT NOT NULL,
    command_id UUID NOT NULL, recorded_at BIGINT NOT NULL, stream_hash BYTEA NOT NULL,
    global_hash BYTEA NOT NULL, command_index INTEGER NOT NULL, command_events INTEGER NOT NULL);
CREATE UNIQUE INDEX raw_bench_events_stream ON raw_bench_events (stream_id, stream_version);
CREATE UNIQUE INDEX raw_bench_events_command ON raw_bench_events (command_id) WHERE command_index = 0;";

/// Rows per multi-row INSERT on SQLite, as the store uses.
const SQLITE_INSERT_ROWS_MAX: usize = 64;

/// What one raw run measured.
#[derive(Clone, Debug)]
pub struct RawFigures {
    pub rows: u64,
    pub elapsed: Duration,
    /// Latency of each transaction (one per batch).
    pub commit_latencies: Vec<Duration>,
}

impl RawFigures {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64()
    }
}

/// Inserts `batches` transactions of `batch_rows` rows each into a scratch table beside the log,
/// then drops the table.
pub async fn batched_inserts(
    config: &StoreConfig,
    batch_rows: usize,
    batches: usize,
    payload: &str,
    metadata: &str,
) -> Result<RawFigures, StoreError> {
    let batch_rows = batch_rows.max(1);
    let hash = [7u8; 32];
    let mut position: i64 = 0;
    let mut latencies = Vec::with_capacity(batches);
    let row_values = |position: &mut i64| {
        *position += 1;
        (
            *position,
            format!("raw-{}", Uuid::now_v7().simple()),
            Uuid::now_v7(),
        )
    };
    if config.url.starts_with("sqlite:") {
        let mut conn = sqlite::connect_options(&config.url)?.connect().await?;
        sqlx::raw_sql(SQLITE_TABLE).execute(&mut conn).await?;
        let started = Instant::now();
        for _ in 0..batches {
            let rows: Vec<_> = (0..batch_rows).map(|_| row_values(&mut position)).collect();
            let begun = Instant::now();
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut conn).await?;
            for chunk in rows.chunks(SQLITE_INSERT_ROWS_MAX) {
                let values =
                    vec!["(?,?,'raw',1,?,'RawEvent',1,?,?,?,0,?,?,0,1)"; chunk.len()].join(",");
                let sql = format!("INSERT INTO raw_bench_events VALUES {values}");
                let mut query = sqlx::query(&sql);
                for (position, stream_id, id) in chunk {
                    query = query
                        .bind(*position)
                        .bind(stream_id.as_str())
                        .bind(*id)
                        .bind(payload)
                        .bind(metadata)
                        .bind(*id)
                        .bind(&hash[..])
                        .bind(&hash[..]);
                }
                query.execute(&mut conn).await?;
            }
            sqlx::raw_sql("COMMIT").execute(&mut conn).await?;
            latencies.push(begun.elapsed());
        }
        let elapsed = started.elapsed();
        sqlx::raw_sql("DROP TABLE raw_bench_events")
            .execute(&mut conn)
            .await?;
        Ok(RawFigures {
            rows: position as u64,
            elapsed,
            commit_latencies: latencies,
        })
    } else {
        let options =
            postgres::connect_options(&config.url, config.schema.as_deref(), "docket-bench-raw")?;
        let mut conn = options.connect().await?;
        conn.execute(POSTGRES_TABLE).await?;
        let started = Instant::now();
        for _ in 0..batches {
            let rows: Vec<_> = (0..batch_rows).map(|_| row_values(&mut position)).collect();
            let begun = Instant::now();
            let mut tx = conn.begin().await?;
            sqlx::query(
                "INSERT INTO raw_bench_events SELECT p, s, 'raw', 1, i, 'RawEvent', 1, $4, $5, i, 0, $6, $6, 0, 1
                 FROM unnest($1::bigint[], $2::text[], $3::uuid[]) AS r(p, s, i)",
            )
            .bind(rows.iter().map(|row| row.0).collect::<Vec<_>>())
            .bind(rows.iter().map(|row| row.1.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|row| row.2).collect::<Vec<_>>())
            .bind(payload)
            .bind(metadata)
            .bind(&hash[..])
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            latencies.push(begun.elapsed());
        }
        let elapsed = started.elapsed();
        conn.execute("DROP TABLE raw_bench_events").await?;
        Ok(RawFigures {
            rows: position as u64,
            elapsed,
            commit_latencies: latencies,
        })
    }
}
