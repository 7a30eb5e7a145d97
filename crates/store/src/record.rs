//! The shapes that cross the store's boundary: stream ids, events to append, stored records,
//! append outcomes, and the limits every input is checked against before it reaches a database.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::InvalidInput;

/// Longest stream id, in bytes.
pub const STREAM_ID_BYTES_MAX: usize = 128;
/// Longest stream category (the part of a stream id before its first `-`), in bytes.
pub const CATEGORY_BYTES_MAX: usize = 32;
/// Longest event type name, in bytes.
pub const EVENT_TYPE_BYTES_MAX: usize = 128;
/// Largest event: event type, payload and metadata together, in bytes.
pub const EVENT_BYTES_MAX: usize = 1024 * 1024;
/// Most events one append may carry.
pub const APPEND_EVENTS_MAX: usize = 1000;
/// Most records one read returns; larger limits are clamped to it.
pub const READ_LIMIT_MAX: usize = 10_000;

/// A validated stream id: `<category>-<rest>` or just `<category>`.
///
/// The category is lowercase ASCII letters, digits and `_`, starting with a letter; the rest is
/// ASCII letters, digits and `-_.:@`. The charset is narrow on purpose: stream ids end up in URLs,
/// file names and log lines, and an auditor's script must encode them without ambiguity.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    pub fn new(id: impl Into<String>) -> Result<StreamId, InvalidInput> {
        let id = id.into();
        if id.is_empty() {
            return Err(InvalidInput::StreamIdEmpty);
        }
        if id.len() > STREAM_ID_BYTES_MAX {
            return Err(InvalidInput::StreamIdTooLong {
                bytes: id.len(),
                max: STREAM_ID_BYTES_MAX,
            });
        }
        let category_end = id.find('-').unwrap_or(id.len());
        if category_end == 0 || category_end > CATEGORY_BYTES_MAX {
            return Err(InvalidInput::StreamCategoryInvalid { stream_id: id });
        }
        for (index, ch) in id.char_indices() {
            let allowed = if index < category_end {
                ch.is_ascii_lowercase() || (index > 0 && (ch.is_ascii_digit() || ch == '_'))
            } else {
                ch.is_ascii_alphanumeric() || "-_.:@".contains(ch)
            };
            if !allowed {
                return Err(InvalidInput::StreamIdCharset {
                    stream_id: id,
                    index,
                    ch,
                });
            }
        }
        Ok(StreamId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }

    /// The part before the first `-`: `ticket` for `ticket-0190…`.
    pub fn category(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<StreamId, D::Error> {
        let id = String::deserialize(deserializer)?;
        StreamId::new(id).map_err(serde::de::Error::custom)
    }
}

/// What the caller believes the stream's version is before its append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "version")]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have this version (versions start at 1).
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// An event to append. Payload and metadata are JSON text, stored byte for byte as given: the
/// hash chain covers exactly these bytes, so a later encryption of personal fields inside the
/// payload is hashed as ciphertext and erasing the key leaves the chain intact.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    pub payload: Box<RawValue>,
    /// A JSON object: actor, causation id, correlation id and whatever the caller adds.
    pub metadata: Box<RawValue>,
}

impl NewEvent {
    pub(crate) fn validate(&self, index: usize) -> Result<(), InvalidInput> {
        let event_type = &self.event_type;
        if event_type.is_empty()
            || event_type.len() > EVENT_TYPE_BYTES_MAX
            || !event_type
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
        {
            return Err(InvalidInput::EventTypeInvalid {
                index,
                event_type: event_type.clone(),
            });
        }
        let bytes = event_type.len() + self.payload.get().len() + self.metadata.get().len();
        if bytes > EVENT_BYTES_MAX {
            return Err(InvalidInput::EventTooLarge {
                index,
                bytes,
                max: EVENT_BYTES_MAX,
            });
        }
        if !self.metadata.get().trim_start().starts_with('{') {
            return Err(InvalidInput::MetadataNotObject { index });
        }
        Ok(())
    }
}

/// Validates a whole append before it is queued for the writer.
pub(crate) fn validate_append(events: &[NewEvent]) -> Result<(), InvalidInput> {
    if events.is_empty() {
        return Err(InvalidInput::NoEvents);
    }
    if events.len() > APPEND_EVENTS_MAX {
        return Err(InvalidInput::TooManyEvents {
            count: events.len(),
            max: APPEND_EVENTS_MAX,
        });
    }
    events
        .iter()
        .enumerate()
        .try_for_each(|(index, event)| event.validate(index))
}

/// A SHA-256 digest in the hash chains.
pub type Hash = [u8; 32];

/// One stored event, as read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the whole log: 1, 2, 3… without gaps, in commit order.
    pub position: u64,
    pub stream_id: String,
    pub category: String,
    /// Version within the stream: 1, 2, 3… without gaps.
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u32,
    /// JSON text, exactly as stored.
    pub payload: String,
    /// JSON object text, exactly as stored.
    pub metadata: String,
    /// The command id of the append that wrote this event.
    pub command_id: Uuid,
    /// When the log stored the event (UTC, microsecond precision).
    pub recorded_at: Timestamp,
    pub stream_hash: Hash,
    pub global_hash: Hash,
}

/// The result of an append, and of any retry of it with the same command id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// The stream's version after the append: the version of its last event.
    pub stream_version: u64,
    /// Global positions of the first and last event written.
    pub first_position: u64,
    pub last_position: u64,
    /// True when this command id had been appended before and nothing was written now.
    pub duplicate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_rules() {
        let check = |id: &str| match StreamId::new(id) {
            Ok(stream) => format!("ok category={}", stream.category()),
            Err(error) => format!("error: {error}"),
        };
        let max_id = format!("t-{}", "a".repeat(STREAM_ID_BYTES_MAX - 2));
        let too_long = format!("{max_id}a");
        let cases = [
            "ticket-0190b2c4-7e2a-7cc0-8000-000000000001",
            "ticket",
            "sla_timer-42",
            "",
            "-x",
            "Ticket-1",
            "1ticket-2",
            "ticket-a/b",
            "ticket-é",
            &max_id,
            &too_long,
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|id| format!("{:.40} => {}", id, check(id)))
            .collect();
        expect_test::expect![[r#"
            ticket-0190b2c4-7e2a-7cc0-8000-000000000 => ok category=ticket
            ticket => ok category=ticket
            sla_timer-42 => ok category=sla_timer
             => error: stream id is empty
            -x => error: stream id "-x" must start with a category of 1 to 32 bytes before the first '-'
            Ticket-1 => error: stream id "Ticket-1" has a character not allowed at byte 0: 'T' (categories use a-z, 0-9 and _; the rest a-z, A-Z, 0-9 and -_.:@)
            1ticket-2 => error: stream id "1ticket-2" has a character not allowed at byte 0: '1' (categories use a-z, 0-9 and _; the rest a-z, A-Z, 0-9 and -_.:@)
            ticket-a/b => error: stream id "ticket-a/b" has a character not allowed at byte 8: '/' (categories use a-z, 0-9 and _; the rest a-z, A-Z, 0-9 and -_.:@)
            ticket-é => error: stream id "ticket-é" has a character not allowed at byte 7: 'é' (categories use a-z, 0-9 and _; the rest a-z, A-Z, 0-9 and -_.:@)
            t-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa => ok category=t
            t-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa => error: stream id is 129 bytes long; the most is 128"#]]
        .assert_eq(&actual.join("\n"));
    }
}
