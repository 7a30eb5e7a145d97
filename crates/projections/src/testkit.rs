//! Test support for the data-driven view tests: a small log builder (tickets, teams, agents and
//! customers are numbered; times are minutes after a fixed start) and short names for ids, so
//! that snapshots stay readable.

use std::collections::BTreeMap;

use domain::{
    AgentAssigned, BlueprintRef, BodyPii, Channel, CustomerMessageReceived, Event, Priority,
    PriorityChanged, PublicReplyPosted, ReasonPii, ReopenCause, ReopenPii, SatisfactionRated,
    SlaApplied, SlaBreached, SlaTarget, StateCategory, TeamAssigned, TicketCreated,
    TicketCreatedPii, TicketNumber, TicketReopened, TicketTransitioned,
};
use jiff::{SignedDuration, Timestamp};

use crate::synth::{self, SynthEvent};
use crate::Projection;

/// 2024-05-06, a Monday, 00:00 UTC.
pub(crate) fn start() -> Timestamp {
    Timestamp::from_second(1_714_953_600).unwrap()
}

pub(crate) fn minute(minutes: i64) -> Timestamp {
    start() + SignedDuration::from_mins(minutes)
}

/// Short names for the numbered ids of `synth`.
pub(crate) fn short(uuid: uuid::Uuid) -> String {
    let value = uuid.as_u128();
    for (prefix, base) in [
        ("t", synth::ticket(0).0.as_u128()),
        ("team", synth::team(0).0.as_u128()),
        ("agent", synth::agent(0).0.as_u128()),
        ("cust", synth::customer(0).0.as_u128()),
    ] {
        if let Some(offset) = value.checked_sub(base).filter(|offset| *offset < 1_000_000) {
            return format!("{prefix}{offset}");
        }
    }
    uuid.to_string()
}

#[derive(Default)]
pub(crate) struct Log {
    events: Vec<SynthEvent>,
}

impl Log {
    pub(crate) fn push(&mut self, minutes: i64, ticket: u64, event: Event) -> &mut Log {
        self.events.push(SynthEvent {
            ticket_id: synth::ticket(ticket),
            at: minute(minutes),
            event,
        });
        self
    }

    pub(crate) fn records(&self) -> Vec<store::Record> {
        synth::records(self.events.iter().cloned())
    }

    pub(crate) fn fold<P: Projection>(&self) -> P {
        let mut model = P::default();
        for record in synth::records(self.events.iter().cloned()) {
            model.apply(record.view());
        }
        model
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "a test fixture names every field"
    )]
    pub(crate) fn create(
        &mut self,
        minutes: i64,
        ticket: u64,
        subject: &str,
        priority: Priority,
        channel: Channel,
        customer: u64,
    ) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::TicketCreated(TicketCreated {
                ticket_id: synth::ticket(ticket),
                number: TicketNumber(ticket),
                channel,
                requester: synth::customer(customer),
                ticket_type: "general".to_owned(),
                priority,
                tags: vec!["billing".to_owned()],
                fields: BTreeMap::new(),
                blueprint: BlueprintRef {
                    id: "general".to_owned(),
                    version: 1,
                },
                state: "new".to_owned(),
                category: StateCategory::New,
                pii: TicketCreatedPii {
                    subject: subject.to_owned(),
                    description: String::new(),
                    requester_name: None,
                    requester_email: None,
                },
            }),
        )
    }

    pub(crate) fn team(&mut self, minutes: i64, ticket: u64, team: u64) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::TeamAssigned(TeamAssigned {
                from: None,
                to: synth::team(team),
                reason: None,
            }),
        )
    }

    pub(crate) fn agent(&mut self, minutes: i64, ticket: u64, agent: u64) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::AgentAssigned(AgentAssigned {
                from: None,
                to: synth::agent(agent),
                reason: None,
                routing: None,
            }),
        )
    }

    pub(crate) fn priority(&mut self, minutes: i64, ticket: u64, to: Priority) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::PriorityChanged(PriorityChanged {
                from: Priority::Normal,
                to,
                pii: ReasonPii {
                    reason: "test".to_owned(),
                },
            }),
        )
    }

    pub(crate) fn to(
        &mut self,
        minutes: i64,
        ticket: u64,
        state: &str,
        category: StateCategory,
    ) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::TicketTransitioned(TicketTransitioned {
                transition: state.to_owned(),
                from: "any".to_owned(),
                from_category: StateCategory::Open,
                to: state.to_owned(),
                to_category: category,
            }),
        )
    }

    pub(crate) fn reopen(&mut self, minutes: i64, ticket: u64) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::TicketReopened(TicketReopened {
                cause: ReopenCause::Requested,
                from: "resolved".to_owned(),
                from_category: StateCategory::Solved,
                to: "in_progress".to_owned(),
                to_category: StateCategory::Open,
                pii: ReopenPii { reason: None },
            }),
        )
    }

    pub(crate) fn reply(&mut self, minutes: i64, ticket: u64, body: &str) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::PublicReplyPosted(PublicReplyPosted {
                attachments: vec![],
                pii: BodyPii {
                    body: body.to_owned(),
                },
            }),
        )
    }

    pub(crate) fn message(&mut self, minutes: i64, ticket: u64, body: &str) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::CustomerMessageReceived(CustomerMessageReceived {
                attachments: vec![],
                pii: BodyPii {
                    body: body.to_owned(),
                },
            }),
        )
    }

    pub(crate) fn sla(&mut self, minutes: i64, ticket: u64, metric: &str, due: i64) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::SlaApplied(SlaApplied {
                policy_id: "std".to_owned(),
                policy_version: 1,
                targets: vec![SlaTarget {
                    metric: metric.to_owned(),
                    due_at: minute(due),
                }],
                reason: "test".to_owned(),
            }),
        )
    }

    pub(crate) fn breach(&mut self, minutes: i64, ticket: u64, metric: &str, due: i64) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::SlaBreached(SlaBreached {
                policy_id: "std".to_owned(),
                metric: metric.to_owned(),
                due_at: minute(due),
                observed_at: minute(minutes),
            }),
        )
    }

    pub(crate) fn rate(&mut self, minutes: i64, ticket: u64, score: u8) -> &mut Log {
        self.push(
            minutes,
            ticket,
            Event::SatisfactionRated(SatisfactionRated {
                score,
                resolution: 1,
                pii: domain::CommentPii { comment: None },
            }),
        )
    }
}

/// Minutes after `start()`, for compact snapshots.
pub(crate) fn minutes_of(at: Timestamp) -> i64 {
    (at.as_second() - start().as_second()) / 60
}
