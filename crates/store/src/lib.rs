//! The append-only event log. It owns the log and knows nothing of tickets: streams of opaque
//! JSON events with per-stream optimistic concurrency, a contiguous global order that subscribers
//! can trust, idempotent appends per command id, group commit, and two SHA-256 hash chains (per
//! stream and over the whole log) that make tampering detectable. SQLite is the embedded default;
//! PostgreSQL is for scale. `docs/HASH_CHAIN.md` specifies the chains for auditors.

mod error;
pub mod hash;
mod heads;
mod lookup;
mod migrate;
mod packed;
mod plan;
mod postgres;
pub mod raw;
mod record;
pub mod scratch;
mod sqlite;
mod stepped;
mod subscribe;
mod verify;
mod writer;

use std::sync::Arc;

use jiff::Timestamp;
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use crate::error::{AppendError, InvalidInput, StoreError};
pub use crate::migrate::Migration;
pub use crate::packed::{RecordPage, RecordRef, PACKED_CHUNK_MAX};
pub use crate::record::{
    AppendOutcome, ExpectedVersion, Hash, NewEvent, Record, StreamId, APPEND_EVENTS_MAX,
    CATEGORY_BYTES_MAX, EVENT_BYTES_MAX, EVENT_TYPE_BYTES_MAX, READ_LIMIT_MAX, STREAM_ID_BYTES_MAX,
};
pub use crate::subscribe::{SharedRecord, Subscription};
pub use crate::verify::{ChainBreak, VerifyReport};
pub use crate::writer::{
    WriterStats, APPEND_QUEUE_MAX, BATCH_APPENDS_MAX, BATCH_EVENTS_MAX, BATCH_SIZE_BUCKETS,
};

/// Where the embedded default keeps its file, relative to the working directory.
/// Most streams one `read_streams` query names.
pub const READ_STREAMS_MAX: usize = 256;

/// An append queued by `Store::append_queued`; its outcome arrives once its batch commits.
#[derive(Debug)]
pub struct QueuedAppend(oneshot::Receiver<Result<AppendOutcome, AppendError>>);

impl QueuedAppend {
    /// Waits for the commit (or failure) of the batch that holds this append.
    pub async fn outcome(self) -> Result<AppendOutcome, AppendError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

pub const DEFAULT_URL: &str = "sqlite://docket-data/docket.db";

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (created on first use) or `postgres://user@host/db`.
    pub url: String,
    /// PostgreSQL only: the schema to use (tests give each run its own).
    pub schema: Option<String>,
    /// Connections for reads.
    pub readers_max: u32,
    /// PostgreSQL only: shows in `pg_stat_activity`.
    pub application_name: String,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            url: url.into(),
            schema: None,
            readers_max: 8,
            application_name: "docket".to_owned(),
        }
    }
}

/// Which database backs the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
enum Readers {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug)]
struct Inner {
    readers: Readers,
    queue: mpsc::Sender<writer::Msg>,
    committed: watch::Sender<u64>,
    tail: writer::Tail,
    stats: Arc<WriterStats>,
    follower: Option<JoinHandle<()>>,
    /// SQLite only: the replay reader (`read_all_packed`).
    stepped: Option<stepped::SteppedReader>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

/// A handle to the event log; cheap to clone, shared by every task of a process.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (and creates or migrates) the store at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(StoreConfig::new(url)).await
    }

    pub async fn open_with(config: StoreConfig) -> Result<Store, StoreError> {
        let (queue, queue_rx) = mpsc::channel(APPEND_QUEUE_MAX);
        let stats = Arc::new(WriterStats::default());
        let (tail, _) = broadcast::channel(writer::TAIL_BATCHES_MAX);
        let url = config.url.as_str();
        if url.starts_with("sqlite:") {
            let options = sqlite::connect_options(url)?;
            let stepped = stepped::SteppedReader::new(options.get_filename().to_path_buf());
            let (readers, backend, conn) = sqlite::open(options, config.readers_max).await?;
            let position = sqlite::head(&readers).await?.position;
            let (committed, _) = watch::channel(position);
            tokio::spawn(writer::run(
                backend,
                conn,
                queue_rx,
                committed.clone(),
                tail.clone(),
                stats.clone(),
            ));
            let inner = Inner {
                readers: Readers::Sqlite(readers),
                queue,
                committed,
                tail,
                stats,
                follower: None,
                stepped: Some(stepped),
            };
            Ok(Store {
                inner: Arc::new(inner),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options =
                postgres::connect_options(url, config.schema.as_deref(), &config.application_name)?;
            let (readers, backend, conn) = postgres::open(options, config.readers_max).await?;
            let position = postgres::head(&readers).await?.position;
            let (committed, _) = watch::channel(position);
            tokio::spawn(writer::run(
                backend,
                conn,
                queue_rx,
                committed.clone(),
                tail.clone(),
                stats.clone(),
            ));
            let follower = tokio::spawn(postgres::follow(readers.clone(), committed.clone()));
            let inner = Inner {
                readers: Readers::Postgres(readers),
                queue,
                committed,
                tail,
                stats,
                follower: Some(follower),
                stepped: None,
            };
            Ok(Store {
                inner: Arc::new(inner),
            })
        } else {
            Err(StoreError::Config {
                message: format!(
                    "database url {url:?} must start with sqlite:// or postgres:// (e.g. {DEFAULT_URL})"
                ),
            })
        }
    }

    pub fn backend(&self) -> BackendKind {
        match self.inner.readers {
            Readers::Sqlite(_) => BackendKind::Sqlite,
            Readers::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Appends `events` to `stream` if its version matches `expected`, durably, in one group
    /// commit. Repeating a `command_id` returns the first outcome (with `duplicate: true`) and
    /// writes nothing, across restarts. A conflict writes nothing and carries the actual version.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        command_id: Uuid,
    ) -> Result<AppendOutcome, AppendError> {
        self.append_queued(stream, expected, events, command_id)
            .await?
            .outcome()
            .await
    }

    /// As `append`, but returns once the append is queued for the writer, without waiting for
    /// its commit: a caller with many appends (the scheduler's burst of fires, to many streams)
    /// queues them back to back, so group commit writes them in as few transactions as its
    /// bounds allow (`BATCH_APPENDS_MAX`, `BATCH_EVENTS_MAX`), in the order queued, each with
    /// its own expected version and command id, then awaits each outcome. Nothing else differs:
    /// versions, the hash chain and command id idempotency are the writer's, as for `append`.
    pub async fn append_queued(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        command_id: Uuid,
    ) -> Result<QueuedAppend, AppendError> {
        record::validate_append(&events)?;
        let append = plan::Append {
            stream: stream.clone(),
            expected,
            events,
            command_id,
        };
        let (reply, outcome) = oneshot::channel();
        self.inner
            .queue
            .send(writer::Msg::Append(append, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(QueuedAppend(outcome))
    }

    /// The events of each of `streams` (whole streams, in stream then version order), in one
    /// query per `READ_STREAMS_MAX` streams, at most `limit` records (clamped to
    /// `READ_LIMIT_MAX`). When the result has `limit` records, the last streams may be cut
    /// short or missing: the caller reads those on (`read_stream` from the version it has).
    pub async fn read_streams(
        &self,
        streams: &[StreamId],
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let limit = limit.min(READ_LIMIT_MAX);
        let mut records = Vec::new();
        for chunk in streams.chunks(READ_STREAMS_MAX) {
            if records.len() >= limit {
                break;
            }
            let ids: Vec<&str> = chunk.iter().map(StreamId::as_str).collect();
            let left = limit - records.len();
            records.extend(match &self.inner.readers {
                Readers::Sqlite(pool) => sqlite::read_streams(pool, &ids, left).await?,
                Readers::Postgres(pool) => postgres::read_streams(pool, &ids, left).await?,
            });
        }
        Ok(records)
    }

    /// Tells the writer the heads of streams a caller has just read (the last record of each,
    /// in any order), because it is about to append to them: their appends then take the group
    /// commit's fast path (planned from memory) instead of reading the heads back. Only a hint:
    /// a head that is no longer the stream's costs a plan from the database, never a wrong
    /// append. Waits for room in the writer's queue.
    pub async fn hint_stream_heads(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut heads: std::collections::HashMap<&str, (u64, Hash)> =
            std::collections::HashMap::new();
        for record in records {
            let head = heads
                .entry(record.stream_id.as_str())
                .or_insert((record.stream_version, record.stream_hash));
            if head.0 < record.stream_version {
                *head = (record.stream_version, record.stream_hash);
            }
        }
        let heads = heads
            .into_iter()
            .map(|(stream, (version, hash))| (stream.to_owned(), version, hash))
            .collect();
        self.inner
            .queue
            .send(writer::Msg::Hint(heads))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Waits until every append queued before this call has been committed or has failed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (done, flushed) = oneshot::channel();
        self.inner
            .queue
            .send(writer::Msg::Flush(done))
            .await
            .map_err(|_| StoreError::Closed)?;
        flushed.await.map_err(|_| StoreError::Closed)
    }

    /// The stream and outcome of an earlier append with this command id, if there was one: a
    /// caller can answer a retried request without deciding it again.
    pub async fn find_command(
        &self,
        command_id: Uuid,
    ) -> Result<Option<(String, AppendOutcome)>, StoreError> {
        match &self.inner.readers {
            Readers::Sqlite(pool) => sqlite::find_command(pool, command_id).await,
            Readers::Postgres(pool) => postgres::find_command(pool, command_id).await,
        }
    }

    /// Events of one stream with `stream_version >= from_version`, in version order.
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let limit = limit.min(READ_LIMIT_MAX);
        match &self.inner.readers {
            Readers::Sqlite(pool) => {
                sqlite::read_stream(pool, stream.as_str(), from_version, limit).await
            }
            Readers::Postgres(pool) => {
                postgres::read_stream(pool, stream.as_str(), from_version, limit).await
            }
        }
    }

    /// Events with `position > after`, in global order, at most `limit` (clamped to
    /// `READ_LIMIT_MAX`). Positions are contiguous: the result never has a hole that a later
    /// read would fill.
    pub async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let limit = limit.min(READ_LIMIT_MAX);
        match &self.inner.readers {
            Readers::Sqlite(pool) => sqlite::read_all(pool, after, limit).await,
            Readers::Postgres(pool) => postgres::read_all(pool, after, limit).await,
        }
    }

    /// Like `read_all`, for replaying the log into read models: what a fold needs of each
    /// record (no ids, no hashes), in one page. The fastest way to read the log: on SQLite,
    /// rows stepped on a blocking thread through `rusqlite` (see `stepped`); on PostgreSQL, the
    /// ordinary read.
    pub async fn read_all_packed(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<RecordPage, StoreError> {
        let limit = limit.min(READ_LIMIT_MAX);
        match (&self.inner.readers, &self.inner.stepped) {
            (Readers::Sqlite(_), Some(stepped)) => stepped.read(after, limit).await,
            (Readers::Sqlite(pool), None) => packed::read_sqlite(pool, after, limit).await,
            (Readers::Postgres(pool), _) => packed::read_postgres(pool, after, limit).await,
        }
    }

    /// `read_all_packed` as it was before the stepped reader: on SQLite, records packed by
    /// the database into a few sqlx rows (see `packed`); on PostgreSQL the same as
    /// `read_all_packed`. Kept so that the replay benchmark prints both reads side by side.
    pub async fn read_all_concat(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<RecordPage, StoreError> {
        let limit = limit.min(READ_LIMIT_MAX);
        match &self.inner.readers {
            Readers::Sqlite(pool) => packed::read_sqlite(pool, after, limit).await,
            Readers::Postgres(pool) => packed::read_postgres(pool, after, limit).await,
        }
    }

    /// The position and global hash of the last record (0 and the genesis hash when empty).
    pub async fn head(&self) -> Result<(u64, Hash), StoreError> {
        let head = self.log_head().await?;
        Ok((head.position, head.global_hash))
    }

    async fn log_head(&self) -> Result<plan::LogHead, StoreError> {
        match &self.inner.readers {
            Readers::Sqlite(pool) => sqlite::head(pool).await,
            Readers::Postgres(pool) => postgres::head(pool).await,
        }
    }

    /// The highest position this process knows to be committed (its own appends, and on
    /// PostgreSQL other nodes' appends as notified); a hint for waiting, not a read.
    pub fn committed_position(&self) -> u64 {
        *self.inner.committed.borrow()
    }

    /// Records after `after`, catching up from the log and then following new appends live.
    pub fn subscribe(&self, after: u64) -> Subscription {
        Subscription::new(
            self.clone(),
            after,
            self.inner.committed.subscribe(),
            self.inner.tail.subscribe(),
        )
    }

    /// Walks both hash chains over `from..=to` (`to` = the head when `None`) and reports the
    /// first broken record. `progress` is called with (checked, total) as the walk advances.
    pub async fn verify(
        &self,
        from: u64,
        to: Option<u64>,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<VerifyReport, StoreError> {
        verify::verify(self, from, to, progress).await
    }

    /// Applies another component's append-only migrations (the read models keep their tables
    /// in the same database).
    pub async fn migrate(
        &self,
        component: &str,
        sqlite_migrations: &[Migration],
        postgres_migrations: &[Migration],
    ) -> Result<(), StoreError> {
        match &self.inner.readers {
            Readers::Sqlite(pool) => sqlite::migrate(pool, component, sqlite_migrations).await,
            Readers::Postgres(pool) => {
                postgres::migrate(pool, component, postgres_migrations).await
            }
        }
    }

    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// The PostgreSQL read pool, for components that keep tables beside the log.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.inner.readers {
            Readers::Postgres(pool) => Some(pool),
            Readers::Sqlite(_) => None,
        }
    }

    /// The SQLite read pool (read-only connections).
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.inner.readers {
            Readers::Sqlite(pool) => Some(pool),
            Readers::Postgres(_) => None,
        }
    }
}

/// The columns an insert writes: a record's, and the two that place it in its append.
pub(crate) const INSERT_COLUMNS: &str = "position, stream_id, category, stream_version, event_id, \
    event_type, schema_version, payload, metadata, command_id, recorded_at, stream_hash, \
    global_hash, command_index, command_events";

/// The columns of a record, in the order both backends select them.
pub(crate) const RECORD_COLUMNS: &str = "position, stream_id, category, stream_version, event_id, \
    event_type, schema_version, payload, metadata, command_id, recorded_at, stream_hash, global_hash";

/// A record as the database returns it, before range checks.
pub(crate) struct RawRecord {
    pub position: i64,
    pub stream_id: String,
    pub category: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i64,
    pub payload: String,
    pub metadata: String,
    pub command_id: Uuid,
    pub recorded_at: i64,
    pub stream_hash: Vec<u8>,
    pub global_hash: Vec<u8>,
}

impl RawRecord {
    pub(crate) fn into_record(self) -> Result<Record, StoreError> {
        Ok(Record {
            position: to_u64(self.position)?,
            stream_id: self.stream_id,
            category: self.category,
            stream_version: to_u64(self.stream_version)?,
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: u32::try_from(self.schema_version).map_err(|_| {
                StoreError::Corrupt {
                    message: format!("schema version {} out of range", self.schema_version),
                }
            })?,
            payload: self.payload,
            metadata: self.metadata,
            command_id: self.command_id,
            recorded_at: Timestamp::from_microsecond(self.recorded_at).map_err(|error| {
                StoreError::Corrupt {
                    message: format!("recorded_at {}: {error}", self.recorded_at),
                }
            })?,
            stream_hash: to_hash(self.stream_hash)?,
            global_hash: to_hash(self.global_hash)?,
        })
    }
}

pub(crate) fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        message: format!("negative position or version {value}"),
    })
}

/// Positions and versions stay far below `i64::MAX`; the database columns are signed.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_hash(bytes: Vec<u8>) -> Result<Hash, StoreError> {
    Hash::try_from(bytes.as_slice()).map_err(|_| StoreError::Corrupt {
        message: format!("hash of {} bytes, not 32", bytes.len()),
    })
}
