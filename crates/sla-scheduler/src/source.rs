//! Sources of due work for the driver. A `TimerSource` folds the log (every record, in order),
//! keeps its own timers, and turns what is due into `Work`: a domain command for one ticket with
//! a deterministic command id. The SLA engine is one source (`SlaSource`); time-based
//! automations plug in as another. A source keeps nothing across restarts: the driver builds a
//! fresh one and feeds it the whole log whenever it becomes leader.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use domain::{Command, CustomerId, Event, TicketId};
use jiff::Timestamp;
use store::Record;
use uuid::Uuid;

use crate::engine::TicketSla;
use crate::policy::{Metric, Policies, Trigger};
use crate::timers::{TimerId, TimerKind, Timers};

/// A command the driver must issue through the domain, as the System actor.
#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    pub ticket: TicketId,
    pub command: Command,
    /// The same for every fire of the same due item, so a second fire appends nothing.
    pub command_id: Uuid,
    /// When the work was due; recorded beside the time it was processed.
    pub due_at: Timestamp,
    /// The source's name, recorded in the event metadata.
    pub source: &'static str,
}

/// A source of due work for the driver.
pub trait TimerSource: Send {
    /// A short name, recorded in the metadata of the events its work appends.
    fn name(&self) -> &'static str;
    /// Folds one record of the log; records arrive in log order, each once.
    fn observe(&mut self, record: &Record);
    /// The earliest instant something is due, if anything is.
    fn next_deadline(&self) -> Option<Timestamp>;
    /// Takes out what is due at `now`, oldest first, at most `max` items.
    fn fire_due(&mut self, now: Timestamp, max: usize) -> Vec<Work>;
    /// How many timers it holds (for metrics).
    fn timers(&self) -> usize;
}

/// The time an event happened: the command's `at` in the metadata, else when it was stored.
pub fn event_time(record: &Record) -> Timestamp {
    #[derive(serde::Deserialize)]
    struct Metadata {
        at: Option<Timestamp>,
    }
    serde_json::from_str::<Metadata>(&record.metadata)
        .ok()
        .and_then(|metadata| metadata.at)
        .unwrap_or(record.recorded_at)
}

/// The ticket a `ticket-…` stream holds.
pub fn ticket_of(record: &Record) -> Option<TicketId> {
    let id = record.stream_id.strip_prefix("ticket-")?;
    Uuid::parse_str(id).ok().map(TicketId)
}

/// The customer tier of tickets whose requester the directory does not know.
pub const DEFAULT_TIER: &str = "normal";

/// The SLA engine as a source: every ticket's clocks, the timers they owe, and the tickets whose
/// due times the log does not yet record.
#[derive(Debug)]
pub struct SlaSource {
    policies: Arc<Policies>,
    tiers: HashMap<CustomerId, String>,
    /// Boxed: a map's spare slots then cost a pointer, not a whole ticket.
    tickets: HashMap<TicketId, Box<TicketSla>>,
    timers: Timers,
    /// Tickets whose clocks moved, with when they moved, oldest first, once each.
    stale: VecDeque<(TicketId, Timestamp)>,
    stale_set: HashSet<TicketId>,
}

impl SlaSource {
    pub fn new(policies: Arc<Policies>) -> SlaSource {
        SlaSource {
            policies,
            tiers: HashMap::new(),
            tickets: HashMap::new(),
            timers: Timers::default(),
            stale: VecDeque::new(),
            stale_set: HashSet::new(),
        }
    }

    /// Records a customer's tier (what a `CustomerRegistered` record says).
    pub fn register_customer(&mut self, customer: CustomerId, tier: &str) {
        self.tiers.insert(customer, tier.to_owned());
    }

    pub fn ticket(&self, ticket_id: TicketId) -> Option<&TicketSla> {
        self.tickets.get(&ticket_id).map(|ticket| &**ticket)
    }

    pub fn tickets(&self) -> usize {
        self.tickets.len()
    }

    fn timer(ticket: TicketId, metric: Metric, trigger: Trigger) -> TimerId {
        TimerId {
            ticket: ticket.0,
            clock: metric.index() as u16,
            kind: match trigger {
                Trigger::Warning => TimerKind::Warning,
                Trigger::Breach => TimerKind::Breach,
            },
        }
    }

    fn reschedule(&mut self, ticket_id: TicketId, at: Timestamp) {
        let Some(ticket) = self.tickets.get(&ticket_id) else {
            return;
        };
        for metric in Metric::ALL {
            for trigger in [Trigger::Warning, Trigger::Breach] {
                self.timers.cancel(Self::timer(ticket_id, metric, trigger));
            }
        }
        for owed in ticket.owed() {
            self.timers
                .schedule(Self::timer(ticket_id, owed.metric, owed.trigger), owed.at);
        }
        if ticket.is_stale(&self.policies) && self.stale_set.insert(ticket_id) {
            self.stale.push_back((ticket_id, at));
        }
    }

    /// Folds one ticket event that happened at `at` (also used by tests without a store).
    pub fn observe_event(&mut self, ticket_id: TicketId, event: &Event, at: Timestamp) {
        match self.tickets.get_mut(&ticket_id) {
            Some(ticket) => ticket.apply(event, at, &self.policies),
            None => {
                let Event::TicketCreated(created) = event else {
                    return;
                };
                let tier = self
                    .tiers
                    .get(&created.requester)
                    .map_or(DEFAULT_TIER, String::as_str);
                if let Some(ticket) = TicketSla::created(event, at, tier, &self.policies) {
                    self.tickets.insert(ticket_id, Box::new(ticket));
                }
            }
        }
        self.reschedule(ticket_id, at);
    }
}

impl TimerSource for SlaSource {
    fn name(&self) -> &'static str {
        "sla"
    }

    fn observe(&mut self, record: &Record) {
        match record.category.as_str() {
            "customer" if record.event_type == "CustomerRegistered" => {
                #[derive(serde::Deserialize)]
                struct Registered {
                    customer_id: Uuid,
                    tier: String,
                }
                if let Ok(registered) = serde_json::from_str::<Registered>(&record.payload) {
                    self.register_customer(CustomerId(registered.customer_id), &registered.tier);
                }
            }
            "ticket" => {
                let Some(ticket_id) = ticket_of(record) else {
                    return;
                };
                let Ok(event) =
                    Event::from_stored(&record.event_type, record.schema_version, &record.payload)
                else {
                    tracing::warn!(
                        position = record.position,
                        "sla: an undecodable ticket event is skipped"
                    );
                    return;
                };
                self.observe_event(ticket_id, &event, event_time(record));
            }
            _ => {}
        }
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        let stale = self.stale.front().map(|(_, at)| *at);
        match (stale, self.timers.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_due(&mut self, now: Timestamp, max: usize) -> Vec<Work> {
        let mut work = Vec::new();
        // Due times first: a warning or breach must be fired against the recorded due time.
        while work.len() < max {
            let Some(&(ticket_id, at)) = self.stale.front() else {
                break;
            };
            self.stale.pop_front();
            self.stale_set.remove(&ticket_id);
            let Some(ticket) = self.tickets.get(&ticket_id) else {
                continue;
            };
            for (command, key) in ticket.reconcile(&self.policies) {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(&key[..16]);
                work.push(Work {
                    ticket: ticket_id,
                    command,
                    command_id: uuid::Builder::from_custom_bytes(bytes).into_uuid(),
                    due_at: at.min(now),
                    source: "sla",
                });
            }
        }
        let left = max.saturating_sub(work.len());
        for due in self.timers.fire_due_max(now, left) {
            let ticket_id = TicketId(due.timer.ticket);
            let Some(ticket) = self.tickets.get(&ticket_id) else {
                continue;
            };
            let metric = Metric::ALL[usize::from(due.timer.clock)];
            let trigger = match due.timer.kind {
                TimerKind::Warning => Trigger::Warning,
                TimerKind::Breach => Trigger::Breach,
            };
            let owed = crate::engine::Owed {
                metric,
                trigger,
                at: due.due_at,
            };
            if let Some(command) = ticket.fire(owed, &self.policies) {
                work.push(Work {
                    ticket: ticket_id,
                    command,
                    command_id: due.command_id,
                    due_at: due.due_at,
                    source: "sla",
                });
            }
        }
        work
    }

    fn timers(&self) -> usize {
        self.timers.len()
    }
}
