//! The runner: feeds a projection from the log and checkpoints it, so that every event takes
//! effect exactly once across crashes and restarts. It is the only part of the crate that talks
//! to the store.
//!
//! Exactly once, for in-memory models: the model and the position of the last record folded
//! into it are one value. A snapshot serializes both under one read lock (the runner task is the
//! only writer, so nothing moves underneath) and stores them as one row in one statement, so a
//! stored snapshot is always "the fold of records 1..=p" for its p. On start the runner loads that
//! row and subscribes after p. A crash before the row commits leaves the previous snapshot, whose
//! position is older: those records are folded again into a model that has never seen them. A
//! crash after it leaves the new one. Either way no record is applied twice or skipped.
//!
//! Rebuild folds the whole log into a shadow model while the live one keeps answering and
//! following; the runner task then brings the shadow up to the live position and swaps it in
//! under the write lock.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use jiff::Timestamp;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection};
use store::{Migration, RecordPage, RecordRef, Store, StoreError};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::{AgentLoad, Customers, Projection, Queues, Reports, SlaView, TicketEvent, Tickets};

mod rebuild;

pub use rebuild::{DECODE_CHUNK_RECORDS, PIPELINE_PAGES_MAX, REBUILD_WORKERS_MAX};

/// Records read per page while rebuilding.
pub const REBUILD_PAGE_MAX: usize = store::READ_LIMIT_MAX;
/// The longest the runner waits before retrying after a database error.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(5);
/// Requests (snapshot, swap) waiting for the runner task.
pub const COMMAND_QUEUE_MAX: usize = 16;
/// How long a snapshot statement waits for another process's lock on the snapshot file.
const SNAPSHOT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SQLITE_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "projection_snapshots",
    sql: "CREATE TABLE projection_snapshots (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    last_recorded_at INTEGER NOT NULL,
    state BLOB NOT NULL
);",
}];

const POSTGRES_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "projection_snapshots",
    sql: "CREATE TABLE projection_snapshots (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    position BIGINT NOT NULL,
    last_recorded_at BIGINT NOT NULL,
    state BYTEA NOT NULL
);",
}];

/// The migration component name of the snapshot table.
pub const MIGRATION_COMPONENT: &str = "projections";

/// Why the runner could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    #[error("snapshot table: {0}")]
    Database(#[from] sqlx::Error),
    #[error("snapshot of {name} does not decode: {message}")]
    Snapshot { name: &'static str, message: String },
    #[error("the projection runner has stopped")]
    Stopped,
    #[error("starting a rebuild worker thread: {0}")]
    Worker(std::io::Error),
}

/// How often to snapshot, and where the read models fold.
#[derive(Clone, Copy, Debug)]
pub struct RunnerConfig {
    /// Snapshot once this many records have been folded since the last snapshot. Larger means
    /// less writing and a longer catch-up after a restart.
    pub snapshot_every_events: u64,
    /// `None`: the runners are tasks of the runtime that starts them (tests, tools). `Some(n)`:
    /// `Projections::start` gives them a thread of their own (a tokio runtime of one worker,
    /// its blocking threads too) at OS niceness `n` (0 to 19; 19 yields the most), so that
    /// when the cores are short the write path (commands, the scheduler's fires, the group
    /// commit) runs first and the read models catch up after; an idle core still folds at
    /// once. `docket serve` uses `FOLD_NICE_DEFAULT`. SQLite only: on PostgreSQL the runners
    /// read through the store's pool, whose sockets belong to the runtime that opened them (a
    /// connection opened on this one would stop working when it shut down, and would wait for
    /// this thread to be scheduled to hear from the server), so there they stay tasks of the
    /// caller's runtime.
    pub fold_nice: Option<i32>,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            snapshot_every_events: 100_000,
            fold_nice: None,
        }
    }
}

/// The niceness `docket serve` folds the read models at (`[projections] fold_nice`).
pub const FOLD_NICE_DEFAULT: i32 = 19;

/// The read models' own runtime (`RunnerConfig::fold_nice`), shut down in the background when
/// the last handle that needs it goes.
#[derive(Debug)]
struct FoldRuntime(Option<tokio::runtime::Runtime>);

impl FoldRuntime {
    fn start(nice: i32) -> Result<FoldRuntime, RunnerError> {
        let nice = nice.clamp(0, 19);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("read-models")
            .on_thread_start(move || lower_priority(nice))
            .enable_all()
            .build()
            .map_err(RunnerError::Worker)?;
        Ok(FoldRuntime(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the runtime is only taken on drop")
            .handle()
    }
}

impl Drop for FoldRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's scheduling priority to niceness `nice` (on Linux niceness is a
/// thread's, not the process's). Raising it back would need a privilege: it stays.
fn lower_priority(nice: i32) {
    if let Err(error) = rustix::process::setpriority_process(None, nice) {
        tracing::warn!(%error, nice, "read models: the fold thread keeps the default priority");
    }
}

/// Time between snapshots, as a multiple of what the last one took: snapshots of a large model
/// (seconds each) take at most a twentieth of the time, whatever the event rate.
pub const SNAPSHOT_SPACING: u32 = 19;

/// A snapshot that is due waits until no record has arrived for this long: serializing a large
/// model takes seconds of CPU, which a burst of appends (the SLA scheduler firing 100,000
/// breaches) needs more.
pub const SNAPSHOT_QUIET: Duration = Duration::from_secs(1);
/// ... unless this many times `snapshot_every_events` records were folded since the last one:
/// under a load that never pauses, snapshots still happen.
pub const SNAPSHOT_OVERDUE_FACTOR: u64 = 10;

/// When the runner may snapshot next: after `snapshot_every_events` records, once the log has
/// been quiet for `SNAPSHOT_QUIET` (or the snapshot is overdue), and no sooner than
/// `SNAPSHOT_SPACING` times the last snapshot's duration after it ended.
#[derive(Debug, Default)]
struct SnapshotPacer {
    unsnapshotted: u64,
    not_before: Option<std::time::Instant>,
    /// Bytes of the last snapshot: the next one's buffer starts that large.
    last_bytes: usize,
}

impl SnapshotPacer {
    fn folded(&mut self, records: u64) {
        self.unsnapshotted += records;
    }

    fn spaced(&self) -> bool {
        self.not_before
            .is_none_or(|not_before| std::time::Instant::now() >= not_before)
    }

    /// Due whatever the traffic: while catching up, and when overdue.
    fn due(&self, config: &RunnerConfig) -> bool {
        self.unsnapshotted >= config.snapshot_every_events && self.spaced()
    }

    fn overdue(&self, config: &RunnerConfig) -> bool {
        self.unsnapshotted
            >= config
                .snapshot_every_events
                .saturating_mul(SNAPSHOT_OVERDUE_FACTOR)
            && self.spaced()
    }

    /// How long the follower waits, without a new record, before it snapshots; `None` when no
    /// snapshot is due.
    fn quiet_wait(&self, config: &RunnerConfig) -> Option<Duration> {
        if self.unsnapshotted < config.snapshot_every_events {
            return None;
        }
        let spacing = self.not_before.map_or(Duration::ZERO, |not_before| {
            not_before.saturating_duration_since(std::time::Instant::now())
        });
        Some(spacing.max(SNAPSHOT_QUIET))
    }

    /// Takes a snapshot with `save` and paces the next one by what it took.
    async fn snapshot<P: Projection>(
        &mut self,
        snapshots: &Snapshots,
        shared: &Arc<Shared<P>>,
    ) -> Result<u64, RunnerError> {
        let started = std::time::Instant::now();
        let saved = snapshot(snapshots, shared, self.last_bytes).await;
        let ended = std::time::Instant::now();
        self.not_before = Some(ended + ended.duration_since(started) * SNAPSHOT_SPACING);
        saved.map(|(position, bytes)| {
            self.unsnapshotted = 0;
            self.last_bytes = bytes;
            position
        })
    }
}

/// How far a projection is behind the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Lag {
    pub name: &'static str,
    /// The last record folded in.
    pub position: u64,
    /// The last record in the log.
    pub head: u64,
    /// `head - position`.
    pub events: u64,
    /// How long the oldest record not yet folded has been in the log (0 when caught up).
    pub seconds: i64,
}

/// The snapshot table of the SQLite backend. It lives in a file of its own beside the log
/// (`snapshot_file`), never in the log's file: SQLite has one write lock per file, and storing
/// the snapshot of a large model (hundreds of megabytes for 500,000 tickets) in the log's file
/// held that lock for longer than the writer's busy timeout, so appends failed with "database is
/// locked". Model and position are one row, so the snapshot and its checkpoint stay consistent
/// in either file; a snapshot ahead of the log (the log file was replaced) is ignored on start.
const SQLITE_SNAPSHOT_TABLE: &str = "CREATE TABLE IF NOT EXISTS projection_snapshots (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    last_recorded_at INTEGER NOT NULL,
    state BLOB NOT NULL
)";

/// The file a SQLite store's read model snapshots are written to: `docket.db` keeps them in
/// `docket.snapshots.db`. `None` for PostgreSQL (a row lock there blocks no append).
pub fn snapshot_file(store: &Store) -> Option<std::path::PathBuf> {
    let pool = store.sqlite_pool()?;
    Some(
        pool.connect_options()
            .get_filename()
            .with_extension("snapshots.db"),
    )
}

/// The snapshot table, on either backend. SQLite gets its own writable connection to its own
/// file (`snapshot_file`), because the store's pool is read-only and the log's write lock is
/// the writer's alone.
#[derive(Debug)]
enum Snapshots {
    Sqlite(tokio::sync::Mutex<SqliteConnection>),
    Postgres(sqlx::PgPool),
}

impl Snapshots {
    async fn open(store: &Store) -> Result<Snapshots, RunnerError> {
        store
            .migrate(MIGRATION_COMPONENT, SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS)
            .await?;
        if let Some(path) = snapshot_file(store) {
            // A lost snapshot costs a catch-up, never a record: no fsync per commit. A rollback
            // journal rather than a WAL: a snapshot is written whole, and in WAL mode the WAL
            // grew by every snapshot written between checkpoints. A rewritten snapshot's old
            // pages are reused by the next, so the file stays within about twice the size of
            // the snapshots it holds.
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Truncate)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SNAPSHOT_BUSY_TIMEOUT)
                .disable_statement_logging();
            let mut conn = options.connect().await?;
            sqlx::query(SQLITE_SNAPSHOT_TABLE)
                .execute(&mut conn)
                .await?;
            Ok(Snapshots::Sqlite(tokio::sync::Mutex::new(conn)))
        } else if let Some(pool) = store.postgres_pool() {
            Ok(Snapshots::Postgres(pool.clone()))
        } else {
            unreachable!("a store is either SQLite or PostgreSQL")
        }
    }

    /// `(version, position, last_recorded_at, state)` of the stored snapshot.
    async fn load(&self, name: &str) -> Result<Option<(i64, i64, i64, Vec<u8>)>, RunnerError> {
        const SELECT: &str = "SELECT version, position, last_recorded_at, state \
            FROM projection_snapshots WHERE name = ";
        let row = match self {
            Snapshots::Sqlite(conn) => {
                let mut conn = conn.lock().await;
                sqlx::query_as(&format!("{SELECT}?1"))
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            Snapshots::Postgres(pool) => {
                sqlx::query_as(&format!("{SELECT}$1"))
                    .bind(name)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(row)
    }

    /// Stores a snapshot in one statement. An older position never replaces a newer one of the
    /// same version (several nodes may share one PostgreSQL); a new version always replaces.
    async fn save(
        &self,
        name: &str,
        version: u32,
        position: u64,
        last_recorded_at: i64,
        state: &[u8],
    ) -> Result<(), RunnerError> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        match self {
            Snapshots::Sqlite(conn) => {
                let mut conn = conn.lock().await;
                sqlx::query(
                    "INSERT INTO projection_snapshots (name, version, position, last_recorded_at, state)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE SET version = excluded.version,
                        position = excluded.position, last_recorded_at = excluded.last_recorded_at,
                        state = excluded.state
                     WHERE excluded.version <> projection_snapshots.version
                        OR excluded.position >= projection_snapshots.position",
                )
                .bind(name)
                .bind(i64::from(version))
                .bind(position)
                .bind(last_recorded_at)
                .bind(state)
                .execute(&mut *conn)
                .await?;
            }
            Snapshots::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO projection_snapshots (name, version, position, last_recorded_at, state)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (name) DO UPDATE SET version = excluded.version,
                        position = excluded.position, last_recorded_at = excluded.last_recorded_at,
                        state = excluded.state
                     WHERE excluded.version <> projection_snapshots.version
                        OR excluded.position >= projection_snapshots.position",
                )
                .bind(name)
                .bind(i64::from(version))
                .bind(position)
                .bind(last_recorded_at)
                .bind(state)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }
}

/// A read model's stored snapshot: what a node starting now loads before it catches up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub name: &'static str,
    /// `None` when there is no snapshot of the model's current version (it rebuilds from 0).
    pub position: Option<u64>,
}

/// The stored snapshot of every read model, without starting any.
pub async fn stored_snapshots(store: &Store) -> Result<Vec<StoredSnapshot>, RunnerError> {
    let snapshots = Snapshots::open(store).await?;
    let mut stored = Vec::new();
    for (name, version) in PROJECTION_VERSIONS {
        let position = snapshots
            .load(name)
            .await?
            .filter(|(stored_version, ..)| *stored_version == i64::from(*version))
            .map(|(_, position, ..)| u64::try_from(position).unwrap_or(0));
        stored.push(StoredSnapshot { name, position });
    }
    Ok(stored)
}

/// Each read model's name and snapshot version.
const PROJECTION_VERSIONS: &[(&str, u32)] = &[
    (Tickets::NAME, Tickets::VERSION),
    (Queues::NAME, Queues::VERSION),
    (AgentLoad::NAME, AgentLoad::VERSION),
    (SlaView::NAME, SlaView::VERSION),
    (Customers::NAME, Customers::VERSION),
    (Reports::NAME, Reports::VERSION),
];

/// A model and the position of the last record folded into it: one value, never apart.
#[derive(Debug)]
struct Checkpointed<P> {
    model: P,
    position: u64,
    /// Microseconds; when the last folded record was stored.
    last_recorded_at: i64,
}

impl<P: Projection> Checkpointed<P> {
    fn empty() -> Checkpointed<P> {
        Checkpointed {
            model: P::default(),
            position: 0,
            last_recorded_at: 0,
        }
    }

    fn apply(&mut self, record: RecordRef<'_>) {
        self.apply_decoded(record, TicketEvent::decode(record).as_ref());
    }

    /// Folds a record whose event is already decoded (`None`: not a ticket event), so that
    /// one decode can feed every model.
    fn apply_decoded(&mut self, record: RecordRef<'_>, event: Option<&TicketEvent>) {
        assert_eq!(
            record.position,
            self.position + 1,
            "{}: records must arrive in order, without gaps",
            P::NAME
        );
        if let Some(event) = event {
            self.model.apply_event(event);
        }
        self.position = record.position;
        self.last_recorded_at = micros(record.recorded_at);
    }
}

/// Folds the log after `after` page by page into `fold`, until a page comes back empty or
/// `until` is reached; returns the last position folded. The next page is read while the
/// current one is folded: on SQLite the read runs on a blocking thread (the store's stepped
/// reader), so reading and folding use two cores.
async fn replay(
    store: &Store,
    after: u64,
    until: Option<u64>,
    fold: &mut (dyn FnMut(RecordPage) + Send),
) -> Result<u64, RunnerError> {
    let read = |after: u64| {
        let store = store.clone();
        tokio::spawn(async move { store.read_all_packed(after, REBUILD_PAGE_MAX).await })
    };
    let mut position = after;
    let mut next = Some(read(position));
    while let Some(reading) = next.take() {
        let page = reading.await.map_err(|_| RunnerError::Stopped)??;
        let Some(last) = page.last_position() else {
            break;
        };
        position = last;
        if until.is_none_or(|until| position < until) {
            next = Some(read(position));
        }
        fold(page);
    }
    Ok(position)
}

fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

#[derive(Debug)]
struct Shared<P> {
    state: RwLock<Checkpointed<P>>,
    position: watch::Sender<u64>,
}

/// Slots of `Decodes`: how far apart the models of a process may follow the log and still
/// share their decodes (a model further behind decodes for itself).
pub const SHARED_DECODES: usize = 4_096;

/// One decode of each live record for every model of a process. The six runners follow the
/// same tail, and each decoding every record for itself (the payload's JSON, the metadata's
/// time) cost about as much as all six folds. A record at a position never changes, so the
/// decode of one runner is the decode of all: a ring of the last `SHARED_DECODES` positions,
/// filled by whichever runner reaches a record first and emptied as soon as every sharer took
/// it (so a decode lives no longer than the slowest runner needs it, a large message body
/// included). `Projections::start` gives its six runners one (each of them one store's); a
/// runner started alone shares with nobody and keeps nothing.
#[derive(Debug)]
pub(crate) struct Decodes {
    sharers: u8,
    slots: std::sync::Mutex<Vec<DecodeSlot>>,
}

/// A position, its decode (`None`: not a ticket event), and how many sharers have yet to take
/// it; `None` while the slot is empty.
type DecodeSlot = Option<(u64, Option<Arc<TicketEvent>>, u8)>;

impl Decodes {
    /// A ring for `sharers` runners.
    pub(crate) fn new(sharers: u8) -> Decodes {
        Decodes {
            sharers,
            slots: std::sync::Mutex::new(vec![None; SHARED_DECODES]),
        }
    }

    /// The decode of each record (`None`: not a ticket event), from the ring where another
    /// runner left it, else decoded here (outside the lock) and left for the others.
    fn decode<R: std::borrow::Borrow<store::Record>>(
        &self,
        records: &[R],
    ) -> Vec<Option<Arc<TicketEvent>>> {
        let slot = |position: u64| (position % SHARED_DECODES as u64) as usize;
        let mut decoded = Vec::with_capacity(records.len());
        let mut missing = Vec::new();
        if self.sharers > 1 {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            for (index, record) in records.iter().enumerate() {
                let position = record.borrow().position;
                let entry = &mut slots[slot(position)];
                match entry {
                    Some((at, event, left)) if *at == position => {
                        decoded.push(event.clone());
                        *left -= 1;
                        if *left == 0 {
                            *entry = None;
                        }
                    }
                    _ => {
                        decoded.push(None);
                        missing.push(index);
                    }
                }
            }
        } else {
            decoded.resize(records.len(), None);
            missing.extend(0..records.len());
        }
        if missing.is_empty() {
            return decoded;
        }
        for &index in &missing {
            decoded[index] = TicketEvent::decode(records[index].borrow().view()).map(Arc::new);
        }
        if self.sharers > 1 {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            for &index in &missing {
                let position = records[index].borrow().position;
                slots[slot(position)] = Some((position, decoded[index].clone(), self.sharers - 1));
            }
        }
        decoded
    }
}

enum Request<P> {
    Snapshot(oneshot::Sender<Result<u64, RunnerError>>),
    Swap(Checkpointed<P>, oneshot::Sender<Result<u64, RunnerError>>),
}

/// A running projection: query its model, wait for a position, see its lag, rebuild it.
/// Cheap to clone; the runner task stops when the last clone is dropped.
#[derive(Debug)]
pub struct ProjectionHandle<P> {
    shared: Arc<Shared<P>>,
    store: Store,
    requests: mpsc::Sender<Request<P>>,
    task: Arc<AbortOnDrop>,
    /// The runtime the runner runs on, when it has one of its own: kept while a handle is.
    runtime: Option<Arc<FoldRuntime>>,
}

impl<P> Clone for ProjectionHandle<P> {
    fn clone(&self) -> Self {
        ProjectionHandle {
            shared: self.shared.clone(),
            store: self.store.clone(),
            requests: self.requests.clone(),
            task: self.task.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<P> std::fmt::Debug for Request<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Snapshot(_) => "Snapshot",
            Request::Swap(..) => "Swap",
        })
    }
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A read lock on a projection's model; hold it only for the length of a query (the runner
/// waits for it).
#[derive(Debug)]
pub struct ModelRef<'a, P> {
    guard: RwLockReadGuard<'a, Checkpointed<P>>,
}

impl<P> std::ops::Deref for ModelRef<'_, P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.guard.model
    }
}

impl<P> ModelRef<'_, P> {
    /// The position the model reflects, consistent with the answers read through this guard.
    pub fn position(&self) -> u64 {
        self.guard.position
    }
}

impl<P: Projection> ProjectionHandle<P> {
    /// Loads the snapshot (if any, and of this version), then spawns the task that catches up
    /// from the log and follows it live.
    /// The runner is a task of the caller's runtime (`RunnerConfig::fold_nice` is for
    /// `Projections::start`).
    pub async fn start(store: Store, config: RunnerConfig) -> Result<Self, RunnerError> {
        Self::start_sharing(store, config, Arc::new(Decodes::new(1)), None).await
    }

    /// `start`, sharing the decode of each live record with the other runners given the same
    /// `Decodes` (those of one store), on `runtime` when given.
    async fn start_sharing(
        store: Store,
        config: RunnerConfig,
        decodes: Arc<Decodes>,
        runtime: Option<Arc<FoldRuntime>>,
    ) -> Result<Self, RunnerError> {
        let snapshots = Snapshots::open(&store).await?;
        let (head, _) = store.head().await?;
        let state = match snapshots.load(P::NAME).await? {
            Some((version, position, last_recorded_at, state))
                if version == i64::from(P::VERSION)
                    && u64::try_from(position).is_ok_and(|position| position <= head) =>
            {
                let mut model: P =
                    serde_json::from_slice(&state).map_err(|error| RunnerError::Snapshot {
                        name: P::NAME,
                        message: error.to_string(),
                    })?;
                model.restore();
                Checkpointed {
                    model,
                    position: u64::try_from(position).unwrap_or(0),
                    last_recorded_at,
                }
            }
            // No snapshot, one of another version, or one ahead of this log: start from the
            // beginning of the log.
            _ => Checkpointed {
                model: P::default(),
                position: 0,
                last_recorded_at: 0,
            },
        };
        let (position, _) = watch::channel(state.position);
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            position,
        });
        let (requests, inbox) = mpsc::channel(COMMAND_QUEUE_MAX);
        let runner = run(
            store.clone(),
            snapshots,
            shared.clone(),
            inbox,
            config,
            decodes,
        );
        let task = match &runtime {
            Some(runtime) => runtime.handle().spawn(runner),
            None => tokio::spawn(runner),
        };
        Ok(ProjectionHandle {
            shared,
            store,
            requests,
            task: Arc::new(AbortOnDrop(task)),
            runtime,
        })
    }

    /// The model, for queries. The guard blocks the runner while held: query, copy, drop.
    pub fn read(&self) -> ModelRef<'_, P> {
        ModelRef {
            guard: self
                .shared
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// The last applied global position.
    pub fn position(&self) -> u64 {
        *self.shared.position.borrow()
    }

    /// Waits until the model reflects `min_position` (read-your-writes: pass the position an
    /// append returned). False on timeout.
    pub async fn wait_for(&self, min_position: u64, timeout: Duration) -> bool {
        let mut position = self.shared.position.subscribe();
        let reached = tokio::time::timeout(
            timeout,
            position.wait_for(|position| *position >= min_position),
        )
        .await;
        matches!(reached, Ok(Ok(_)))
    }

    /// Lag behind the log at `now`, in events and seconds.
    pub async fn lag(&self, now: Timestamp) -> Result<Lag, RunnerError> {
        let position = self.position();
        let (head, _) = self.store.head().await?;
        let seconds = if head > position {
            match self.store.read_all(position, 1).await?.first() {
                Some(oldest) => (now.as_second() - oldest.recorded_at.as_second()).max(0),
                None => 0,
            }
        } else {
            0
        };
        Ok(Lag {
            name: P::NAME,
            position,
            head,
            events: head.saturating_sub(position),
            seconds,
        })
    }

    /// Snapshots now (as on shutdown); returns the position stored.
    pub async fn snapshot(&self) -> Result<u64, RunnerError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Snapshot(reply))
            .await
            .map_err(|_| RunnerError::Stopped)?;
        answer.await.map_err(|_| RunnerError::Stopped)?
    }

    /// Rebuilds the model from position 0 into a shadow copy while the live model keeps
    /// answering and following the log, then swaps it in atomically and snapshots it.
    /// `progress(applied, total)` is called after each page; `total` is the log's head when the
    /// rebuild started (or the position reached, if the log grew past it). Returns the position
    /// of the swapped-in model.
    pub async fn rebuild(
        &self,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, RunnerError> {
        let (total, _) = self.store.head().await?;
        let mut shadow = Checkpointed::<P>::empty();
        shadow.model.begin_replay();
        replay(&self.store, 0, Some(total), &mut |page| {
            for record in page.iter() {
                shadow.apply(record);
            }
            progress(shadow.position, total.max(shadow.position));
        })
        .await?;
        shadow.model.finish_replay();
        self.swap(shadow).await
    }

    /// Hands a rebuilt shadow to the runner task, which brings it up to the live position,
    /// swaps it in and snapshots it.
    async fn swap(&self, shadow: Checkpointed<P>) -> Result<u64, RunnerError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Swap(shadow, reply))
            .await
            .map_err(|_| RunnerError::Stopped)?;
        answer.await.map_err(|_| RunnerError::Stopped)?
    }
}

/// The runner task: follow the log, fold, snapshot now and then, answer requests. Database
/// errors are retried with a growing delay; the model never moves backwards.
async fn run<P: Projection>(
    store: Store,
    snapshots: Snapshots,
    shared: Arc<Shared<P>>,
    mut inbox: mpsc::Receiver<Request<P>>,
    config: RunnerConfig,
    decodes: Arc<Decodes>,
) {
    // Catch up with packed pages first: far cheaper than the subscription's row-by-row reads
    // when a new node or a new version starts from far behind. It snapshots as it goes, like
    // the follower below; an error here only means the subscription catches up instead.
    let mut pacer = SnapshotPacer::default();
    loop {
        let from = shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .position;
        let until = from.saturating_add(config.snapshot_every_events.max(1));
        let reached = replay(&store, from, Some(until), &mut |page| {
            let position = {
                let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
                for record in page.iter() {
                    state.apply(record);
                }
                state.position
            };
            shared.position.send_replace(position);
        })
        .await;
        match reached {
            Ok(reached) if reached > from => {
                pacer.folded(reached - from);
                if pacer.due(&config) {
                    if let Err(error) = pacer.snapshot(&snapshots, &shared).await {
                        tracing::warn!(projection = P::NAME, %error, "saving a snapshot")
                    }
                }
            }
            Ok(_) => break,
            Err(error) => {
                tracing::warn!(projection = P::NAME, %error, "catching up with packed reads");
                break;
            }
        }
    }
    let start = shared
        .state
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .position;
    let mut subscription = store.subscribe(start);
    let mut retry_delay = Duration::from_millis(50);
    loop {
        let quiet_wait = pacer.quiet_wait(&config);
        let step = tokio::select! {
            record = subscription.next_shared() => match record {
                Ok(record) => {
                    // Fold whatever else is already at hand under the same write lock (no read
                    // of the database: the subscription reads when it has to).
                    let mut records = vec![record];
                    match subscription.take_buffered_shared() {
                        Ok(more) => records.extend(more),
                        Err(error) => tracing::warn!(projection = P::NAME, %error, "reading the log"),
                    }
                    let events = decodes.decode(&records);
                    let position = {
                        let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
                        for (record, event) in records.iter().zip(&events) {
                            state.apply_decoded(record.view(), event.as_deref());
                        }
                        state.position
                    };
                    shared.position.send_replace(position);
                    pacer.folded(records.len() as u64);
                    if pacer.overdue(&config) {
                        if let Err(error) = pacer.snapshot(&snapshots, &shared).await {
                            tracing::warn!(projection = P::NAME, %error, "saving a snapshot");
                        }
                    }
                    Ok(())
                }
                Err(error) => Err(error),
            },
            // A due snapshot, once the log has been quiet (the select starts over, and so does
            // this wait, with every record).
            _ = tokio::time::sleep(quiet_wait.unwrap_or_default()), if quiet_wait.is_some() => {
                if let Err(error) = pacer.snapshot(&snapshots, &shared).await {
                    tracing::warn!(projection = P::NAME, %error, "saving a snapshot");
                }
                Ok(())
            }
            request = inbox.recv() => match request {
                None => return,
                Some(Request::Snapshot(reply)) => {
                    let saved = pacer.snapshot(&snapshots, &shared).await;
                    let _ = reply.send(saved);
                    Ok(())
                }
                Some(Request::Swap(shadow, reply)) => {
                    let swapped = swap(&store, &snapshots, &shared, shadow).await;
                    if let Ok(position) = swapped {
                        subscription = store.subscribe(position);
                        pacer.unsnapshotted = 0;
                    }
                    let _ = reply.send(swapped);
                    Ok(())
                }
            },
        };
        match step {
            Ok(()) => retry_delay = Duration::from_millis(50),
            Err(error) => {
                tracing::warn!(projection = P::NAME, %error, "following the log; retrying");
                tokio::time::sleep(retry_delay).await;
                retry_delay = (retry_delay * 2).min(RETRY_DELAY_MAX);
            }
        }
    }
}

/// Serializes model and position under one read lock, then stores them as one row. The
/// serialization (seconds for a model of 500,000 tickets) runs on a blocking thread, never on
/// the runtime's workers: six models snapshotting at once had stalled every task of the process,
/// the log's group commit among them, for as long (found by `docket bench sla`). Queries keep
/// reading meanwhile; the model's own runner waits for its snapshot before folding on.
async fn snapshot<P: Projection>(
    snapshots: &Snapshots,
    shared: &Arc<Shared<P>>,
    size_hint: usize,
) -> Result<(u64, usize), RunnerError> {
    let serialized = shared.clone();
    let (position, last_recorded_at, state) = tokio::task::spawn_blocking(move || {
        let state = serialized
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        // Sized like the last one: no copies while the buffer grows.
        let mut bytes = Vec::with_capacity(size_hint + size_hint / 8);
        serde_json::to_writer(&mut bytes, &state.model).map_err(|error| RunnerError::Snapshot {
            name: P::NAME,
            message: error.to_string(),
        })?;
        Ok::<_, RunnerError>((state.position, state.last_recorded_at, bytes))
    })
    .await
    .map_err(|error| RunnerError::Snapshot {
        name: P::NAME,
        message: format!("serializing stopped: {error}"),
    })??;
    snapshots
        .save(P::NAME, P::VERSION, position, last_recorded_at, &state)
        .await?;
    Ok((position, state.len()))
}

/// Brings the shadow up to the live position, swaps it in, and snapshots it.
async fn swap<P: Projection>(
    store: &Store,
    snapshots: &Snapshots,
    shared: &Arc<Shared<P>>,
    mut shadow: Checkpointed<P>,
) -> Result<u64, RunnerError> {
    let live = shared
        .state
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .position;
    if shadow.position < live {
        replay(store, shadow.position, Some(live), &mut |page| {
            for record in page.iter() {
                shadow.apply(record);
            }
        })
        .await?;
    }
    let position = shadow.position;
    *shared.state.write().unwrap_or_else(PoisonError::into_inner) = shadow;
    shared.position.send_replace(position);
    // The swap stands even if its snapshot fails (the runner follows from the new position and
    // snapshots again later); the failure is only logged (found in review).
    if let Err(error) = snapshot(snapshots, shared, 0).await {
        tracing::warn!(%error, "snapshot after a rebuild failed; it is retried later");
    }
    Ok(position)
}

/// Every read model folded together from the start of the log: each record is decoded once and
/// fed to all six. What `Projections::rebuild_all` swaps in, and what the replay benchmark
/// measures.
#[derive(Debug, Default)]
pub struct AllModels {
    pub tickets: Tickets,
    pub queues: Queues,
    pub agents: AgentLoad,
    pub sla: SlaView,
    pub customers: Customers,
    pub reports: Reports,
    /// The last record folded.
    pub position: u64,
    /// Microseconds; when the last folded record was stored.
    pub last_recorded_at: i64,
}

impl AllModels {
    /// Decodes one record and folds it into every model. Records must come in order.
    pub fn apply(&mut self, record: RecordRef<'_>) {
        assert_eq!(
            record.position,
            self.position + 1,
            "records must arrive in order, without gaps"
        );
        if let Some(event) = TicketEvent::decode(record) {
            self.tickets.apply_event(&event);
            self.queues.apply_event(&event);
            self.agents.apply_event(&event);
            self.sla.apply_event(&event);
            self.customers.apply_event(&event);
            self.reports.apply_event(&event);
        }
        self.position = record.position;
        self.last_recorded_at = micros(record.recorded_at);
    }

    /// Puts every model in replay mode (`Projection::begin_replay`): for a fold from the
    /// start of the log, finished by `finish_replay`.
    pub fn begin_replay(&mut self) {
        self.tickets.begin_replay();
        self.queues.begin_replay();
        self.agents.begin_replay();
        self.sla.begin_replay();
        self.customers.begin_replay();
        self.reports.begin_replay();
    }

    /// Builds what replay mode let go, in every model, on two threads.
    pub fn finish_replay(&mut self) {
        let AllModels {
            tickets,
            queues,
            agents,
            sla,
            customers,
            reports,
            ..
        } = self;
        std::thread::scope(|scope| {
            // The reports' index is the longest by far and builds on threads of its own.
            let other = scope.spawn(|| {
                tickets.finish_replay();
                customers.finish_replay();
                agents.finish_replay();
                queues.finish_replay();
                sla.finish_replay();
            });
            reports.finish_replay();
            other.join().expect("building indexes does not panic");
        });
    }

    /// Folds the log from position 0 up to its head when called (or further, to the end of
    /// the page that reaches it), in replay mode, on the rebuild pipeline's worker threads
    /// (`rebuild`) while the next pages are read; `progress(folded, total)` after each page
    /// read.
    pub async fn fold(
        store: &Store,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<AllModels, RunnerError> {
        let (total, _) = store.head().await?;
        let pipeline = rebuild::RebuildPipeline::start().map_err(RunnerError::Worker)?;
        let (mut position, mut last_recorded_at) = (0, 0);
        replay(store, 0, Some(total), &mut |page| {
            let (Some(first), Some(last)) = (page.get(0), page.last_position()) else {
                return;
            };
            // Positions within a page increase, so first and last in place mean no gap.
            assert!(
                first.position == position + 1 && last == position + page.len() as u64,
                "records must arrive in order, without gaps"
            );
            position = last;
            if let Some(record) = page.get(page.len() - 1) {
                last_recorded_at = micros(record.recorded_at);
            }
            pipeline.submit(page);
            progress(pipeline.folded_position(), total.max(position));
        })
        .await?;
        let (tickets, reports, queues, sla, customers, agents) = pipeline.finish();
        let mut models = AllModels {
            tickets,
            queues,
            agents,
            sla,
            customers,
            reports,
            position,
            last_recorded_at,
        };
        models.finish_replay();
        progress(models.position, total.max(models.position));
        Ok(models)
    }
}

/// Every read model of Docket, each with its own runner.
#[derive(Clone, Debug)]
pub struct Projections {
    pub tickets: ProjectionHandle<Tickets>,
    pub queues: ProjectionHandle<Queues>,
    pub agents: ProjectionHandle<AgentLoad>,
    pub sla: ProjectionHandle<SlaView>,
    pub customers: ProjectionHandle<Customers>,
    pub reports: ProjectionHandle<Reports>,
}

/// The names `docket projections rebuild NAME` accepts.
pub const PROJECTION_NAMES: &[&str] = &[
    Tickets::NAME,
    Queues::NAME,
    AgentLoad::NAME,
    SlaView::NAME,
    Customers::NAME,
    Reports::NAME,
];

impl Projections {
    /// Starts the six runners, sharing one decode of each live record; on a thread of their
    /// own when `config.fold_nice` says so.
    pub async fn start(store: Store, config: RunnerConfig) -> Result<Projections, RunnerError> {
        let decodes = Arc::new(Decodes::new(6));
        let runtime = match (config.fold_nice, store.backend()) {
            (Some(nice), store::BackendKind::Sqlite) => Some(Arc::new(FoldRuntime::start(nice)?)),
            _ => None,
        };
        macro_rules! start {
            () => {
                ProjectionHandle::start_sharing(
                    store.clone(),
                    config,
                    decodes.clone(),
                    runtime.clone(),
                )
                .await?
            };
        }
        Ok(Projections {
            tickets: start!(),
            queues: start!(),
            agents: start!(),
            sla: start!(),
            customers: start!(),
            reports: start!(),
        })
    }

    /// Waits until every model reflects `min_position`; false on timeout.
    pub async fn wait_for(&self, min_position: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        self.tickets.wait_for(min_position, left()).await
            && self.queues.wait_for(min_position, left()).await
            && self.agents.wait_for(min_position, left()).await
            && self.sla.wait_for(min_position, left()).await
            && self.customers.wait_for(min_position, left()).await
            && self.reports.wait_for(min_position, left()).await
    }

    /// The lowest position of all models: what every query reflects at least.
    pub fn position(&self) -> u64 {
        [
            self.tickets.position(),
            self.queues.position(),
            self.agents.position(),
            self.sla.position(),
            self.customers.position(),
            self.reports.position(),
        ]
        .into_iter()
        .min()
        .unwrap_or(0)
    }

    /// Lag of every model, for status, readiness and metrics.
    pub async fn lags(&self, now: Timestamp) -> Result<Vec<Lag>, RunnerError> {
        Ok(vec![
            self.tickets.lag(now).await?,
            self.queues.lag(now).await?,
            self.agents.lag(now).await?,
            self.sla.lag(now).await?,
            self.customers.lag(now).await?,
            self.reports.lag(now).await?,
        ])
    }

    /// Snapshots every model (on shutdown).
    pub async fn snapshot(&self) -> Result<(), RunnerError> {
        self.tickets.snapshot().await?;
        self.queues.snapshot().await?;
        self.agents.snapshot().await?;
        self.sla.snapshot().await?;
        self.customers.snapshot().await?;
        self.reports.snapshot().await?;
        Ok(())
    }

    /// Rebuilds every model in one pass over the log (each record read and decoded once, see
    /// `AllModels`), then swaps each in as `rebuild` does. Returns the lowest position swapped
    /// in.
    pub async fn rebuild_all(
        &self,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<u64, RunnerError> {
        let all = AllModels::fold(&self.tickets.store, progress).await?;
        let (position, last_recorded_at) = (all.position, all.last_recorded_at);
        fn at<P>(model: P, position: u64, last_recorded_at: i64) -> Checkpointed<P> {
            Checkpointed {
                model,
                position,
                last_recorded_at,
            }
        }
        let positions = [
            self.tickets
                .swap(at(all.tickets, position, last_recorded_at))
                .await?,
            self.queues
                .swap(at(all.queues, position, last_recorded_at))
                .await?,
            self.agents
                .swap(at(all.agents, position, last_recorded_at))
                .await?,
            self.sla
                .swap(at(all.sla, position, last_recorded_at))
                .await?,
            self.customers
                .swap(at(all.customers, position, last_recorded_at))
                .await?,
            self.reports
                .swap(at(all.reports, position, last_recorded_at))
                .await?,
        ];
        Ok(positions.into_iter().min().unwrap_or(0))
    }

    /// Rebuilds one model by name (see `PROJECTION_NAMES`); `None` for an unknown name.
    pub async fn rebuild(
        &self,
        name: &str,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Option<Result<u64, RunnerError>> {
        Some(match name {
            Tickets::NAME => self.tickets.rebuild(progress).await,
            Queues::NAME => self.queues.rebuild(progress).await,
            AgentLoad::NAME => self.agents.rebuild(progress).await,
            SlaView::NAME => self.sla.rebuild(progress).await,
            Customers::NAME => self.customers.rebuild(progress).await,
            Reports::NAME => self.reports.rebuild(progress).await,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runners_sharing_decodes_decode_a_record_once_and_keep_it_until_all_took_it() {
        let mut log = crate::testkit::Log::default();
        log.reply(1, 1, "first")
            .message(2, 1, "second")
            .reply(3, 2, "third");
        let records = log.records();
        let own: Vec<Option<TicketEvent>> = records
            .iter()
            .map(|record| TicketEvent::decode(record.view()))
            .collect();
        assert!(own.iter().all(Option::is_some));
        let decodes = Decodes::new(3);
        let first = decodes.decode(&records);
        let second = decodes.decode(&records[1..]);
        for (index, event) in first.iter().enumerate() {
            assert_eq!(
                event.as_deref(),
                own[index].as_ref(),
                "the decode of record {index}"
            );
        }
        // The second runner got the first one's decodes, not decodes of its own.
        for (mine, theirs) in second.iter().zip(&first[1..]) {
            assert!(Arc::ptr_eq(
                mine.as_ref().unwrap(),
                theirs.as_ref().unwrap()
            ));
        }
        let held = |position: u64| {
            decodes.slots.lock().unwrap()[(position % SHARED_DECODES as u64) as usize].is_some()
        };
        assert!(
            held(1) && held(2) && held(3),
            "the third sharer has yet to take them"
        );
        let third = decodes.decode(&records);
        assert!(Arc::ptr_eq(
            third[1].as_ref().unwrap(),
            first[1].as_ref().unwrap()
        ));
        assert!(!held(2) && !held(3), "every sharer took them: let go");
        // Record 1 was taken by two of three; a record whose position shares its slot is
        // decoded for itself, never given record 1's decode.
        let mut later = records[0].clone();
        later.position += SHARED_DECODES as u64;
        later.payload = records[2].payload.clone();
        later.event_type = records[2].event_type.clone();
        later.stream_id = records[2].stream_id.clone();
        let taken = decodes.decode(std::slice::from_ref(&later));
        assert_eq!(
            taken[0].as_deref(),
            TicketEvent::decode(later.view()).as_ref()
        );
        assert_ne!(taken[0].as_deref(), own[0].as_ref());
        // A runner that shares with nobody keeps nothing.
        let alone = Decodes::new(1);
        assert_eq!(alone.decode(&records)[0].as_deref(), own[0].as_ref());
        assert!(alone.slots.lock().unwrap().iter().all(Option::is_none));
    }

    fn config(every: u64) -> RunnerConfig {
        RunnerConfig {
            snapshot_every_events: every,
            fold_nice: None,
        }
    }

    #[test]
    fn a_due_snapshot_waits_for_a_quiet_log_unless_overdue() {
        let config = config(100);
        let mut pacer = SnapshotPacer::default();
        pacer.folded(99);
        assert_eq!(pacer.quiet_wait(&config), None, "not due yet");
        assert!(!pacer.due(&config));
        pacer.folded(1);
        assert!(pacer.due(&config), "due while catching up");
        assert_eq!(pacer.quiet_wait(&config), Some(SNAPSHOT_QUIET));
        assert!(!pacer.overdue(&config), "a follower waits for quiet");
        pacer.folded(100 * SNAPSHOT_OVERDUE_FACTOR - 101);
        assert!(!pacer.overdue(&config));
        pacer.folded(1);
        assert!(pacer.overdue(&config), "under a load that never pauses");
    }

    #[test]
    fn snapshots_are_spaced_by_what_the_last_one_took() {
        let config = config(1);
        let now = std::time::Instant::now();
        let pacer = SnapshotPacer {
            unsnapshotted: 1_000,
            not_before: Some(now + Duration::from_secs(30)),
            last_bytes: 0,
        };
        assert!(!pacer.due(&config) && !pacer.overdue(&config));
        let wait = pacer.quiet_wait(&config).expect("due by count");
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let pacer = SnapshotPacer {
            not_before: Some(now),
            ..pacer
        };
        assert!(pacer.due(&config) && pacer.overdue(&config));
        assert_eq!(pacer.quiet_wait(&config), Some(SNAPSHOT_QUIET));
    }
}
