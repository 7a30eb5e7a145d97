//! The PostgreSQL backend. The group commit task writes each batch in one transaction that first
//! locks the single `log_head` row: that lock is held until the commit is visible, so global
//! positions (assigned as head + 1, + 2, …) are contiguous and become visible strictly in order,
//! across every node writing to the same database. A reader can therefore trust that nothing
//! will ever appear below a position it has seen; no sequence, no gaps, no horizon tracking.
//! Each commit notifies `docket_log`, so followers in other processes wake at once; they also
//! poll, so a lost notification only delays them.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Executor, PgConnection, Row};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::lookup;
use crate::migrate::{self, Migration};
use crate::plan::{Append, LogHead, Plan};
use crate::record::Record;
use crate::writer::{Backend, Batch, Written};
use crate::{RawRecord, RECORD_COLUMNS};

/// The channel commits notify, with the new head position as payload.
pub(crate) const CHANNEL: &str = "docket_log";
/// How long a caller waits for a connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the follower waits before reconnecting its LISTEN connection after a failure.
const LISTEN_RETRY: Duration = Duration::from_millis(500);

pub(crate) fn connect_options(
    url: &str,
    schema: Option<&str>,
    application_name: &str,
) -> Result<PgConnectOptions, StoreError> {
    let mut options = PgConnectOptions::from_str(url).map_err(|error| StoreError::Config {
        message: format!("postgres url: {error}"),
    })?;
    // Durable commits, whatever the server's default; and no JIT, which compiles plans for
    // milliseconds to save microseconds on the short statements of an event log.
    let mut settings = vec![
        ("synchronous_commit", "on".to_owned()),
        ("jit", "off".to_owned()),
    ];
    if let Some(schema) = schema {
        if schema.is_empty()
            || !schema
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            return Err(StoreError::Config {
                message: format!("schema {schema:?}: use ASCII letters, digits and _"),
            });
        }
        settings.push(("search_path", schema.to_owned()));
    }
    options = options
        .options(settings)
        .application_name(application_name)
        .disable_statement_logging();
    Ok(options)
}

pub(crate) async fn open(
    options: PgConnectOptions,
    readers_max: u32,
) -> Result<(PgPool, PgBackend, PgConnection), StoreError> {
    let mut conn = connect_writer(&options).await?;
    migrate::migrate_postgres(&mut conn, migrate::LOG_COMPONENT, migrate::LOG_POSTGRES).await?;
    let readers = PgPoolOptions::new()
        .max_connections(readers_max)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(true)
        .connect_with(options.clone())
        .await?;
    let backend = PgBackend {
        options: options.clone(),
    };
    Ok((readers, backend, conn))
}

pub(crate) async fn migrate(
    pool: &PgPool,
    component: &str,
    migrations: &[Migration],
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    migrate::migrate_postgres(&mut conn, component, migrations).await
}

fn decode(row: &PgRow) -> Result<Record, StoreError> {
    RawRecord {
        position: row.try_get(0)?,
        stream_id: row.try_get(1)?,
        category: row.try_get(2)?,
        stream_version: row.try_get(3)?,
        event_id: row.try_get(4)?,
        event_type: row.try_get(5)?,
        schema_version: i64::from(row.try_get::<i32, _>(6)?),
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
    pool: &PgPool,
    after: u64,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(crate::to_i64(after))
        .bind(crate::to_i64(limit as u64))
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn read_stream(
    pool: &PgPool,
    stream: &str,
    from_version: u64,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version >= $2
         ORDER BY stream_version LIMIT $3"
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
    pool: &PgPool,
    streams: &[&str],
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM events WHERE stream_id = ANY($1)
         ORDER BY stream_id, stream_version LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(streams)
        .bind(crate::to_i64(limit as u64))
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn find_command(
    pool: &PgPool,
    command_id: uuid::Uuid,
) -> Result<Option<(String, crate::AppendOutcome)>, StoreError> {
    let row = sqlx::query(
        "SELECT stream_id, stream_version + command_events - 1, position,
                position + command_events - 1
         FROM events WHERE command_id = $1 AND command_index = 0",
    )
    .bind(command_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(lookup::decode_command).transpose()
}

pub(crate) async fn head(pool: &PgPool) -> Result<LogHead, StoreError> {
    let row = sqlx::query("SELECT position, global_hash, recorded_at FROM log_head WHERE id = 1")
        .fetch_one(pool)
        .await?;
    lookup::decode_head(&row)
}

/// Follows `docket_log` notifications from every writer on the database and raises `committed`.
/// Runs until the store is dropped; connection losses are retried.
pub(crate) async fn follow(pool: PgPool, committed: watch::Sender<u64>) {
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            // Anything committed while we were not listening is found by the next read; a bump
            // of the watch value tells subscribers to look.
            committed.send_modify(|_| {});
            loop {
                match listener.try_recv().await? {
                    Some(notification) => {
                        if let Ok(position) = notification.payload().parse::<u64>() {
                            committed.send_if_modified(|current| {
                                let newer = position > *current;
                                if newer {
                                    *current = position;
                                }
                                newer
                            });
                        }
                    }
                    // The connection was lost and will be re-established by the next call.
                    None => committed.send_modify(|_| {}),
                }
            }
            #[allow(unreachable_code, reason = "the loop only ends with an error")]
            Ok::<(), sqlx::Error>(())
        };
        if let Err(error) = listener.await {
            tracing::warn!(%error, "event log listener lost its connection; retrying");
        }
        if committed.is_closed() {
            return;
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

/// The group commit task's way to the database; the connection is reopened after any failure
/// that may have left it in an unknown state.
#[derive(Debug)]
pub(crate) struct PgBackend {
    options: PgConnectOptions,
}

impl Backend for PgBackend {
    type Conn = PgConnection;

    async fn connect(&self) -> Result<PgConnection, StoreError> {
        connect_writer(&self.options).await
    }

    async fn write(mut conn: PgConnection, mut batch: Batch) -> Written<PgConnection> {
        let result = write_batch(&mut conn, &mut batch).await;
        let usable = match &result {
            Ok(_) => true,
            Err(_) => conn.execute("ROLLBACK").await.is_ok(),
        };
        Written {
            conn: usable.then_some(conn),
            batch,
            result,
        }
    }
}

async fn connect_writer(options: &PgConnectOptions) -> Result<PgConnection, StoreError> {
    match tokio::time::timeout(ACQUIRE_TIMEOUT, options.connect()).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::Unavailable {
            message: format!("no connection to PostgreSQL within {ACQUIRE_TIMEOUT:?}"),
        }),
    }
}

/// The full path, in three round trips: (1) begin, lock the head, read what the plan needs;
/// (2) insert the events, move the head and notify; (3) commit. The first is one
/// simple-protocol message of several statements, so the lookup runs after the lock is granted
/// and sees every commit before it; the stream and command ids it inlines are validated (a
/// restricted charset, and uuids).
///
/// The fast path is one round trip: planned from the writer's memory of the log head and the
/// stream heads, the batch is one statement (insert, move the head, notify) that commits by
/// itself. Memory made stale by another writer is caught by a unique index (another writer took
/// the next position, the stream version, or the command id), and the batch takes the full
/// path. Positions still become visible in order: a writer only writes position p + 1 once it
/// has seen p committed (it wrote p itself, or read it under the head's lock).
///
/// Returns whether the plan from memory committed; the batch holds the plan that did, and its
/// appends whatever happens.
async fn write_batch(conn: &mut PgConnection, batch: &mut Batch) -> Result<bool, StoreError> {
    if let Batch::Planned(plan) = batch {
        match insert(conn, plan).await {
            Ok(true) => return Ok(true),
            // Another writer moved the head, or wrote what memory thought free.
            Ok(false) => {}
            Err(error) if error.is_unique_violation() => {}
            Err(error) => return Err(error),
        }
    }
    let appends = batch.take_appends();
    let sql = lookup_sql(&appends);
    let looked_up = match conn.fetch_all(sqlx::raw_sql(&sql)).await {
        Ok(rows) => lookup::decode(&rows),
        Err(error) => Err(error.into()),
    };
    let plan = batch.plan_from_database(appends, looked_up)?;
    if !plan.rows.is_empty() && !insert(conn, plan).await? {
        return Err(StoreError::Corrupt {
            message: "the log head moved while this writer held its lock".to_owned(),
        });
    }
    conn.execute("COMMIT").await?;
    Ok(false)
}

/// The lookups are written as one index probe per id (`LATERAL` with `LIMIT` or an aggregate,
/// which the planner does not flatten): a join over the inlined ids is planned as a hash join
/// over the whole table while its statistics are young, which costs a scan per batch.
fn lookup_sql(appends: &[Append]) -> String {
    let mut stream_ids: Vec<&str> = appends
        .iter()
        .map(|append| append.stream.as_str())
        .collect();
    stream_ids.sort_unstable();
    stream_ids.dedup();
    // StreamId admits only [A-Za-z0-9_.:@-], so a quoted literal needs no escaping.
    let streams = stream_ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let commands = appends
        .iter()
        .map(|append| format!("'{}'", append.command_id))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "BEGIN;
        SELECT 'h', NULL::text, NULL::uuid, position, global_hash, recorded_at, NULL::bigint
        FROM log_head WHERE id = 1 FOR UPDATE;
        SELECT 's', s.id, NULL::uuid, e.stream_version, e.stream_hash, NULL::bigint, NULL::bigint
        FROM unnest(ARRAY[{streams}]::text[]) AS s(id)
        CROSS JOIN LATERAL (SELECT stream_version, stream_hash FROM events
                            WHERE stream_id = s.id ORDER BY stream_version DESC LIMIT 1) AS e
        UNION ALL
        SELECT 'c', e.stream_id, c.id, e.stream_version + e.command_events - 1, NULL::bytea,
               e.position, e.position + e.command_events - 1
        FROM unnest(ARRAY[{commands}]::uuid[]) AS c(id)
        CROSS JOIN LATERAL (SELECT stream_id, stream_version, position, command_events
                            FROM events WHERE command_id = c.id AND command_index = 0
                            LIMIT 1) AS e;"
    )
}

/// Inserts the batch's events, moves the head and notifies followers, in one statement: one
/// round trip whatever the batch size.
///
/// The head moves first, as a compare-and-set on the position the plan started from, and the
/// events are inserted only if it moved: a writer never holds event rows while it waits for the
/// head's lock, so two writers cannot deadlock (one waiting on the head, the other on a
/// position). Returns false when another writer moved the head since this one planned.
async fn insert(conn: &mut PgConnection, plan: &Plan) -> Result<bool, StoreError> {
    let rows = &plan.rows;
    let prev_position = rows
        .first()
        .map_or(plan.head.position, |row| row.position - 1);
    let moved = sqlx::query(
        "WITH h AS (
            UPDATE log_head SET position = $14, global_hash = $15, recorded_at = $16
            WHERE id = 1 AND position = $20
            RETURNING 1
         ), ev AS (
            INSERT INTO events (position, stream_id, category, stream_version, event_id, event_type,
                                schema_version, payload, metadata, command_id, recorded_at,
                                stream_hash, global_hash, command_index, command_events)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::uuid[],
                                 $6::text[], $7::int[], $8::text[], $9::text[], $10::uuid[],
                                 $11::bigint[], $12::bytea[], $13::bytea[], $18::int[], $19::int[])
            WHERE EXISTS (SELECT 1 FROM h)
         )
         SELECT pg_notify($17, $14::text) FROM h",
    )
    .bind(
        rows.iter()
            .map(|row| crate::to_i64(row.position))
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).0.stream.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).0.stream.category())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| crate::to_i64(row.stream_version))
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).1.event_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).1.event_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).1.schema_version as i32)
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).1.payload.get())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).1.metadata.get())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| plan.event_of(row).0.command_id)
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| row.recorded_at_micros)
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| &row.stream_hash[..])
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| &row.global_hash[..])
            .collect::<Vec<_>>(),
    )
    .bind(crate::to_i64(plan.head.position))
    .bind(&plan.head.global_hash[..])
    .bind(plan.head.recorded_at_micros)
    .bind(CHANNEL)
    .bind(
        rows.iter()
            .map(|row| row.command_index as i32)
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|row| row.command_events as i32)
            .collect::<Vec<_>>(),
    )
    .bind(crate::to_i64(prev_position))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(moved.is_some())
}
