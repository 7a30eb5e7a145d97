//! Work queues: per team (tickets waiting for someone to pick them) and per agent (tickets an
//! agent owns), in the order an agent should work: priority (urgent first), then SLA due time
//! (earliest first; no clock sorts last), then age (oldest first), then ticket id. Each queue is
//! an ordered set keyed by exactly that tuple, so "next ticket for me" is the first key: O(log n).
//!
//! A ticket is queued while it is actionable (a `new` or `open` category). Waiting on the
//! customer, solved and closed tickets are in no queue. A ticket with an assignee is in its
//! agent's queue only; without one, in its team's queue.

use std::collections::BTreeSet;

use domain::{AgentId, Event, Priority, StateCategory, TeamId, TicketId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::sla::TicketClocks;
use crate::{Map, Projection, TicketEvent};

/// Most entries one queue listing returns.
pub const QUEUE_PAGE_MAX: usize = 500;

/// Which queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum QueueId {
    Team(TeamId),
    Agent(AgentId),
}

/// The order of a queue: (priority rank, due, created, id), compared as a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueueKey {
    /// 0 for urgent, 3 for low.
    pub priority_rank: u8,
    /// Microseconds of the earliest counting SLA clock; `i64::MAX` without one.
    pub due_micros: i64,
    pub created_micros: i64,
    pub ticket_id: TicketId,
}

/// One queued ticket as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    pub ticket_id: TicketId,
    pub priority: Priority,
    pub due_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// What the queues know of one ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct QueuedTicket {
    priority: Priority,
    team: Option<TeamId>,
    assignee: Option<AgentId>,
    created_at: Timestamp,
    clocks: TicketClocks,
}

impl QueuedTicket {
    fn placement(&self, id: TicketId) -> Option<(QueueId, QueueKey)> {
        let category = self.clocks.category?;
        if !matches!(category, StateCategory::New | StateCategory::Open) {
            return None;
        }
        let queue = match (self.assignee, self.team) {
            (Some(agent), _) => QueueId::Agent(agent),
            (None, Some(team)) => QueueId::Team(team),
            (None, None) => return None,
        };
        let key = QueueKey {
            priority_rank: match self.priority {
                Priority::Urgent => 0,
                Priority::High => 1,
                Priority::Normal => 2,
                Priority::Low => 3,
            },
            due_micros: self
                .clocks
                .next_due()
                .map_or(i64::MAX, |due| due.as_microsecond()),
            created_micros: self.created_at.as_microsecond(),
            ticket_id: id,
        };
        Some((queue, key))
    }
}

/// The queues view.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Queues {
    /// Closed tickets are dropped: they can never be queued again.
    tickets: Map<TicketId, QueuedTicket>,
    #[serde(skip)]
    queues: Map<QueueId, BTreeSet<QueueKey>>,
    /// In replay mode the queues are left empty and built once at the end.
    #[serde(skip)]
    replaying: bool,
}

impl Projection for Queues {
    const NAME: &'static str = "queues";
    const VERSION: u32 = 1;

    fn apply_event(&mut self, event: &TicketEvent) {
        let id = event.ticket_id;
        if let Event::TicketCreated(created) = &event.event {
            if self.tickets.contains_key(&id) {
                return;
            }
            let mut clocks = TicketClocks::default();
            clocks.apply(&event.event, event.at);
            let ticket = QueuedTicket {
                priority: created.priority,
                team: None,
                assignee: None,
                created_at: event.at,
                clocks,
            };
            if !self.replaying {
                self.place(id, &ticket);
            }
            self.tickets.insert(id, ticket);
            return;
        }
        let Some(ticket) = self.tickets.get_mut(&id) else {
            return;
        };
        let before = if self.replaying {
            None
        } else {
            ticket.placement(id)
        };
        ticket.clocks.apply(&event.event, event.at);
        match &event.event {
            Event::PriorityChanged(changed) => ticket.priority = changed.to,
            Event::PriorityChangedByRule(changed) => ticket.priority = changed.to,
            Event::TeamAssigned(assigned) => ticket.team = Some(assigned.to),
            Event::TeamTransferred(transferred) => {
                ticket.team = Some(transferred.to);
                if transferred.unassigned.is_some() {
                    ticket.assignee = None;
                }
            }
            Event::AgentAssigned(assigned) => ticket.assignee = Some(assigned.to),
            Event::AgentUnassigned(_) => ticket.assignee = None,
            _ => {}
        }
        let closed = ticket.clocks.category == Some(StateCategory::Closed);
        let after = if self.replaying {
            None
        } else {
            ticket.placement(id)
        };
        if before != after {
            if let Some((queue, key)) = before {
                self.unplace(queue, &key);
            }
            if let Some((queue, key)) = after {
                self.queues.entry(queue).or_default().insert(key);
            }
        }
        if closed {
            self.tickets.remove(&id);
        }
    }

    fn begin_replay(&mut self) {
        self.replaying = true;
    }

    fn finish_replay(&mut self) {
        self.replaying = false;
        // Each queue bulk-built from its keys, sorted once.
        let mut queues: Map<QueueId, Vec<QueueKey>> = Map::default();
        for (id, ticket) in &self.tickets {
            if let Some((queue, key)) = ticket.placement(*id) {
                queues.entry(queue).or_default().push(key);
            }
        }
        self.queues = queues
            .into_iter()
            .map(|(queue, keys)| (queue, keys.into_iter().collect()))
            .collect();
    }

    fn restore(&mut self) {
        let placements: Vec<(QueueId, QueueKey)> = self
            .tickets
            .iter()
            .filter_map(|(id, ticket)| ticket.placement(*id))
            .collect();
        for (queue, key) in placements {
            self.queues.entry(queue).or_default().insert(key);
        }
    }
}

impl Queues {
    fn place(&mut self, id: TicketId, ticket: &QueuedTicket) {
        if let Some((queue, key)) = ticket.placement(id) {
            self.queues.entry(queue).or_default().insert(key);
        }
    }

    fn unplace(&mut self, queue: QueueId, key: &QueueKey) {
        if let Some(set) = self.queues.get_mut(&queue) {
            set.remove(key);
            if set.is_empty() {
                self.queues.remove(&queue);
            }
        }
    }

    fn entry(&self, key: &QueueKey) -> Option<QueueEntry> {
        let ticket = self.tickets.get(&key.ticket_id)?;
        Some(QueueEntry {
            ticket_id: key.ticket_id,
            priority: ticket.priority,
            due_at: ticket.clocks.next_due(),
            created_at: ticket.created_at,
        })
    }

    /// The first ticket of one queue: O(log n).
    pub fn head(&self, queue: QueueId) -> Option<QueueEntry> {
        self.queues
            .get(&queue)?
            .first()
            .and_then(|key| self.entry(key))
    }

    /// "Next ticket for me": the agent's own queue first; when it is empty, the most pressing
    /// unassigned ticket of the agent's teams. Team membership is not in the log (it belongs to
    /// the routing issue), so the caller passes the teams. O(t log n) for t teams.
    pub fn next_for_agent(&self, agent: AgentId, teams: &[TeamId]) -> Option<QueueEntry> {
        if let Some(entry) = self.head(QueueId::Agent(agent)) {
            return Some(entry);
        }
        teams
            .iter()
            .filter_map(|team| self.queues.get(&QueueId::Team(*team))?.first())
            .min()
            .and_then(|key| self.entry(key))
    }

    /// Up to `limit` entries of a queue after `after` (the last key of the previous page), in
    /// work order.
    pub fn list(
        &self,
        queue: QueueId,
        after: Option<QueueKey>,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, crate::tickets::QueryError> {
        if limit == 0 || limit > QUEUE_PAGE_MAX {
            return Err(crate::tickets::QueryError::LimitOutOfRange {
                limit,
                max: QUEUE_PAGE_MAX,
            });
        }
        let Some(set) = self.queues.get(&queue) else {
            return Ok(Vec::new());
        };
        let keys: Box<dyn Iterator<Item = &QueueKey>> = match after {
            Some(after) => {
                Box::new(set.range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)))
            }
            None => Box::new(set.iter()),
        };
        Ok(keys.take(limit).filter_map(|key| self.entry(key)).collect())
    }

    /// The key of an entry, to pass as `after` for the next page.
    pub fn key_of(&self, ticket_id: TicketId) -> Option<QueueKey> {
        self.tickets
            .get(&ticket_id)?
            .placement(ticket_id)
            .map(|(_, key)| key)
    }

    /// How many tickets wait in a queue.
    pub fn len(&self, queue: QueueId) -> usize {
        self.queues.get(&queue).map_or(0, BTreeSet::len)
    }

    /// Every non-empty queue and its length, in a stable order.
    pub fn sizes(&self) -> Vec<(QueueId, usize)> {
        let mut sizes: Vec<(QueueId, usize)> = self
            .queues
            .iter()
            .map(|(queue, set)| (*queue, set.len()))
            .collect();
        sizes.sort();
        sizes
    }
}

#[cfg(test)]
mod tests {
    use domain::{Channel, Priority, StateCategory};
    use expect_test::expect;

    use super::*;
    use crate::synth;
    use crate::testkit::{minutes_of, short, Log};

    fn show(entries: &[QueueEntry]) -> String {
        entries
            .iter()
            .map(|entry| {
                format!(
                    "{} {} due={} created={}",
                    short(entry.ticket_id.0),
                    entry.priority,
                    entry
                        .due_at
                        .map_or("-".to_owned(), |due| minutes_of(due).to_string()),
                    minutes_of(entry.created_at),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn orders_by_priority_then_due_then_age() {
        let mut log = Log::default();
        for (ticket, priority) in [
            (1, Priority::Normal),
            (2, Priority::Normal),
            (3, Priority::Urgent),
            (4, Priority::Normal),
            (5, Priority::Low),
            (6, Priority::Normal),
        ] {
            log.create(
                i64::try_from(ticket).unwrap(),
                ticket,
                "s",
                priority,
                Channel::Email,
                1,
            )
            .team(10, ticket, 1);
        }
        log.sla(20, 2, "first_response", 300)
            .sla(20, 4, "first_response", 200)
            .sla(20, 6, "first_response", 100)
            // Answered: its first-response clock is met and no longer orders the queue.
            .reply(30, 6, "hello")
            // Waiting on the customer: out of the queue.
            .sla(20, 1, "resolution", 50)
            .to(31, 1, "waiting_on_customer", StateCategory::Pending)
            // Assigned: from the team's queue to the agent's.
            .agent(40, 5, 7);
        let queues: Queues = log.fold();
        let team = QueueId::Team(synth::team(1));
        expect![[r#"
            t3 urgent due=- created=3
            t4 normal due=200 created=4
            t2 normal due=300 created=2
            t6 normal due=- created=6"#]]
        .assert_eq(&show(&queues.list(team, None, QUEUE_PAGE_MAX).unwrap()));
        expect!["t5 low due=- created=5"].assert_eq(&show(
            &queues
                .list(QueueId::Agent(synth::agent(7)), None, QUEUE_PAGE_MAX)
                .unwrap(),
        ));
        // Own work first, then the team's most pressing ticket.
        let next = |agent| {
            queues
                .next_for_agent(synth::agent(agent), &[synth::team(1), synth::team(2)])
                .map(|entry| short(entry.ticket_id.0))
        };
        assert_eq!(next(7).as_deref(), Some("t5"));
        assert_eq!(next(8).as_deref(), Some("t3"));
        let after = queues.key_of(synth::ticket(4));
        expect![[r#"
            t2 normal due=300 created=2
            t6 normal due=- created=6"#]]
        .assert_eq(&show(&queues.list(team, after, 2).unwrap()));
        expect!["[(Team(TeamId(00000000-0000-0000-0000-7ea000000001)), 4), (Agent(AgentId(00000000-0000-0000-0000-a9e000000007)), 1)]"]
            .assert_eq(&format!("{:?}", queues.sizes()));
    }

    #[test]
    fn page_limit_is_checked_at_the_bound() {
        let queues: Queues = synth::records(synth::history(synth::SynthConfig::small(3, 2000)))
            .iter()
            .fold(Queues::default(), |mut queues, record| {
                queues.apply(record.view());
                queues
            });
        let (biggest, len) = queues
            .sizes()
            .into_iter()
            .max_by_key(|(_, len)| *len)
            .unwrap();
        assert!(len > 0);
        assert_eq!(
            queues.list(biggest, None, QUEUE_PAGE_MAX).unwrap().len(),
            len.min(QUEUE_PAGE_MAX)
        );
        assert!(queues.list(biggest, None, QUEUE_PAGE_MAX + 1).is_err());
        assert!(queues.list(biggest, None, 0).is_err());
        // The head is the first of the listing.
        assert_eq!(
            queues.head(biggest),
            queues.list(biggest, None, 1).unwrap().first().cloned()
        );
    }
}
