//! The replay read of the SQLite log: rows stepped through `rusqlite` by the thread that reads
//! them (one of tokio's blocking threads), with borrowed column access, straight into a
//! `RecordPage` (one text buffer per page).
//!
//! sqlx hands every SQLite row from its worker thread to the caller, which costs more than a
//! read model's whole fold of the record; the SQL-packed read (`packed`, `group_concat` of
//! `concat_ws`) amortises that hand-over but makes SQLite stringify every number and copy every
//! text twice. Stepping a plain range scan of the table's b-tree costs neither: integers come
//! out as integers, texts are borrowed from SQLite's row buffer and copied once, into the page.
//! `rusqlite` links the same `libsqlite3-sys` as sqlx (one SQLite in the binary) and its API is
//! safe. The connections are read-only; in WAL mode they read beside the writer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::StoreError;
use crate::packed::RecordPage;

/// Idle read-only connections kept for the next replay read; more are opened when several
/// reads run at once, and closed after them.
const IDLE_CONNECTIONS_MAX: usize = 2;
/// Bytes of text reserved per record of a page before the first row is read (the synthetic
/// history averages about 250: ids, type, metadata and payload).
const PAGE_TEXT_BYTES_PER_RECORD: usize = 256;

/// Bytes of the database file a replay connection maps into memory (SQLite caps it at its
/// compile-time limit, 2 GiB by default): pages are read in place instead of copied from the
/// kernel's page cache into SQLite's by a `pread` each.
const MMAP_BYTES_MAX: i64 = 1 << 31;

/// The records a fold needs, in position order; the same columns as the SQL-packed read.
const SQLITE_STEPPED: &str = "
SELECT position, stream_id, category, stream_version, event_type, schema_version, recorded_at,
       metadata, payload
FROM events
WHERE position > ?1
ORDER BY position
LIMIT ?2";

/// Read-only connections to one SQLite file for replay reads, opened on demand.
#[derive(Clone, Debug)]
pub(crate) struct SteppedReader {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl SteppedReader {
    pub(crate) fn new(path: PathBuf) -> SteppedReader {
        SteppedReader {
            path,
            idle: Arc::default(),
        }
    }

    /// Records with `position > after`, at most `limit`, read on a blocking thread so that the
    /// caller's runtime keeps running (and a fold can run beside the read).
    pub(crate) async fn read(&self, after: u64, limit: usize) -> Result<RecordPage, StoreError> {
        let reader = self.clone();
        tokio::task::spawn_blocking(move || reader.read_blocking(after, limit))
            .await
            .map_err(|error| StoreError::Database {
                message: format!("the replay read stopped: {error}"),
            })?
    }

    fn read_blocking(&self, after: u64, limit: usize) -> Result<RecordPage, StoreError> {
        let idle = self.idle.lock().map(|mut idle| idle.pop());
        let connection = match idle {
            Ok(Some(connection)) => connection,
            // A poisoned lock only means another read panicked; a new connection is as good.
            Ok(None) | Err(_) => self.open()?,
        };
        let page = read_page(&connection, after, limit)?;
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_CONNECTIONS_MAX {
                idle.push(connection);
            }
        }
        Ok(page)
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|error| from_rusqlite(&error, "opening a replay connection"))?;
        connection
            .busy_timeout(crate::sqlite::BUSY_TIMEOUT)
            .map_err(|error| from_rusqlite(&error, "setting the busy timeout"))?;
        connection
            .pragma_update(None, "mmap_size", MMAP_BYTES_MAX)
            .map_err(|error| from_rusqlite(&error, "setting mmap_size"))?;
        Ok(connection)
    }
}

fn read_page(connection: &Connection, after: u64, limit: usize) -> Result<RecordPage, StoreError> {
    let sql_error = |error: rusqlite::Error| from_rusqlite(&error, "reading the log for replay");
    let mut statement = connection
        .prepare_cached(SQLITE_STEPPED)
        .map_err(sql_error)?;
    let mut rows = statement
        .query((crate::to_i64(after), crate::to_i64(limit as u64)))
        .map_err(sql_error)?;
    let mut page = RecordPage::with_capacity(limit, limit * PAGE_TEXT_BYTES_PER_RECORD);
    while let Some(row) = rows.next().map_err(sql_error)? {
        let column = |index: usize| row.get_ref(index).map_err(sql_error);
        let position = column(0)?.as_i64().map_err(|error| StoreError::Corrupt {
            message: format!("column position of a record after {after}: {error}"),
        })?;
        let corrupt = |name: &str, error: rusqlite::types::FromSqlError| StoreError::Corrupt {
            message: format!("column {name} of position {position}: {error}"),
        };
        let integer = |index: usize, name: &str| {
            column(index)?
                .as_i64()
                .map_err(|error| corrupt(name, error))
        };
        let text = |index: usize, name: &str| {
            column(index)?
                .as_str()
                .map_err(|error| corrupt(name, error))
        };
        page.push(
            position,
            text(1, "stream_id")?,
            text(2, "category")?,
            integer(3, "stream_version")?,
            text(4, "event_type")?,
            integer(5, "schema_version")?,
            integer(6, "recorded_at")?,
            text(7, "metadata")?,
            text(8, "payload")?,
        )?;
    }
    page.finish(after)?;
    Ok(page)
}

/// Sorts SQLite's errors as `from_sqlx` does: busy and locked are transient.
fn from_rusqlite(error: &rusqlite::Error, doing: &str) -> StoreError {
    let message = format!("{doing}: {error}");
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable { message }
        }
        _ => StoreError::Database { message },
    }
}
