//! Read models of the event log: the "Q" of CQRS. It owns the pure folds that turn records into
//! queryable views (tickets, queues, agent load, SLA timers, customer history, reports) and, in
//! the separate `runner` module, the task that feeds them from the log's subscription with
//! checkpoints, so that every event takes effect exactly once across crashes and restarts.
//!
//! Nothing here writes events: projections only read the log. Each view is a `Projection`: a
//! serializable in-memory model with a pure `apply(&mut self, &Record)`. See docs/projections.md.

pub mod agents;
pub mod customers;
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
pub use runner::{Lag, ProjectionHandle, Projections, RunnerConfig, RunnerError};
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

#[derive(serde::Deserialize)]
struct EventTime {
    at: Option<Timestamp>,
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
            serde_json::from_str::<EventTime>(record.metadata)
                .ok()
                .and_then(|time| time.at)
                .unwrap_or(record.recorded_at)
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
