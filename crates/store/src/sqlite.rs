//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, one writer connection owned
//! by the group commit task (every batch is one `BEGIN IMMEDIATE` transaction and one fsync), and
//! a small pool of read-only connections for reads.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Executor, Row, SqliteConnection};

use crate::error::StoreError;
use crate::lookup;
use crate::migrate::{self, Migration};
use crate::plan::{Append, Known, LogHead, Plan};
use crate::record::Record;
use crate::writer::{Backend, Batch, Written};
use crate::{RawRecord, INSERT_COLUMNS, RECORD_COLUMNS};

/// How long a statement waits for another process's write lock before failing as unavailable.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite's page cache of the writer's connection, in KiB (negative means KiB to SQLite; the
/// readers keep the default: in WAL mode a reader's cache is dropped whenever the WAL moves, so
/// it would buy little for its memory). The default, 2 MiB,
/// holds a sliver of the indexes an append touches (stream, command id): appends to existing
/// streams spread over hundreds of thousands of tickets read most index pages back from the OS
/// on every insert.
const CACHE_SIZE_PRAGMA: &str = "-65536";
/// Rows per multi-row INSERT statement: 13 parameters each stays far below SQLite's limit.
const INSERT_ROWS_MAX: usize = 64;

pub(crate) fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    let options = SqliteConnectOptions::from_str(url).map_err(|error| StoreError::Config {
        message: format!("sqlite url {url:?}: {error}"),
    })?;
    if let Some(parent) = options.get_filename().parent() {
        if !parent.as_os_str().is_empty() && !Path::new(parent).exists() {
            std::fs::create_dir_all(parent).map_err(|error| StoreError::Config {
                message: format!("creating directory {}: {error}", parent.display()),
            })?;
        }
    }
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .disable_statement_logging())
}

pub(crate) async fn open(
    options: SqliteConnectOptions,
    readers_max: u32,
) -> Result<(SqlitePool, SqliteBackend, SqliteConnection), StoreError> {
    let writer_options = options.clone().pragma("cache_size", CACHE_SIZE_PRAGMA);
    let mut conn = writer_options.connect().await?;
    migrate::migrate_sqlite(&mut conn, migrate::LOG_COMPONENT, migrate::LOG_SQLITE).await?;
    let readers = SqlitePoolOptions::new()
        .max_connections(readers_max)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone().read_only(true))
        .await?;
    Ok((
        readers,
        SqliteBackend {
            options: writer_options,
        },
        conn,
    ))
}

pub(crate) async fn migrate(
    pool: &SqlitePool,
    component: &str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    // The readers are read-only, so a migration opens a writable connection of its own.
    let options = pool.connect_options().as_ref().clone().read_only(false);
    let mut conn = options.connect().await?;
    migrate::migrate_sqlite(&mut conn, component, migrations).await
}

fn decode(row: &SqliteRow) -> Result<Record, StoreError> {
    RawRecord {
        position: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        category: row.try_get(2)?,
        stream_version: row.try_get(3)?,
        event_id: row.try_get(4)?,
        event_type: row.try_get(5)?,
        schema_version: row.try_get(6)?,
        payload: row.try_get(7)?,
        metadata: row.try_get(8)?,
        command_id: row.try_get(9)?,
        recorded_at: row.try_get(10)?,
        stream_hash: row.try_get(11)?,
        global_hash: row.try_get(12)?,
    }
    .into_record()
}

pub(crate) async fn read_all(
    pool: &SqlitePool,
    after: u64,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
    );
    let rows = sqlx::query(&sql)
        .bind(crate::to_i64(after))
        .bind(crate::to_i64(limit as u64))
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn read_stream(
    pool: &SqlitePool,
    stream: &str,
    from_version: u64,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE stream_id = ?1 AND stream_version >= ?2
         ORDER BY stream_version LIMIT ?3"
    );
    let rows = sqlx::query(&sql)
        .bind(stream)
        .bind(crate::to_i64(from_version))
        .bind(crate::to_i64(limit as u64))
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn read_streams(
    pool: &SqlitePool,
    streams: &[&str],
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let marks = vec!["?"; streams.len()].join(", ");
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE stream_id IN ({marks})
         ORDER BY stream_id, stream_version LIMIT {limit}"
    );
    let mut query = sqlx::query(&sql);
    for stream in streams {
        query = query.bind(*stream);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn find_command(
    pool: &SqlitePool,
    command_id: uuid::Uuid,
) -> Result<Option<(String, crate::AppendOutcome)>, StoreError> {
    let row = sqlx::query(
        "SELECT stream_id, stream_version + command_events - 1, position,
                position + command_events - 1
         FROM events WHERE command_id = ?1 AND command_index = 0",
    )
    .bind(command_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(lookup::decode_command).transpose()
}

pub(crate) async fn head(pool: &SqlitePool) -> Result<LogHead, StoreError> {
    let row = sqlx::query("SELECT position, global_hash, recorded_at FROM log_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    lookup::decode_head(&row)
}

/// The group commit task's way to the database. The connection is reopened after a failure
/// that may have left it unusable, so a lost file handle or a crashed worker does not stop the
/// log for good.
#[derive(Debug)]
pub(crate) struct SqliteBackend {
    options: SqliteConnectOptions,
}

impl Backend for SqliteBackend {
    type Conn = SqliteConnection;

    async fn connect(&self) -> Result<SqliteConnection, StoreError> {
        Ok(self.options.connect().await?)
    }

    async fn write(mut conn: SqliteConnection, mut batch: Batch) -> Written<SqliteConnection> {
        let result = write_batch(&mut conn, &mut batch).await;
        // Every failure ends the transaction here: the inserts keep no statement journal (`OR
        // ROLLBACK`), so an error that SQLite undoes for the statement alone (busy, too big)
        // leaves the rows the failing INSERT had written in the open transaction; nothing may
        // run in it after an error.
        let usable = match &result {
            Ok(_) => true,
            Err(_) => roll_back(&mut conn).await,
        };
        Written {
            conn: usable.then_some(conn),
            batch,
            result,
        }
    }
}

/// Rolls back what a failed batch left open; returns whether the connection can go on. It can
/// when the ROLLBACK succeeds or finds no transaction (a constraint under `OR ROLLBACK`, a full
/// disk or an I/O error ended it already); a connection whose ROLLBACK failed otherwise may be
/// in any state, and is dropped and opened again for the next batch.
async fn roll_back(conn: &mut SqliteConnection) -> bool {
    match conn.execute("ROLLBACK").await {
        Ok(_) => true,
        // SQLITE_ERROR, "cannot rollback - no transaction is active".
        Err(sqlx::Error::Database(error)) => {
            error.code().as_deref() == Some("1")
                && error.message().contains("no transaction is active")
        }
        Err(_) => false,
    }
}

/// Takes the write lock, then reads the head, the batch's streams and its command ids.
const LOOKUP_SQL: &str = "BEGIN IMMEDIATE;
    SELECT 'h', NULL, NULL, position, global_hash, recorded_at, NULL FROM log_head WHERE id = 1
    UNION ALL
    SELECT 's', j.value, NULL, e.stream_version, e.stream_hash, NULL, NULL
    FROM json_each(?1) AS j JOIN events AS e ON e.stream_id = j.value
     AND e.stream_version = (SELECT MAX(stream_version) FROM events WHERE stream_id = j.value)
    UNION ALL
    SELECT 'c', stream_id, command_id, stream_version + command_events - 1, NULL, position,
           position + command_events - 1
    FROM events WHERE command_index = 0
     AND command_id IN (SELECT unhex(value) FROM json_each(?2))";

/// One batch in one call to SQLite's worker thread when it was planned from memory (begin,
/// insert, move the head, commit); otherwise, or when a unique index says memory was stale, in
/// two: begin and read the heads, then insert, move the head and commit (several statements
/// travel in one call, their positional parameters bound in turn). Returns whether the plan
/// from memory committed; the batch holds the plan that did, and its appends whatever happens.
async fn write_batch(conn: &mut SqliteConnection, batch: &mut Batch) -> Result<bool, StoreError> {
    if let Batch::Planned(plan) = batch {
        match insert_and_commit(conn, plan, true).await {
            Ok(()) => return Ok(true),
            // `OR ROLLBACK` ended the transaction with the statement.
            Err(error) if error.is_unique_violation() => {}
            Err(error) => return Err(error),
        }
    }
    let appends = batch.take_appends();
    let looked_up = look_up(conn, &appends).await;
    let plan = batch.plan_from_database(appends, looked_up)?;
    if plan.rows.is_empty() {
        conn.execute("COMMIT").await?;
    } else {
        insert_and_commit(conn, plan, false).await?;
    }
    Ok(false)
}

/// Takes the write lock, then reads what the batch's plan needs.
async fn look_up(
    conn: &mut SqliteConnection,
    appends: &[Append],
) -> Result<(LogHead, Known), StoreError> {
    let mut stream_ids: Vec<&str> = appends
        .iter()
        .map(|append| append.stream.as_str())
        .collect();
    stream_ids.sort_unstable();
    stream_ids.dedup();
    let command_ids: Vec<String> = appends
        .iter()
        .map(|append| append.command_id.simple().to_string())
        .collect();
    let lookup = sqlx::query(LOOKUP_SQL)
        .bind(serde_json::to_string(&stream_ids).expect("strings serialize"))
        .bind(serde_json::to_string(&command_ids).expect("strings serialize"));
    let rows = conn.fetch_all(lookup).await?;
    lookup::decode(&rows)
}

fn values_sql(columns: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(","));
    vec![row; rows].join(",")
}

async fn insert_and_commit(
    conn: &mut SqliteConnection,
    plan: &Plan,
    begin: bool,
) -> Result<(), StoreError> {
    let mut sql = String::from(if begin { "BEGIN IMMEDIATE;\n" } else { "" });
    // `OR ROLLBACK`: a unique index that stops a row ends the whole transaction (the batch is
    // then planned again or fails as a whole), so SQLite keeps no statement journal to undo
    // one statement alone; with the default `ABORT` it copied every page a multi-row INSERT
    // touched into one first (8% of the writer thread in a burst's profile).
    for chunk in plan.rows.chunks(INSERT_ROWS_MAX) {
        sql.push_str(&format!(
            "INSERT OR ROLLBACK INTO events ({INSERT_COLUMNS}) VALUES {};\n",
            values_sql(15, chunk.len())
        ));
    }
    sql.push_str(
        "UPDATE log_head SET position = ?, global_hash = ?, recorded_at = ? WHERE id = 1;\nCOMMIT",
    );
    let mut query = sqlx::query(&sql);
    for row in &plan.rows {
        let (append, event) = plan.event_of(row);
        query = query
            .bind(crate::to_i64(row.position))
            .bind(append.stream.as_str())
            .bind(append.stream.category())
            .bind(crate::to_i64(row.stream_version))
            .bind(event.event_id)
            .bind(event.event_type.as_str())
            .bind(i64::from(event.schema_version))
            .bind(event.payload.get())
            .bind(event.metadata.get())
            .bind(append.command_id)
            .bind(row.recorded_at_micros)
            .bind(&row.stream_hash[..])
            .bind(&row.global_hash[..])
            .bind(i64::from(row.command_index))
            .bind(i64::from(row.command_events));
    }
    let query = query
        .bind(crate::to_i64(plan.head.position))
        .bind(&plan.head.global_hash[..])
        .bind(plan.head.recorded_at_micros);
    conn.execute(query).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;

    async fn count(conn: &mut SqliteConnection) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .expect("count")
    }

    /// After any failure the writer rolls back; a transaction that `OR ROLLBACK` (or SQLite
    /// itself) already ended leaves the connection usable, not dropped.
    #[tokio::test]
    async fn a_connection_whose_transaction_already_ended_is_kept() {
        let mut conn = SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory SQLite");
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .expect("table");
        // No transaction at all.
        assert!(roll_back(&mut conn).await);
        // An open transaction is rolled back.
        conn.execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .await
            .expect("insert");
        assert!(roll_back(&mut conn).await);
        assert_eq!(count(&mut conn).await, 0);
        // A conflict under OR ROLLBACK ends the transaction with the statement: nothing of it
        // is kept, the statements after it do not run, and the connection goes on.
        let conflict = conn
            .execute(
                "BEGIN IMMEDIATE; INSERT OR ROLLBACK INTO t VALUES (2), (3), (2); \
                 INSERT INTO t VALUES (4); COMMIT",
            )
            .await
            .map_err(StoreError::from)
            .expect_err("a duplicate key");
        assert!(conflict.is_unique_violation(), "{conflict}");
        assert!(roll_back(&mut conn).await);
        assert_eq!(count(&mut conn).await, 0);
        conn.execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (5); COMMIT")
            .await
            .expect("a new transaction on the same connection");
        assert_eq!(count(&mut conn).await, 1);
    }
}
