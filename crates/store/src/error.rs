//! The store's errors: bad input (the caller's to fix), conflicts (the caller's to decide), and
//! database failures (transient or not). Every variant is cloneable because one database failure
//! in a group commit is reported to every caller in the batch.

use std::sync::Arc;

use crate::record::ExpectedVersion;

/// Input the store refuses before touching the database.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error("stream id is empty")]
    StreamIdEmpty,
    #[error("stream id is {bytes} bytes long; the most is {max}")]
    StreamIdTooLong { bytes: usize, max: usize },
    #[error(
        "stream id {stream_id:?} must start with a category of 1 to 32 bytes before the first '-'"
    )]
    StreamCategoryInvalid { stream_id: String },
    #[error(
        "stream id {stream_id:?} has a character not allowed at byte {index}: {ch:?} \
         (categories use a-z, 0-9 and _; the rest a-z, A-Z, 0-9 and -_.:@)"
    )]
    StreamIdCharset {
        stream_id: String,
        index: usize,
        ch: char,
    },
    #[error("an append needs at least one event")]
    NoEvents,
    #[error("an append carries {count} events; the most is {max}")]
    TooManyEvents { count: usize, max: usize },
    #[error("event {index} is {bytes} bytes (type, payload and metadata); the most is {max}")]
    EventTooLarge {
        index: usize,
        bytes: usize,
        max: usize,
    },
    #[error("event {index} has type {event_type:?}: use 1 to 128 ASCII letters, digits and _.-")]
    EventTypeInvalid { index: usize, event_type: String },
    #[error("event {index} has metadata that is not a JSON object")]
    MetadataNotObject { index: usize },
}

/// Why an append wrote nothing.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AppendError {
    #[error(
        "stream {stream} {}; the append expected {expected}",
        actual.map_or_else(|| "does not exist".to_owned(), |v| format!("is at version {v}"))
    )]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("command id {command_id} was already used for stream {original_stream}")]
    CommandIdReused {
        command_id: uuid::Uuid,
        original_stream: String,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A failure of the database or of the store itself.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy; retrying later is safe (appends are idempotent
    /// per command id, so a retry after an ambiguous failure never writes twice).
    #[error("the event store is unavailable: {message}")]
    Unavailable { message: String },
    /// A database error that retrying will not fix.
    #[error("event store database error: {message}")]
    Database { message: String },
    /// A unique index refused a row: a writer that did not hold the log's write lock, or the
    /// group commit's fast path whose memory was stale (it then plans again and never reports
    /// this).
    #[error("event store write refused by a unique index: {message}")]
    UniqueViolation { message: String },
    /// The stored data does not decode: a column holds a value the store never writes.
    #[error("event store data is corrupt: {message}")]
    Corrupt { message: String },
    /// An applied migration differs from the one this build ships: migrations are append-only.
    #[error("migration {component}/{version} ({name}) was changed after it was applied")]
    MigrationChanged {
        component: String,
        version: i64,
        name: String,
    },
    /// The database was migrated by a newer build.
    #[error("the database has migration {component}/{version}, newer than this build knows")]
    MigrationUnknown { component: String, version: i64 },
    #[error("bad store configuration: {message}")]
    Config { message: String },
    /// The store's writer has stopped (the store is shutting down).
    #[error("the event store is shutting down")]
    Closed,
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::UniqueViolation { .. })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        from_sqlx(&error)
    }
}

impl From<Arc<sqlx::Error>> for StoreError {
    fn from(error: Arc<sqlx::Error>) -> StoreError {
        from_sqlx(&error)
    }
}

/// Sorts database errors into transient (the connection, the server or a lock) and the rest.
fn from_sqlx(error: &sqlx::Error) -> StoreError {
    let message = error.to_string();
    if let sqlx::Error::Database(database) = error {
        if database.is_unique_violation() {
            return StoreError::UniqueViolation { message };
        }
    }
    let transient = match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => match database.code().as_deref() {
            // PostgreSQL: connection exceptions, operator intervention (shutdown, terminated
            // backend), insufficient resources, lock timeouts and serialization failures.
            Some(code) if code.starts_with("08") || code.starts_with("57") => true,
            Some(code) if code.starts_with("53") => true,
            Some("55P03" | "40001" | "40P01") => true,
            // SQLite: SQLITE_BUSY and SQLITE_LOCKED with their extended codes.
            Some("5" | "6" | "261" | "262" | "517") => true,
            _ => false,
        },
        _ => false,
    };
    if transient {
        StoreError::Unavailable { message }
    } else {
        StoreError::Database { message }
    }
}
