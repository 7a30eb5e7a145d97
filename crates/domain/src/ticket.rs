//! The ticket as the decider sees it, and `evolve`, which folds one event into it.
//!
//! The state holds only what decisions need. `evolve` is total: it never fails and never panics,
//! because events are facts and replay must always succeed. It keeps counters in terms of the
//! ticket's version (its event count) rather than time, so rules such as "a public reply since
//! the customer's last message" need no clock.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use crate::blueprint::{BlueprintRef, StateCategory};
use crate::command::RecomputeCause;
use crate::event::{Event, TicketCreated};
use crate::ids::{
    AgentId, AttachmentId, Channel, CustomerId, FieldValue, LinkKind, Priority, TeamId, TicketId,
    TicketNumber, Visibility,
};

/// A ticket: its version (number of events folded in) and, once created, its details.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ticket {
    pub version: u64,
    pub details: Option<TicketDetails>,
}

/// What a created ticket is.
#[derive(Clone, Debug, PartialEq)]
pub struct TicketDetails {
    pub id: TicketId,
    pub number: TicketNumber,
    pub channel: Channel,
    pub requester: CustomerId,
    pub ticket_type: String,
    pub subject: String,
    pub description: String,
    pub priority: Priority,
    pub tags: BTreeSet<String>,
    pub fields: BTreeMap<String, FieldValue>,
    pub blueprint: BlueprintRef,
    pub state: String,
    pub category: StateCategory,
    /// The version at which the ticket entered its current state.
    pub state_entered_version: u64,
    pub team: Option<TeamId>,
    pub assignee: Option<AgentId>,
    pub collaborators: BTreeSet<AgentId>,
    pub attachments: Vec<AttachmentSummary>,
    pub links: BTreeSet<(TicketId, LinkKind)>,
    pub merged_into: Option<TicketId>,
    pub merged_duplicates: BTreeSet<TicketId>,
    /// Versions of the latest event of each kind; creation counts as a customer message.
    pub last_customer_message_version: u64,
    pub last_public_reply_version: u64,
    pub last_internal_note_version: u64,
    /// How many times the ticket entered a solved state from an unsolved one.
    pub resolutions: u32,
    /// The resolution the customer last rated.
    pub rated_resolution: Option<u32>,
    pub sla_clocks: Vec<SlaClock>,
    pub escalation_level: u8,
    /// The sentiment rule flagged the customer as upset.
    pub customer_upset: bool,
    /// The resolution the customer was last asked to rate.
    pub surveyed_resolution: Option<u32>,
}

/// What rules need to know about an attachment; its name is personal and stays in the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentSummary {
    pub id: AttachmentId,
    pub content_type: String,
    pub visibility: Visibility,
}

/// One SLA target running on the ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaClock {
    pub policy_id: String,
    pub metric: String,
    pub due_at: Timestamp,
    pub warned: bool,
    pub breached: bool,
}

impl Ticket {
    /// The ticket before its first event: it does not exist yet.
    pub fn initial() -> Ticket {
        Ticket::default()
    }

    /// Folds a whole stream, in order.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> Ticket {
        events.into_iter().fold(Ticket::initial(), evolve)
    }
}

impl TicketDetails {
    fn created(created: &TicketCreated, version: u64) -> TicketDetails {
        TicketDetails {
            id: created.ticket_id,
            number: created.number,
            channel: created.channel,
            requester: created.requester,
            ticket_type: created.ticket_type.clone(),
            subject: created.pii.subject.clone(),
            description: created.pii.description.clone(),
            priority: created.priority,
            tags: created.tags.iter().cloned().collect(),
            fields: created.fields.clone(),
            blueprint: created.blueprint.clone(),
            state: created.state.clone(),
            category: created.category,
            state_entered_version: version,
            team: None,
            assignee: None,
            collaborators: BTreeSet::new(),
            attachments: Vec::new(),
            links: BTreeSet::new(),
            merged_into: None,
            merged_duplicates: BTreeSet::new(),
            last_customer_message_version: version,
            last_public_reply_version: 0,
            last_internal_note_version: 0,
            resolutions: 0,
            rated_resolution: None,
            sla_clocks: Vec::new(),
            escalation_level: 0,
            customer_upset: false,
            surveyed_resolution: None,
        }
    }

    fn enter_state(&mut self, state: &str, category: StateCategory, version: u64) {
        if category == StateCategory::Solved && self.category != StateCategory::Solved {
            self.resolutions += 1;
        }
        state.clone_into(&mut self.state);
        self.category = category;
        self.state_entered_version = version;
    }

    /// The SLA clock for a policy and metric, if one runs.
    pub fn sla_clock(&self, policy_id: &str, metric: &str) -> Option<&SlaClock> {
        self.sla_clocks
            .iter()
            .find(|clock| clock.policy_id == policy_id && clock.metric == metric)
    }
}

/// Folds one event into the ticket. Every event, even one that does not apply, advances the
/// version, because the version is the stream position used for optimistic concurrency.
pub fn evolve(mut ticket: Ticket, event: &Event) -> Ticket {
    ticket.version += 1;
    let version = ticket.version;
    if let Event::TicketCreated(created) = event {
        ticket.details = Some(TicketDetails::created(created, version));
        return ticket;
    }
    // Only `TicketCreated` can start a stream; decide never emits anything else first.
    let Some(details) = ticket.details.as_mut() else {
        return ticket;
    };
    match event {
        Event::TicketCreated(_) => {}
        Event::TicketFieldsUpdated(updated) => {
            if let Some(subject) = &updated.pii.subject {
                subject.clone_into(&mut details.subject);
            }
            if let Some(description) = &updated.pii.description {
                description.clone_into(&mut details.description);
            }
            for (name, value) in &updated.set {
                details.fields.insert(name.clone(), value.clone());
            }
            for name in &updated.unset {
                details.fields.remove(name);
            }
        }
        Event::PriorityChanged(changed) => details.priority = changed.to,
        Event::PriorityChangedByRule(changed) => details.priority = changed.to,
        Event::TagsAdded(added) => details.tags.extend(added.tags.iter().cloned()),
        Event::TagsRemoved(removed) => {
            for tag in &removed.tags {
                details.tags.remove(tag);
            }
        }
        Event::TeamAssigned(assigned) => details.team = Some(assigned.to),
        Event::TeamTransferred(transferred) => {
            details.team = Some(transferred.to);
            if transferred.unassigned.is_some() {
                details.assignee = None;
            }
        }
        Event::AgentAssigned(assigned) => details.assignee = Some(assigned.to),
        Event::AgentUnassigned(_) => details.assignee = None,
        Event::CollaboratorAdded(added) => {
            details.collaborators.insert(added.agent);
        }
        Event::CollaboratorRemoved(removed) => {
            details.collaborators.remove(&removed.agent);
        }
        Event::PublicReplyPosted(_) => details.last_public_reply_version = version,
        Event::CustomerMessageReceived(_) => details.last_customer_message_version = version,
        Event::InternalNoteAdded(_) => details.last_internal_note_version = version,
        Event::FileAttached(attached) => details.attachments.push(AttachmentSummary {
            id: attached.attachment,
            content_type: attached.content_type.clone(),
            visibility: attached.visibility,
        }),
        Event::TicketLinked(linked) => {
            details.links.insert((linked.other, linked.kind));
        }
        Event::TicketMergedInto(merged) => {
            details.merged_into = Some(merged.survivor);
            details.enter_state(&merged.to, StateCategory::Closed, version);
        }
        Event::DuplicateMerged(merged) => {
            details.merged_duplicates.insert(merged.duplicate);
        }
        Event::TicketTransitioned(transitioned) => {
            details.enter_state(&transitioned.to, transitioned.to_category, version);
        }
        Event::TicketReopened(reopened) => {
            details.enter_state(&reopened.to, reopened.to_category, version);
        }
        Event::SatisfactionRated(rated) => details.rated_resolution = Some(rated.resolution),
        Event::SlaApplied(applied) => {
            for target in &applied.targets {
                let clock = SlaClock {
                    policy_id: applied.policy_id.clone(),
                    metric: target.metric.clone(),
                    due_at: target.due_at,
                    warned: false,
                    breached: false,
                };
                match details.sla_clocks.iter_mut().find(|running| {
                    running.policy_id == clock.policy_id && running.metric == clock.metric
                }) {
                    // A target applied again with the same due time keeps its warning and
                    // breach: each is recorded once per clock (found in review).
                    Some(running) if running.due_at == clock.due_at => {}
                    Some(running) => *running = clock,
                    None => details.sla_clocks.push(clock),
                }
            }
        }
        Event::SlaWarningRaised(warning) => {
            for clock in &mut details.sla_clocks {
                if clock.policy_id == warning.policy_id
                    && clock.metric == warning.metric
                    && clock.due_at == warning.due_at
                {
                    clock.warned = true;
                }
            }
        }
        Event::SlaBreached(breach) => {
            for clock in &mut details.sla_clocks {
                if clock.policy_id == breach.policy_id
                    && clock.metric == breach.metric
                    && clock.due_at == breach.due_at
                {
                    clock.breached = true;
                }
            }
        }
        Event::SlaRecomputed(recomputed) => {
            match details
                .sla_clocks
                .iter_mut()
                .find(|clock| clock.metric == recomputed.metric)
            {
                Some(clock) => {
                    recomputed.policy_id.clone_into(&mut clock.policy_id);
                    clock.due_at = recomputed.to_due_at;
                    // A new cycle is a new promise: its warning and breach are still to come.
                    // Any other move keeps them: each is recorded once per cycle.
                    if recomputed.cause == RecomputeCause::NewCycle {
                        clock.warned = false;
                        clock.breached = false;
                    }
                }
                None => details.sla_clocks.push(SlaClock {
                    policy_id: recomputed.policy_id.clone(),
                    metric: recomputed.metric.clone(),
                    due_at: recomputed.to_due_at,
                    warned: false,
                    breached: false,
                }),
            }
        }
        Event::Escalated(escalated) => details.escalation_level = escalated.to_level,
        Event::CustomerUpsetFlagged(_) => details.customer_upset = true,
        Event::SatisfactionSurveySent(sent) => {
            details.surveyed_resolution = Some(sent.resolution);
        }
    }
    ticket
}
