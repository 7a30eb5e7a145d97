//! Read models of the event log: the "Q" of CQRS. It owns the pure folds that turn records into
//! queryable views (tickets, queues, agent load, SLA timers, customer history, reports) and, in
//! the separate `runner` module, the task that feeds them from the log's subscription with
//! checkpoints, so that every event takes effect exactly once across crashes and restarts.
//!
//! Nothing here writes events: projections only read the log. Each view is a `Projection`: a
//! serializable in-memory model with a pure `apply(&mut self, &Record)`. See docs/projections.md.

pub mod agents;
pub mod customers;
pub mod name;
pub mod queues;
pub mod reports;
pub mod runner;
pub mod sla;
pub mod synth;
pub mod text;
pub mod tickets;

use domain::{Event, TicketId};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::Serialize;
use store::RecordRef;

pub use agents::AgentLoad;
pub use customers::Customers;
pub use queues::Queues;
pub use reports::Reports;
pub use runner::{
    Lag, ProjectionHandle, Projections, RunnerConfig, RunnerError, FOLD_NICE_DEFAULT,
};
pub use sla::SlaView;
pub use tickets::Tickets;

/// The hash map of the read models: keyed by ids (random UUIDs) and words, probed several
/// times per event on replay, where SipHash cost as much as a model's fold. foldhash is
/// seeded per process, like std's `RandomState` (already in the build, through hashbrown).
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A read model: a pure fold over the log plus what it takes to snapshot it.
///
/// `apply` must be total (it never fails and never panics: events are facts) and deterministic
/// (no clock, no randomness, no iteration-order dependence that leaks into answers), because the
/// runner's exactly-once guarantee and the rebuild both rely on "same records in, same model out".
pub trait Projection: Default + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// The name under which the snapshot is stored and which `docket projections` shows.
    const NAME: &'static str;
    /// Bumped whenever the snapshot shape or the meaning of the fold changes: a snapshot of
    /// another version is ignored and the model is rebuilt from the start of the log.
    const VERSION: u32;

    /// Folds one record. Records of other categories, and events the view does not need, are
    /// ignored.
    fn apply(&mut self, record: RecordRef<'_>) {
        if let Some(event) = TicketEvent::decode(record) {
            self.apply_event(&event);
        }
    }

    /// Folds one decoded ticket event.
    fn apply_event(&mut self, event: &TicketEvent);

    /// Rebuilds what the snapshot does not carry (secondary indexes) after loading one.
    fn restore(&mut self) {}

    /// Enters replay mode, on an empty model about to fold the log from the start: until
    /// `finish_replay`, `apply_event` may leave secondary indexes (sort orders, ordered queues,
    /// the reports' time index) unmaintained, and `finish_replay` builds them once, from the
    /// folded state, sorting flat vectors instead of updating ordered structures per event.
    /// Queries are only valid after `finish_replay`; the model then equals one folded
    /// incrementally.
    fn begin_replay(&mut self) {}

    /// Leaves replay mode: builds what `begin_replay` let go.
    fn finish_replay(&mut self) {}
}

/// A ticket event decoded from a record, with what every view needs to place it.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketEvent {
    pub ticket_id: TicketId,
    pub position: u64,
    pub stream_version: u64,
    /// When it happened: the `at` of the metadata when the writer recorded one (imported
    /// history keeps its own times), else when the log stored it.
    pub at: Timestamp,
    pub event: Event,
}

/// The stream category of tickets; every other category is ignored by the views.
pub const TICKET_CATEGORY: &str = "ticket";

/// The metadata's `at`, as text: parsed by `event_time` (borrowed unless it holds an escape).
#[derive(serde::Deserialize)]
struct EventTime<'a> {
    #[serde(borrow)]
    at: Option<std::borrow::Cow<'a, str>>,
}

/// The metadata's `at` (`None`: absent, or not a time), as serde reads it into `EventTime`,
/// with a fast path for the form writers store: a flat object of strings without escapes or
/// whitespace (`{"actor":"…","at":"…"}`), the rest read by serde.
fn metadata_time(metadata: &str) -> Option<Timestamp> {
    match flat_metadata_at(metadata) {
        Some(at) => at.and_then(event_time),
        None => serde_json::from_str::<EventTime>(metadata)
            .ok()
            .and_then(|time| time.at)
            .and_then(|at| event_time(&at)),
    }
}

/// The `at` of a flat object `{"key":"value",…}` whose keys and values are strings without
/// escapes, control characters or whitespace around them: `Some(None)` when there is no `at`,
/// `None` when the text is not of that form or has `at` twice (for serde to read: it rejects
/// a repeated field).
fn flat_metadata_at(metadata: &str) -> Option<Option<&str>> {
    /// A string without escapes at the start of `text`, and what follows it.
    fn quoted(text: &str) -> Option<(&str, &str)> {
        let body = text.strip_prefix('"')?;
        let end = body.find(['"', '\\'])?;
        let (string, rest) = body.split_at(end);
        let rest = rest.strip_prefix('"')?;
        (!string.bytes().any(|byte| byte < 0x20)).then_some((string, rest))
    }
    let mut rest = metadata.strip_prefix('{')?.strip_suffix('}')?;
    let mut at = None;
    while !rest.is_empty() {
        let (key, after) = quoted(rest)?;
        let (value, after) = quoted(after.strip_prefix(':')?)?;
        if key == "at" {
            if at.is_some() {
                return None;
            }
            at = Some(value);
        }
        rest = match after.strip_prefix(',') {
            // A comma must be followed by another member.
            Some("") => return None,
            Some(next) => next,
            None if after.is_empty() => after,
            None => return None,
        };
    }
    Some(at)
}

/// A timestamp as jiff reads it (`Timestamp`'s `FromStr`, which its serde `Deserialize` uses
/// too), with a fast path for the one form writers produce (jiff's `Display`:
/// `YYYY-MM-DDTHH:MM:SS[.fffffffff]Z`): replay parses one per record, and jiff's general
/// parser was 3% of a rebuild. Anything else the fast path does not take goes to jiff.
fn event_time(text: &str) -> Option<Timestamp> {
    utc_timestamp(text).or_else(|| text.parse().ok())
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, with a valid date, hour, minute and second (no leap
/// second), inside jiff's range; `None` for anything else.
fn utc_timestamp(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        bytes.get(range)?.iter().try_fold(0i64, |value, byte| {
            byte.is_ascii_digit()
                .then(|| value * 10 + i64::from(byte - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators
        .iter()
        .any(|(at, separator)| bytes.get(*at) != Some(separator))
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let (nanosecond, end) = match bytes.get(19) {
        Some(b'.') => {
            let digits = bytes[20..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            if !(1..=9).contains(&digits) {
                return None;
            }
            let fraction = number(20..20 + digits)?;
            (fraction * 10i64.pow(9 - digits as u32), 20 + digits)
        }
        _ => (0, 19),
    };
    if bytes.get(end..) != Some(b"Z".as_slice()) {
        return None;
    }
    let date = jiff::civil::Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?;
    let days = days_from_civil(year, month, i64::from(date.day()));
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Timestamp::new(seconds, i32::try_from(nanosecond).ok()?).ok()
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl TicketEvent {
    /// Decodes a ticket record, or `None` for records of other categories and for payloads this
    /// build cannot read (a newer schema than it knows): views skip what they cannot read
    /// rather than stop, and `docket audit` is where a malformed log is reported.
    pub fn decode(record: RecordRef<'_>) -> Option<TicketEvent> {
        if record.category != TICKET_CATEGORY {
            return None;
        }
        let uuid = record.stream_id.strip_prefix("ticket-")?;
        let ticket_id = TicketId(uuid::Uuid::parse_str(uuid).ok()?);
        let event =
            Event::from_stored(record.event_type, record.schema_version, record.payload).ok()?;
        // Only parse the metadata when it can hold a time: most records are live appends whose
        // recorded time is the event time, and parsing costs as much as the payload.
        let at = if record.metadata.contains("\"at\"") {
            metadata_time(record.metadata).unwrap_or(record.recorded_at)
        } else {
            record.recorded_at
        };
        Some(TicketEvent {
            ticket_id,
            position: record.position,
            stream_version: record.stream_version,
            at,
            event,
        })
    }
}

#[cfg(test)]
mod testkit;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth;

    /// Folds a synthetic history incrementally and in replay mode; both must be equal.
    fn replay_equals_incremental<P: Projection + PartialEq + std::fmt::Debug>(
        records: &[store::Record],
    ) {
        let mut incremental = P::default();
        let mut replayed = P::default();
        replayed.begin_replay();
        for record in records {
            incremental.apply(record.view());
            replayed.apply(record.view());
        }
        replayed.finish_replay();
        assert_eq!(replayed, incremental, "{}", P::NAME);
    }

    /// The metadata's time is read as jiff reads a `Timestamp` (its serde `Deserialize`, what
    /// the decode used before, and its `FromStr`), whether the fast path takes it or not.
    #[test]
    fn event_times_read_as_jiff_reads_them() {
        let check = |text: &str| {
            let jiff: Option<Timestamp> = text.parse().ok();
            let serde: Option<Timestamp> = serde_json::from_value(text.into()).ok();
            assert_eq!(serde, jiff, "serde and FromStr of {text:?}");
            assert_eq!(event_time(text), jiff, "{text:?}");
            if let Some(fast) = utc_timestamp(text) {
                assert_eq!(Some(fast), jiff, "fast path of {text:?}");
            }
        };
        let (mut taken, mut written) = (0, 0);
        // Every day of a few leap cycles and centuries, at varied times, as `Display` writes
        // them (what writers store), with and without fractions.
        let mut seconds: i64 = -2_208_988_800; // 1900-01-01
        let mut state: u64 = 42;
        while seconds < 4_102_444_800 {
            // 2100-01-01
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let nanos = match state % 4 {
                0 => 0,
                1 => ((state >> 8) % 1_000) as i32 * 1_000_000,
                _ => ((state >> 8) % 1_000_000_000) as i32,
            };
            let at = Timestamp::new(seconds, nanos).expect("in range");
            let text = at.to_string();
            check(&text);
            taken += usize::from(utc_timestamp(&text).is_some());
            written += 1;
            seconds += 86_400 + i64::try_from((state >> 20) % 3_600).expect("small");
        }
        assert!(written > 70_000, "{written} timestamps");
        assert_eq!(taken, written, "the fast path takes what Display writes");
        for text in [
            "1970-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "9999-12-30T22:00:00.999999999Z",
            "9999-12-31T23:59:59Z",
            "2024-02-29T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-04-31T12:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-06T24:00:00Z",
            "2024-05-06T23:60:00Z",
            "2016-12-31T23:59:60Z",
            "2024-05-06T10:11:12.Z",
            "2024-05-06T10:11:12.1234567891Z",
            "2024-05-06T10:11:12,5Z",
            "2024-05-06T10:11:12.5z",
            "2024-05-06t10:11:12Z",
            "2024-05-06 10:11:12Z",
            "2024-05-06T10:11:12+08:00",
            "2024-05-06T10:11:12Z[UTC]",
            "2024-05-06T10:11:12ZZ",
            "2024-05-06T10:11Z",
            "2024-05-06",
            "+2024-05-06T10:11:12Z",
            "-0001-05-06T10:11:12Z",
            "2024-05-06T10:11:12",
            "２０２４-05-06T10:11:12Z",
            "",
        ] {
            check(text);
        }
    }

    /// The metadata's time is what serde reads into `EventTime`, whether the flat fast path
    /// takes the text or not.
    #[test]
    fn metadata_times_read_as_serde_reads_them() {
        let check = |metadata: &str| {
            let serde = serde_json::from_str::<EventTime>(metadata)
                .ok()
                .and_then(|time| time.at)
                .and_then(|at| event_time(&at));
            assert_eq!(metadata_time(metadata), serde, "{metadata}");
        };
        let at = "2024-05-06T10:11:12.5Z";
        let flat = [
            format!(r#"{{"actor":"synth","at":"{at}"}}"#),
            format!(r#"{{"at":"{at}"}}"#),
            format!(r#"{{"at":"{at}","actor":"synth","via":"api"}}"#),
            format!(r#"{{"actor":"用户","at":"{at}"}}"#),
            r#"{"actor":"synth"}"#.to_owned(),
            r#"{"at":"not a time"}"#.to_owned(),
            r#"{"at":"2024-05-06T10:11:12+08:00"}"#.to_owned(),
            "{}".to_owned(),
        ];
        for metadata in &flat {
            assert!(flat_metadata_at(metadata).is_some(), "{metadata}");
            check(metadata);
        }
        for metadata in [
            format!(r#"{{"at":"{at}","at":"{at}"}}"#),
            format!(r#"{{ "at":"{at}"}}"#),
            format!(r#"{{"at" :"{at}"}}"#),
            format!(r#"{{"at":"{at}",}}"#),
            format!(r#"{{,"at":"{at}"}}"#),
            format!(r#"{{"at":"{at}"}} "#),
            format!(r#"{{"at":"{at}"}}x"#),
            format!(r#"{{"actor":"a\"b","at":"{at}"}}"#),
            format!(r#"{{"actor":"a\u0041","at":"{at}"}}"#),
            format!(r#"{{"a\u0074":"{at}"}}"#),
            r#"{"at":"2024-05-06T10:11:12\u002e5Z"}"#.to_owned(),
            format!("{{\"actor\":\"a\tb\",\"at\":\"{at}\"}}"),
            format!(r#"{{"actor":{{"at":"x"}},"at":"{at}"}}"#),
            format!(r#"{{"actor":null,"at":"{at}"}}"#),
            format!(r#"{{"n":5,"at":"{at}"}}"#),
            r#"{"at":null}"#.to_owned(),
            r#"{"at":5}"#.to_owned(),
            r#"{"at":"#.to_owned(),
            r#"{"at""#.to_owned(),
            "{".to_owned(),
            "".to_owned(),
        ] {
            assert!(flat_metadata_at(&metadata).is_none(), "{metadata}");
            check(&metadata);
        }
    }

    #[test]
    fn replay_mode_folds_to_the_incremental_model() {
        let mut config = synth::SynthConfig::small(3, 800);
        config.concurrent_tickets = 150;
        let records = synth::records(synth::history(config));
        assert!(
            records.len() > 5000,
            "a long enough history: {}",
            records.len()
        );
        replay_equals_incremental::<Tickets>(&records);
        replay_equals_incremental::<Queues>(&records);
        replay_equals_incremental::<AgentLoad>(&records);
        replay_equals_incremental::<SlaView>(&records);
        replay_equals_incremental::<Customers>(&records);
        // Reports compare their sheets here; their index is compared answer by answer in
        // reports::tests.
        replay_equals_incremental::<Reports>(&records);
    }
}
