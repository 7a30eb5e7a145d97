//! Pages of records for replaying the log (rebuilding read models): what a fold needs of each
//! record, in a few text buffers, handed out as borrowed `RecordRef`s.
//!
//! On SQLite, `stepped` fills a page from a plain range scan (the fastest read). This module
//! keeps the read it replaced, `Store::read_all_concat`, for the benchmark: through sqlx,
//! SQLite hands every result row from its worker thread to the caller one at a time, which
//! costs about 6 µs a row, so one result row carries `PACKED_CHUNK_MAX` records joined into one
//! text value (`group_concat` of `concat_ws`), with separators that valid JSON text can never
//! hold raw (the control characters U+001E and U+001F must be escaped inside JSON strings and
//! are not JSON whitespace; every other column is a number or a validated name), split here
//! without copying. PostgreSQL streams rows cheaply and is read the ordinary way, into the same
//! page shape.
//!
//! A page leaves out what replay does not need: event and command ids and the hashes (`verify`
//! is the reader of those).

use std::ops::Range;

use jiff::Timestamp;
use sqlx::{PgPool, SqlitePool};

use crate::error::StoreError;
use crate::record::Record;

/// Records packed into one SQLite result row. The most one record takes is `EVENT_BYTES_MAX`
/// (1 MiB of type, payload and metadata) plus a few hundred bytes of names and numbers, so a
/// chunk stays under 513 MiB, below SQLite's limit of 1,000,000,000 bytes for one value.
pub const PACKED_CHUNK_MAX: usize = 512;

const FIELD: char = '\u{1f}';
const RECORD: char = '\u{1e}';

/// One record as replay sees it, borrowed from a `RecordPage` (or from a `Record`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub position: u64,
    pub stream_id: &'a str,
    pub category: &'a str,
    pub stream_version: u64,
    pub event_type: &'a str,
    pub schema_version: u32,
    /// JSON text, exactly as stored.
    pub payload: &'a str,
    /// JSON object text, exactly as stored.
    pub metadata: &'a str,
    pub recorded_at: Timestamp,
}

impl Record {
    /// The replay view of this record.
    pub fn view(&self) -> RecordRef<'_> {
        RecordRef {
            position: self.position,
            stream_id: &self.stream_id,
            category: &self.category,
            stream_version: self.stream_version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
            metadata: &self.metadata,
            recorded_at: self.recorded_at,
        }
    }
}

#[derive(Clone, Debug)]
struct Span {
    text: usize,
    position: u64,
    stream_version: u64,
    schema_version: u32,
    recorded_at: Timestamp,
    stream_id: Range<usize>,
    category: Range<usize>,
    event_type: Range<usize>,
    payload: Range<usize>,
    metadata: Range<usize>,
}

/// Contiguous records of the log, in position order, packed for replay.
#[derive(Clone, Debug, Default)]
pub struct RecordPage {
    texts: Vec<String>,
    spans: Vec<Span>,
}

impl RecordPage {
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The position of the last record (`None` for an empty page).
    pub fn last_position(&self) -> Option<u64> {
        self.spans.last().map(|span| span.position)
    }

    pub fn get(&self, index: usize) -> Option<RecordRef<'_>> {
        let span = self.spans.get(index)?;
        let text = &self.texts[span.text];
        Some(RecordRef {
            position: span.position,
            stream_id: &text[span.stream_id.clone()],
            category: &text[span.category.clone()],
            stream_version: span.stream_version,
            event_type: &text[span.event_type.clone()],
            schema_version: span.schema_version,
            payload: &text[span.payload.clone()],
            metadata: &text[span.metadata.clone()],
            recorded_at: span.recorded_at,
        })
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        (0..self.spans.len()).map(|index| self.get(index).expect("an index below len"))
    }

    /// Packs records read the ordinary way (PostgreSQL, tests).
    pub fn from_records(records: &[Record]) -> RecordPage {
        let mut text = String::new();
        let push = |text: &mut String, value: &str| {
            let start = text.len();
            text.push_str(value);
            start..text.len()
        };
        let spans = records
            .iter()
            .map(|record| Span {
                text: 0,
                position: record.position,
                stream_version: record.stream_version,
                schema_version: record.schema_version,
                recorded_at: record.recorded_at,
                stream_id: push(&mut text, &record.stream_id),
                category: push(&mut text, &record.category),
                event_type: push(&mut text, &record.event_type),
                payload: push(&mut text, &record.payload),
                metadata: push(&mut text, &record.metadata),
            })
            .collect();
        RecordPage {
            texts: vec![text],
            spans,
        }
    }

    /// An empty page with room for `records` records and `text_bytes` bytes of their text.
    pub(crate) fn with_capacity(records: usize, text_bytes: usize) -> RecordPage {
        RecordPage {
            texts: vec![String::with_capacity(text_bytes)],
            spans: Vec::with_capacity(records),
        }
    }

    /// Appends one record as the database returns it, copying its text into the page's last
    /// text buffer; out-of-range numbers are corrupt data.
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per column of the replay read, in the order it selects them"
    )]
    pub(crate) fn push(
        &mut self,
        position: i64,
        stream_id: &str,
        category: &str,
        stream_version: i64,
        event_type: &str,
        schema_version: i64,
        recorded_at: i64,
        metadata: &str,
        payload: &str,
    ) -> Result<(), StoreError> {
        if self.texts.is_empty() {
            self.texts.push(String::new());
        }
        let index = self.texts.len() - 1;
        let text = &mut self.texts[index];
        let mut copy = |value: &str| {
            let start = text.len();
            text.push_str(value);
            start..text.len()
        };
        let stream_id = copy(stream_id);
        let category = copy(category);
        let event_type = copy(event_type);
        let metadata = copy(metadata);
        let payload = copy(payload);
        self.spans.push(Span {
            text: index,
            position: crate::to_u64(position)?,
            stream_version: crate::to_u64(stream_version)?,
            schema_version: schema_version_of(schema_version)?,
            recorded_at: timestamp_of(recorded_at)?,
            stream_id,
            category,
            event_type,
            payload,
            metadata,
        });
        Ok(())
    }

    /// Splits one packed text into spans; a text that does not split as packed is corrupt data.
    fn add_packed(&mut self, text: String) -> Result<(), StoreError> {
        let index = self.texts.len();
        let base = text.as_ptr() as usize;
        let range = |part: &str| {
            let start = part.as_ptr() as usize - base;
            start..start + part.len()
        };
        for packed in text.split(RECORD) {
            let corrupt = || StoreError::Corrupt {
                message: format!(
                    "a packed record does not split: {:?}",
                    packed.chars().take(80).collect::<String>()
                ),
            };
            let mut fields = packed.splitn(9, FIELD);
            let mut next = || fields.next().ok_or_else(corrupt);
            let number = |field: &str| field.parse::<i64>().map_err(|_| corrupt());
            let position = crate::to_u64(number(next()?)?)?;
            let stream_id = range(next()?);
            let category = range(next()?);
            let stream_version = crate::to_u64(number(next()?)?)?;
            let event_type = range(next()?);
            let schema_version = number(next()?)?;
            let recorded_at = number(next()?)?;
            let metadata = range(next()?);
            let payload = range(next()?);
            self.spans.push(Span {
                text: index,
                position,
                stream_version,
                schema_version: schema_version_of(schema_version)?,
                recorded_at: timestamp_of(recorded_at)?,
                stream_id,
                category,
                event_type,
                payload,
                metadata,
            });
        }
        self.texts.push(text);
        Ok(())
    }

    /// Puts the spans in position order (the database is not asked to order inside an
    /// aggregate) and checks that they are exactly `after + 1 ..`.
    pub(crate) fn finish(&mut self, after: u64) -> Result<(), StoreError> {
        if !self
            .spans
            .windows(2)
            .all(|pair| pair[0].position < pair[1].position)
        {
            self.spans.sort_unstable_by_key(|span| span.position);
        }
        for (offset, span) in self.spans.iter().enumerate() {
            if span.position != after + 1 + offset as u64 {
                return Err(StoreError::Corrupt {
                    message: format!(
                        "packed read after {after}: position {} where {} was expected",
                        span.position,
                        after + 1 + offset as u64
                    ),
                });
            }
        }
        Ok(())
    }
}

fn schema_version_of(schema_version: i64) -> Result<u32, StoreError> {
    u32::try_from(schema_version).map_err(|_| StoreError::Corrupt {
        message: format!("schema version {schema_version} out of range"),
    })
}

fn timestamp_of(recorded_at: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(recorded_at).map_err(|error| StoreError::Corrupt {
        message: format!("recorded_at {recorded_at}: {error}"),
    })
}

/// One row per chunk of `PACKED_CHUNK_MAX` positions in `(?1, ?1 + ?2]`; each row is that
/// chunk's records packed. Positions are contiguous, so a position range is a count, and each
/// chunk is a range scan of the table's b-tree with no sorting.
const SQLITE_PACKED: &str = "
WITH RECURSIVE chunks(first) AS (
    SELECT ?1 + 1 UNION ALL SELECT first + ?3 FROM chunks WHERE first + ?3 <= ?1 + ?2
)
SELECT (SELECT group_concat(concat_ws(char(31), position, stream_id, category, stream_version,
            event_type, schema_version, recorded_at, metadata, payload), char(30))
        FROM events
        WHERE position >= first AND position < min(first + ?3, ?1 + ?2 + 1))
FROM chunks";

pub(crate) async fn read_sqlite(
    pool: &SqlitePool,
    after: u64,
    limit: usize,
) -> Result<RecordPage, StoreError> {
    let packed: Vec<(Option<String>,)> = sqlx::query_as(SQLITE_PACKED)
        .bind(crate::to_i64(after))
        .bind(crate::to_i64(limit as u64))
        .bind(crate::to_i64(PACKED_CHUNK_MAX as u64))
        .fetch_all(pool)
        .await?;
    let mut page = RecordPage::default();
    // Chunks past the head come back as NULL; every chunk before the last full one is full.
    for (text,) in packed {
        match text {
            Some(text) => page.add_packed(text)?,
            None => break,
        }
    }
    page.finish(after)?;
    Ok(page)
}

pub(crate) async fn read_postgres(
    pool: &PgPool,
    after: u64,
    limit: usize,
) -> Result<RecordPage, StoreError> {
    let records = crate::postgres::read_all(pool, after, limit).await?;
    let mut page = RecordPage::from_records(&records);
    page.finish(after)?;
    Ok(page)
}
