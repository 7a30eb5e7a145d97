//! Where the automation followers (the trigger manager, the webhook scheduler) remember how far
//! into the log they have acted: one row per follower in `automation_checkpoints`, beside the
//! log in the same database. Acting is idempotent (every append carries a command id derived
//! from the record that caused it), so a crash between acting and saving repeats the acts of
//! the records after the saved position, and the store answers them as duplicates.

use sqlx::{ConnectOptions, SqliteConnection};
use store::{Migration, Store, StoreError};

const SQLITE_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "automation_checkpoints",
    sql: "CREATE TABLE automation_checkpoints (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);",
}];

const POSTGRES_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "automation_checkpoints",
    sql: "CREATE TABLE automation_checkpoints (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);",
}];

/// The migration component name of the checkpoint table.
pub const MIGRATION_COMPONENT: &str = "automation";

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("event log: {0}")]
    Store(#[from] StoreError),
    #[error("checkpoint table: {0}")]
    Database(#[from] sqlx::Error),
}

/// The checkpoint table on either backend. SQLite gets its own writable connection, because the
/// store's pool is read-only.
#[derive(Debug)]
pub enum Checkpoints {
    Sqlite(tokio::sync::Mutex<SqliteConnection>),
    Postgres(sqlx::PgPool),
}

impl Checkpoints {
    /// Creates the table if it is missing, then connects.
    pub async fn open(store: &Store) -> Result<Checkpoints, CheckpointError> {
        Checkpoints::migrate(store).await?;
        Checkpoints::connect(store).await
    }

    /// Creates the table if it is missing. Its future cannot be proven `Send` (sqlx's
    /// higher-ranked executor bounds, rust-lang/rust#102211), so a task that must be spawned
    /// migrates first, outside the task, and connects inside it.
    pub async fn migrate(store: &Store) -> Result<(), CheckpointError> {
        store
            .migrate(MIGRATION_COMPONENT, SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS)
            .await?;
        Ok(())
    }

    /// Connects to the table (`migrate` made it).
    pub async fn connect(store: &Store) -> Result<Checkpoints, CheckpointError> {
        if let Some(pool) = store.sqlite_pool() {
            let options = pool.connect_options().as_ref().clone().read_only(false);
            let conn = options.connect().await?;
            Ok(Checkpoints::Sqlite(tokio::sync::Mutex::new(conn)))
        } else if let Some(pool) = store.postgres_pool() {
            Ok(Checkpoints::Postgres(pool.clone()))
        } else {
            unreachable!("a store is either SQLite or PostgreSQL")
        }
    }

    /// The saved position of follower `name` (0 when it never saved).
    pub async fn load(&self, name: &str) -> Result<u64, CheckpointError> {
        let row: Option<(i64,)> = match self {
            Checkpoints::Sqlite(conn) => {
                let mut conn = conn.lock().await;
                sqlx::query_as("SELECT position FROM automation_checkpoints WHERE name = ?1")
                    .bind(name)
                    .fetch_optional(&mut *conn)
                    .await?
            }
            Checkpoints::Postgres(pool) => {
                sqlx::query_as("SELECT position FROM automation_checkpoints WHERE name = $1")
                    .bind(name)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(row.map_or(0, |(position,)| u64::try_from(position).unwrap_or(0)))
    }

    /// Saves `position`; an older position never replaces a newer one (two nodes may share one
    /// PostgreSQL).
    pub async fn save(&self, name: &str, position: u64) -> Result<(), CheckpointError> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        match self {
            Checkpoints::Sqlite(conn) => {
                let mut conn = conn.lock().await;
                sqlx::query(
                    "INSERT INTO automation_checkpoints (name, position) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position
                     WHERE excluded.position > automation_checkpoints.position",
                )
                .bind(name)
                .bind(position)
                .execute(&mut *conn)
                .await?;
            }
            Checkpoints::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO automation_checkpoints (name, position) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position
                     WHERE excluded.position > automation_checkpoints.position",
                )
                .bind(name)
                .bind(position)
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }
}
