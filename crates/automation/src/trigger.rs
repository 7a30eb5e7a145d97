//! Triggers: on an event, if conditions hold, do actions. Evaluation is pure: the shell hands in
//! the event, the ticket as of that event and the facts it looked up (the customer's tier), and
//! gets back the triggers that fire, in configured order, each with the evidence of every
//! condition that held. Turning a firing into commands is `plan`.
//!
//! Evaluation is built for hundreds of triggers per event: triggers are indexed by event type,
//! the event's text is lowercased once, and every `text_contains` needle of every trigger is
//! searched in one Aho-Corasick pass, so a trigger's text condition is a bit lookup.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::Write as _;

use aho_corasick::AhoCorasick;
use domain::calendar::BusinessCalendar;
use domain::{AgentId, Channel, Event, FieldValue, Priority, StateCategory, TeamId, TicketDetails};
use jiff::Timestamp;
use regex_automata::meta::Regex;
use serde::Serialize;

use crate::template::Template;

/// Most triggers in one configuration.
pub const TRIGGERS_MAX: usize = 2_000;
/// Most conditions (`all` and `any` together) of one trigger.
pub const CONDITIONS_MAX: usize = 32;
/// Most actions of one trigger.
pub const ACTIONS_MAX: usize = 16;
/// Longest `text_contains` needle or `text_matches` pattern, in bytes.
pub const PATTERN_BYTES_MAX: usize = 512;
/// How many trigger-caused events may follow each other: an event caused by a trigger at depth
/// `CHAIN_DEPTH_MAX` fires no further triggers.
pub const CHAIN_DEPTH_MAX: u32 = 3;

/// One condition on the event, the ticket or the facts.
#[derive(Clone, Debug)]
pub enum Condition {
    Priority(Priority),
    PriorityAtLeast(Priority),
    Channel(Channel),
    TicketType(String),
    State(String),
    Category(StateCategory),
    HasTag(String),
    LacksTag(String),
    Team(TeamId),
    Assignee(AgentId),
    Assigned(bool),
    Field {
        name: String,
        equals: FieldValue,
    },
    /// Lowercased needle and its index in the trigger set's Aho-Corasick automaton.
    TextContains {
        needle: String,
        index: usize,
    },
    TextMatches(Box<Regex>, String),
    CustomerTier(String),
    BusinessHours(bool),
}

/// What a trigger does.
#[derive(Clone, Debug)]
pub enum Action {
    SetPriority(Priority),
    AssignTeam(TeamId),
    AssignAgent(AgentId),
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
    AddNote(Template),
    Transition(String),
    ApplyMacro(String),
    SendWebhook(String),
}

/// A compiled trigger.
#[derive(Clone, Debug)]
pub struct Trigger {
    pub id: String,
    pub on: Vec<String>,
    pub all: Vec<Condition>,
    pub any: Vec<Condition>,
    pub actions: Vec<Action>,
}

/// What one condition matched, for the event's metadata. It never quotes the customer: a text
/// match names the configured needle or pattern and where it matched, not the text around it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub condition: String,
    pub matched: String,
}

/// A trigger that fires on an event.
#[derive(Clone, Debug)]
pub struct Firing<'a> {
    pub trigger: &'a Trigger,
    pub evidence: Vec<Evidence>,
}

impl Firing<'_> {
    /// The evidence in one line, for `reason` and `evidence` fields of commands.
    pub fn evidence_line(&self) -> String {
        let mut line = format!("trigger {}:", self.trigger.id);
        for (index, evidence) in self.evidence.iter().enumerate() {
            let separator = if index == 0 { " " } else { "; " };
            let _ = write!(
                line,
                "{separator}{} ({})",
                evidence.condition, evidence.matched
            );
        }
        if self.evidence.is_empty() {
            line.push_str(" no conditions");
        }
        // Commands take at most REASON_BYTES_MAX of reason; the metadata keeps every item.
        if line.len() > domain::limits::REASON_BYTES_MAX {
            let mut end = domain::limits::REASON_BYTES_MAX - 3;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        line
    }
}

/// What the shell knows about an event besides the event and the ticket.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    pub event: &'a Event,
    /// The ticket as of this event (the event folded in).
    pub ticket: &'a TicketDetails,
    /// The requester's tier from the directory (`vip`, `standard`…), if known.
    pub customer_tier: Option<&'a str>,
    /// When the event happened.
    pub at: Timestamp,
}

/// All triggers of a configuration, in order, indexed for evaluation.
#[derive(Debug)]
pub struct TriggerSet {
    triggers: Vec<Trigger>,
    by_event_type: HashMap<String, Vec<usize>>,
    needles: Option<AhoCorasick>,
    needle_count: usize,
    calendar: BusinessCalendar,
}

impl Default for TriggerSet {
    fn default() -> TriggerSet {
        TriggerSet::new(Vec::new(), Vec::new(), BusinessCalendar::always_open())
    }
}

/// Per-event work shared by all triggers, computed at most once.
struct Scratch<'f, 'a> {
    facts: &'f Facts<'a>,
    raw_text: OnceCell<String>,
    text: OnceCell<String>,
    found: OnceCell<Vec<bool>>,
    open: OnceCell<bool>,
}

impl TriggerSet {
    /// `needles` are the lowercased `text_contains` needles, indexed as the conditions name them.
    pub(crate) fn new(
        triggers: Vec<Trigger>,
        needles: Vec<String>,
        calendar: BusinessCalendar,
    ) -> TriggerSet {
        let mut by_event_type: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, trigger) in triggers.iter().enumerate() {
            for event_type in &trigger.on {
                by_event_type
                    .entry(event_type.clone())
                    .or_default()
                    .push(index);
            }
        }
        let needle_count = needles.len();
        // Needles are at most PATTERN_BYTES_MAX bytes and TRIGGERS_MAX * CONDITIONS_MAX in
        // number, far inside the automaton's limits.
        let needles = (!needles.is_empty()).then(|| {
            AhoCorasick::new(&needles).expect("bounded needles always build an automaton")
        });
        TriggerSet {
            triggers,
            by_event_type,
            needles,
            needle_count,
            calendar,
        }
    }

    /// Whether any trigger fires on events of this type (a cheap filter before any reading).
    pub fn listens_to(&self, event_type: &str) -> bool {
        self.by_event_type.contains_key(event_type)
    }

    pub fn triggers(&self) -> &[Trigger] {
        &self.triggers
    }

    pub fn len(&self) -> usize {
        self.triggers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.triggers.is_empty()
    }

    /// The triggers that fire on this event, in configured order, with their evidence.
    pub fn evaluate(&self, facts: &Facts<'_>) -> Vec<Firing<'_>> {
        let Some(indices) = self.by_event_type.get(facts.event.event_type()) else {
            return Vec::new();
        };
        let scratch = Scratch {
            facts,
            raw_text: OnceCell::new(),
            text: OnceCell::new(),
            found: OnceCell::new(),
            open: OnceCell::new(),
        };
        let mut firings = Vec::new();
        for &index in indices {
            let trigger = &self.triggers[index];
            let all_hold = trigger
                .all
                .iter()
                .all(|condition| self.holds(condition, &scratch));
            if !all_hold {
                continue;
            }
            let any = trigger
                .any
                .iter()
                .find(|condition| self.holds(condition, &scratch));
            if !trigger.any.is_empty() && any.is_none() {
                continue;
            }
            let evidence = trigger
                .all
                .iter()
                .chain(any)
                .map(|condition| self.evidence(condition, &scratch))
                .collect();
            firings.push(Firing { trigger, evidence });
        }
        firings
    }

    /// The event's text as written, for regular expressions (which choose their own case
    /// sensitivity with `(?i)`).
    fn raw_text<'s>(&self, scratch: &'s Scratch<'_, '_>) -> &'s str {
        scratch.raw_text.get_or_init(|| event_text(scratch.facts))
    }

    /// The event's text lowercased, for `text_contains`.
    fn text<'s>(&self, scratch: &'s Scratch<'_, '_>) -> &'s str {
        scratch
            .text
            .get_or_init(|| self.raw_text(scratch).to_lowercase())
    }

    fn found(&self, scratch: &Scratch<'_, '_>, index: usize) -> bool {
        let found = scratch.found.get_or_init(|| {
            let mut found = vec![false; self.needle_count];
            if let Some(needles) = &self.needles {
                for hit in needles.find_overlapping_iter(self.text(scratch)) {
                    found[hit.pattern().as_usize()] = true;
                }
            }
            found
        });
        found.get(index).copied().unwrap_or(false)
    }

    fn is_open(&self, scratch: &Scratch<'_, '_>) -> bool {
        *scratch
            .open
            .get_or_init(|| self.calendar.is_open(scratch.facts.at))
    }

    fn holds(&self, condition: &Condition, scratch: &Scratch<'_, '_>) -> bool {
        let ticket = scratch.facts.ticket;
        match condition {
            Condition::Priority(priority) => ticket.priority == *priority,
            Condition::PriorityAtLeast(priority) => ticket.priority >= *priority,
            Condition::Channel(channel) => ticket.channel == *channel,
            Condition::TicketType(ticket_type) => ticket.ticket_type == *ticket_type,
            Condition::State(state) => ticket.state == *state,
            Condition::Category(category) => ticket.category == *category,
            Condition::HasTag(tag) => ticket.tags.contains(tag),
            Condition::LacksTag(tag) => !ticket.tags.contains(tag),
            Condition::Team(team) => ticket.team == Some(*team),
            Condition::Assignee(agent) => ticket.assignee == Some(*agent),
            Condition::Assigned(assigned) => ticket.assignee.is_some() == *assigned,
            Condition::Field { name, equals } => ticket.fields.get(name) == Some(equals),
            Condition::TextContains { index, .. } => self.found(scratch, *index),
            Condition::TextMatches(regex, _) => regex.is_match(self.raw_text(scratch)),
            Condition::CustomerTier(tier) => scratch.facts.customer_tier == Some(tier.as_str()),
            Condition::BusinessHours(open) => self.is_open(scratch) == *open,
        }
    }

    fn evidence(&self, condition: &Condition, scratch: &Scratch<'_, '_>) -> Evidence {
        let ticket = scratch.facts.ticket;
        let (condition, matched) = match condition {
            Condition::Priority(priority) => (
                format!("priority = {priority}"),
                ticket.priority.to_string(),
            ),
            Condition::PriorityAtLeast(priority) => (
                format!("priority >= {priority}"),
                ticket.priority.to_string(),
            ),
            Condition::Channel(channel) => (
                format!("channel = {}", json_name(channel)),
                json_name(&ticket.channel),
            ),
            Condition::TicketType(ticket_type) => (
                format!("ticket_type = {ticket_type}"),
                ticket.ticket_type.clone(),
            ),
            Condition::State(state) => (format!("state = {state}"), ticket.state.clone()),
            Condition::Category(category) => (
                format!("category = {category}"),
                ticket.category.to_string(),
            ),
            Condition::HasTag(tag) => (format!("has tag {tag}"), "present".to_owned()),
            Condition::LacksTag(tag) => (format!("lacks tag {tag}"), "absent".to_owned()),
            Condition::Team(team) => (format!("team = {team}"), team.to_string()),
            Condition::Assignee(agent) => (format!("assignee = {agent}"), agent.to_string()),
            Condition::Assigned(assigned) => (
                format!("assigned = {assigned}"),
                ticket
                    .assignee
                    .map_or_else(|| "nobody".to_owned(), |agent| agent.to_string()),
            ),
            Condition::Field { name, equals } => {
                (format!("field {name} = {equals}"), equals.to_string())
            }
            Condition::TextContains { needle, .. } => {
                let text = self.text(scratch);
                let at = text.find(needle.as_str()).unwrap_or_default();
                (
                    format!("text contains {needle:?}"),
                    format!("{} at byte {at}", text_source(scratch.facts.event)),
                )
            }
            Condition::TextMatches(regex, pattern) => {
                let at = regex
                    .find(self.raw_text(scratch))
                    .map_or(0, |found| found.start());
                (
                    format!("text matches /{pattern}/"),
                    format!("{} at byte {at}", text_source(scratch.facts.event)),
                )
            }
            Condition::CustomerTier(tier) => (
                format!("customer tier = {tier}"),
                scratch.facts.customer_tier.unwrap_or("unknown").to_owned(),
            ),
            Condition::BusinessHours(open) => (
                format!("business hours = {open}"),
                format!("at {}", scratch.facts.at),
            ),
        };
        Evidence { condition, matched }
    }
}

/// The JSON name of a value (`email` for `Channel::Email`).
fn json_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}

/// The text an event brings: what was written, or for a new ticket its subject and description.
fn event_text(facts: &Facts<'_>) -> String {
    match facts.event {
        Event::TicketCreated(created) => {
            format!("{}\n{}", created.pii.subject, created.pii.description)
        }
        Event::CustomerMessageReceived(message) => message.pii.body.clone(),
        Event::PublicReplyPosted(reply) => reply.pii.body.clone(),
        Event::InternalNoteAdded(note) => note.pii.body.clone(),
        Event::TicketFieldsUpdated(updated) => {
            let subject = updated.pii.subject.as_deref().unwrap_or("");
            let description = updated.pii.description.as_deref().unwrap_or("");
            format!("{subject}\n{description}")
        }
        _ => String::new(),
    }
}

/// Where `event_text` took its text from, for evidence.
fn text_source(event: &Event) -> &'static str {
    match event {
        Event::TicketCreated(_) => "subject and description",
        Event::CustomerMessageReceived(_) | Event::PublicReplyPosted(_) => "message body",
        Event::InternalNoteAdded(_) => "note body",
        Event::TicketFieldsUpdated(_) => "updated subject and description",
        _ => "no text",
    }
}

/// What a firing does: commands on the ticket (decided as one batch) and webhooks to send.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub commands: Vec<domain::Command>,
    /// Names of webhook subscriptions to send the triggering event to.
    pub webhooks: Vec<String>,
}

impl Firing<'_> {
    /// The commands and webhooks of this firing. Commands act as the system: priority changes
    /// are `ChangePriorityByRule` naming the trigger, assignments carry the evidence as reason.
    pub fn plan(
        &self,
        macros: &crate::macros::Macros,
        values: &crate::template::TemplateValues,
    ) -> Result<Plan, crate::macros::MacroError> {
        use domain::{
            AddInternalNote, AddTags, AssignAgent, AssignTeam, ChangePriorityByRule, Command,
            RemoveTags, TransitionTicket,
        };
        let rule_id = format!("trigger:{}", self.trigger.id);
        let evidence = self.evidence_line();
        let mut plan = Plan::default();
        for action in &self.trigger.actions {
            match action {
                Action::SetPriority(priority) => {
                    plan.commands
                        .push(Command::ChangePriorityByRule(ChangePriorityByRule {
                            priority: *priority,
                            rule_id: rule_id.clone(),
                            evidence: evidence.clone(),
                        }))
                }
                Action::AssignTeam(team) => plan.commands.push(Command::AssignTeam(AssignTeam {
                    team: *team,
                    reason: Some(evidence.clone()),
                })),
                Action::AssignAgent(agent) => {
                    plan.commands.push(Command::AssignAgent(AssignAgent {
                        agent: *agent,
                        reason: Some(evidence.clone()),
                        routing: None,
                    }))
                }
                Action::AddTags(tags) => plan
                    .commands
                    .push(Command::AddTags(AddTags { tags: tags.clone() })),
                Action::RemoveTags(tags) => plan
                    .commands
                    .push(Command::RemoveTags(RemoveTags { tags: tags.clone() })),
                Action::AddNote(template) => {
                    let body = template.render(values).map_err(|error| {
                        crate::macros::MacroError::Template {
                            id: format!("trigger {} note", self.trigger.id),
                            error,
                        }
                    })?;
                    plan.commands
                        .push(Command::AddInternalNote(AddInternalNote {
                            body,
                            mentions: Vec::new(),
                        }));
                }
                Action::Transition(transition) => {
                    plan.commands
                        .push(Command::TransitionTicket(TransitionTicket {
                            transition: transition.clone(),
                        }))
                }
                Action::ApplyMacro(id) => plan.commands.extend(macros.expand(
                    id,
                    values,
                    crate::macros::AppliedBy::Trigger {
                        rule_id: &rule_id,
                        evidence: &evidence,
                    },
                )?),
                Action::SendWebhook(name) => plan.webhooks.push(name.clone()),
            }
        }
        Ok(plan)
    }
}
