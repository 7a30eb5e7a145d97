//! Sources of due work for the driver. A `TimerSource` folds the log (every record, in order),
//! keeps its own timers, and turns what is due into `Work`: a domain command for one ticket with
//! a deterministic command id. The SLA engine is one source (`SlaSource`); time-based
//! automations plug in as another. A source keeps nothing across restarts: the driver builds a
//! fresh one and feeds it the whole log whenever it becomes leader.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use domain::{Command, CustomerId, Event, TicketId};
use jiff::Timestamp;
use store::Record;
use uuid::Uuid;

use crate::engine::{Owed, TicketSla};
use crate::packed::PackedTicket;
use crate::policy::{Metric, Policies, Trigger};
use crate::timers::{command_id, ticket_ordered_id, TimerId, TimerKind, FIRE_BATCH_MAX};

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
    /// The rule that made the work due, where the source names one (time-based automations).
    pub rule: Option<&'static str>,
    /// Why the rule fired (e.g. when the ticket entered its state and the delay), recorded in
    /// the event metadata beside the rule.
    pub evidence: Option<serde_json::Value>,
}

impl Work {
    /// The `scheduler` object of the metadata of the events this work appends: source, due
    /// time, and the rule and evidence where the source gives them.
    pub fn metadata(&self) -> serde_json::Value {
        let mut metadata = serde_json::json!({"source": self.source, "due_at": self.due_at});
        if let Some(rule) = self.rule {
            metadata["rule"] = rule.into();
        }
        if let Some(evidence) = &self.evidence {
            metadata["evidence"] = evidence.clone();
        }
        metadata
    }
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
    /// Tickets with a timer due before `before` that it has not announced yet (in due order, at
    /// most `max`; a ticket may come twice): what the driver prefetches ahead of the due time,
    /// so that a burst finds its tickets in memory. An announcement is only a hint — a timer set
    /// later with an earlier due time is not announced, and is read when it fires. By default,
    /// nothing.
    fn upcoming(&mut self, before: Timestamp, max: usize) -> Vec<TicketId> {
        let _ = (before, max);
        Vec::new()
    }
    /// How many timers it holds (for metrics).
    fn timers(&self) -> usize;
    /// Bytes of the state it holds, by structure, where it counts them (benchmarks).
    fn held_bytes(&self) -> usize {
        0
    }
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
/// due times the log does not yet record. Memory is what bounds a leader (a million active
/// timers), so tickets are kept packed in one vector (`PackedTicket`, unpacked for the length of
/// one event), found by id through a map to their slot, and a timer is 16 bytes in one ordered
/// set: due time in nanoseconds, the ticket's slot, the clock and kind. Which timers a ticket has
/// set is not stored: it is what its clocks owe, computed before and after each event.
#[derive(Debug)]
pub struct SlaSource {
    policies: Arc<Policies>,
    tiers: HashMap<CustomerId, &'static str>,
    slots: HashMap<TicketId, u32>,
    tickets: Vec<PackedTicket>,
    timers: BTreeSet<SlaTimer>,
    /// Tickets (by slot) whose due times the log lacks, with since when (nanoseconds), oldest
    /// first. An entry counts only while `stale_since` holds the same time for the slot: a ticket
    /// whose due times were recorded meanwhile (on replay, the `SlaApplied` right after every
    /// `TicketCreated`) leaves a dead entry, skipped when it comes out and swept away once dead
    /// entries outnumber the live ones.
    stale: VecDeque<(u32, i64)>,
    stale_since: HashMap<u32, i64>,
    /// The last timer `upcoming` announced: the next call goes on after it.
    announced: Option<SlaTimer>,
}

/// One set timer: `(due, slot, code)` with `due` in nanoseconds since the epoch, `slot` the
/// ticket's index in `SlaSource::tickets` and `code` the clock and kind (`metric * 2 + kind`).
type SlaTimer = (i64, u32, u8);

/// Dead entries the stale queue may hold before it is swept (beyond twice the live ones).
const STALE_SWEEP_MIN: usize = 1024;

fn timer_code(metric: Metric, trigger: Trigger) -> u8 {
    metric.index() as u8 * 2
        + match trigger {
            Trigger::Warning => 0,
            Trigger::Breach => 1,
        }
}

fn due_nanos(at: Timestamp) -> i64 {
    i64::try_from(at.as_nanosecond()).unwrap_or(if at > Timestamp::UNIX_EPOCH {
        i64::MAX
    } else {
        i64::MIN
    })
}

impl SlaSource {
    pub fn new(policies: Arc<Policies>) -> SlaSource {
        SlaSource {
            policies,
            tiers: HashMap::new(),
            slots: HashMap::new(),
            tickets: Vec::new(),
            timers: BTreeSet::new(),
            announced: None,
            stale: VecDeque::new(),
            stale_since: HashMap::new(),
        }
    }

    /// Records a customer's tier (what a `CustomerRegistered` record says).
    pub fn register_customer(&mut self, customer: CustomerId, tier: &str) {
        self.tiers.insert(customer, crate::packed::intern(tier));
    }

    /// The ticket as the engine sees it now (unpacked: a copy).
    pub fn ticket(&self, ticket_id: TicketId) -> Option<TicketSla> {
        let slot = *self.slots.get(&ticket_id)?;
        Some(self.tickets[slot as usize].unpack())
    }

    pub fn tickets(&self) -> usize {
        self.tickets.len()
    }

    /// Bytes of the state held, by structure: what `docket bench sla` and the source benchmark
    /// report beside the resident set.
    pub fn held_bytes(&self) -> usize {
        use std::mem::size_of;
        // Each ticket's clocks are one allocation: the allocator adds 8 bytes and rounds to 16.
        let tickets = self.tickets.capacity() * size_of::<PackedTicket>()
            + self
                .tickets
                .iter()
                .map(|ticket| (ticket.heap_bytes() + 8).next_multiple_of(16))
                .sum::<usize>();
        // A hash map keeps one control byte per bucket, and at least 8 buckets per 7 entries.
        let map = |capacity: usize, entry: usize| capacity * 8 / 7 * (entry + 1);
        let slots = map(self.slots.capacity(), size_of::<(TicketId, u32)>());
        let stale = self.stale.capacity() * size_of::<(u32, i64)>()
            + map(self.stale_since.capacity(), size_of::<(u32, i64)>());
        // A B-tree leaf holds up to 11 entries; filled in due order they are about half full.
        let timers = self.timers.len() * 2 * size_of::<SlaTimer>();
        tickets + slots + stale + timers
    }

    /// Moves the ticket's timers from what it owed before an event to what it owes after.
    fn reschedule(&mut self, slot: u32, before: &[Owed], ticket: &TicketSla, at: Timestamp) {
        for owed in before {
            self.timers.remove(&(
                due_nanos(owed.at),
                slot,
                timer_code(owed.metric, owed.trigger),
            ));
        }
        for owed in ticket.owed() {
            self.timers.insert((
                due_nanos(owed.at),
                slot,
                timer_code(owed.metric, owed.trigger),
            ));
        }
        if ticket.is_stale(&self.policies) {
            if let std::collections::hash_map::Entry::Vacant(entry) = self.stale_since.entry(slot) {
                entry.insert(due_nanos(at));
                self.stale.push_back((slot, due_nanos(at)));
            }
        } else if self.stale_since.remove(&slot).is_some()
            && self.stale.len() > STALE_SWEEP_MIN + 2 * self.stale_since.len()
        {
            let live = &self.stale_since;
            self.stale
                .retain(|(slot, since)| live.get(slot) == Some(since));
            self.stale.shrink_to(2 * self.stale.len());
        }
    }

    /// Folds one ticket event that happened at `at` (also used by tests without a store).
    pub fn observe_event(&mut self, ticket_id: TicketId, event: &Event, at: Timestamp) {
        match self.slots.get(&ticket_id) {
            Some(&slot) => {
                let packed = &mut self.tickets[slot as usize];
                let mut ticket = packed.unpack();
                let before = ticket.owed();
                ticket.apply(event, at, &self.policies);
                packed.repack(&ticket);
                self.reschedule(slot, &before, &ticket, at);
            }
            None => {
                let Event::TicketCreated(created) = event else {
                    return;
                };
                let tier = self
                    .tiers
                    .get(&created.requester)
                    .copied()
                    .unwrap_or(DEFAULT_TIER);
                let Some(ticket) = TicketSla::created(event, at, tier, &self.policies) else {
                    return;
                };
                let slot = u32::try_from(self.tickets.len())
                    .expect("fewer than 4 billion tickets in one log");
                self.slots.insert(ticket_id, slot);
                self.tickets.push(PackedTicket::pack(&ticket));
                self.reschedule(slot, &[], &ticket, at);
            }
        }
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
        let stale = self.stale.front().map(|&(_, since)| {
            Timestamp::from_nanosecond(i128::from(since))
                .expect("an i64 of nanoseconds is in range")
        });
        match (
            stale,
            self.timers.first().map(|&(due, ..)| {
                Timestamp::from_nanosecond(i128::from(due))
                    .expect("an i64 of nanoseconds is in range")
            }),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn upcoming(&mut self, before: Timestamp, max: usize) -> Vec<TicketId> {
        use std::ops::Bound;
        let end_key = (due_nanos(before), 0, 0);
        let start = match self.announced {
            // `range` refuses a start past its end.
            Some(last) if last >= end_key => return Vec::new(),
            Some(last) => Bound::Excluded(last),
            None => Bound::Unbounded,
        };
        let end = Bound::Excluded(end_key);
        let mut tickets = Vec::new();
        for &timer in self.timers.range((start, end)).take(max) {
            tickets.push(self.tickets[timer.1 as usize].ticket_id());
            self.announced = Some(timer);
        }
        tickets
    }

    fn fire_due(&mut self, now: Timestamp, max: usize) -> Vec<Work> {
        let mut work = Vec::new();
        // Due times first: a warning or breach must be fired against the recorded due time.
        while work.len() < max {
            let Some((slot, since)) = self.stale.pop_front() else {
                break;
            };
            if self.stale_since.get(&slot) != Some(&since) {
                continue;
            }
            self.stale_since.remove(&slot);
            let ticket = self.tickets[slot as usize].unpack();
            let ticket_id = ticket.ticket_id;
            let at = Timestamp::from_nanosecond(i128::from(since))
                .expect("an i64 of nanoseconds is in range");
            for (command, key) in ticket.reconcile(&self.policies) {
                let mut rest = [0u8; 10];
                rest.copy_from_slice(&key[..10]);
                work.push(Work {
                    ticket: ticket_id,
                    command,
                    command_id: ticket_ordered_id(ticket_id.0, rest),
                    due_at: at.min(now),
                    source: "sla",
                    rule: None,
                    evidence: None,
                });
            }
        }
        let left = max.saturating_sub(work.len()).min(FIRE_BATCH_MAX);
        let mut taken = 0;
        while taken < left {
            let Some(&(due, slot, code)) = self.timers.first() else {
                break;
            };
            let due_at = Timestamp::from_nanosecond(i128::from(due))
                .expect("an i64 of nanoseconds is in range");
            if due_at > now {
                break;
            }
            self.timers.pop_first();
            taken += 1;
            let ticket = self.tickets[slot as usize].unpack();
            let metric = Metric::ALL[usize::from(code / 2)];
            let (trigger, kind) = if code % 2 == 0 {
                (Trigger::Warning, TimerKind::Warning)
            } else {
                (Trigger::Breach, TimerKind::Breach)
            };
            let timer = TimerId {
                ticket: ticket.ticket_id.0,
                clock: metric.index() as u16,
                kind,
            };
            let owed = Owed {
                metric,
                trigger,
                at: due_at,
            };
            if let Some(command) = ticket.fire(owed, &self.policies) {
                work.push(Work {
                    ticket: ticket.ticket_id,
                    command,
                    command_id: command_id(timer, due_at),
                    due_at,
                    source: "sla",
                    rule: None,
                    evidence: None,
                });
            }
        }
        work
    }

    fn timers(&self) -> usize {
        self.timers.len()
    }

    fn held_bytes(&self) -> usize {
        SlaSource::held_bytes(self)
    }
}
