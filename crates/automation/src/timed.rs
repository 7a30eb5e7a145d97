//! Time-based automations, sans-IO: a ticket waiting on the customer is reminded after a while
//! and closed after longer; a solved ticket is closed after a while and the customer is asked
//! for their satisfaction. The core learns when each ticket entered its current state
//! (`observe`), answers `next_deadline()` and `fire_due(now)` in due order, and holds no clock:
//! the driver feeds it the time. A fire's command id is derived from the ticket, the rule and
//! the version at which the ticket entered the state, so a fire repeated after a crash or on
//! another node appends once, and a ticket that leaves the state and comes back is a new period
//! with new timers.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use domain::{Command, StateCategory, TicketId, TransitionTicket};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;
use uuid::Uuid;

use crate::config::ConfigError;
use crate::template::{Template, TemplateValues};

/// Most timers one `fire_due` returns; the driver calls again for the rest.
pub const TIMED_FIRE_BATCH_MAX: usize = 1_000;
/// The longest delay a rule may have, in hours (a year).
pub const TIMED_DELAY_HOURS_MAX: i64 = 24 * 366;

/// `[automation.timed]` as written. Each rule is off unless its delay is given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedConfig {
    /// Remind a customer whose ticket has waited on them this long (e.g. 72).
    #[serde(default)]
    pub remind_pending_after_hours: Option<Spanned<i64>>,
    /// The public reply sent as the reminder; placeholders as in macros, except `agent.name`.
    #[serde(default)]
    pub reminder: Option<Spanned<String>>,
    /// Close a ticket that has waited on the customer this long (e.g. 168, seven days).
    #[serde(default)]
    pub close_pending_after_hours: Option<Spanned<i64>>,
    /// The blueprint transition that closes a pending ticket; the system must be allowed it.
    #[serde(default)]
    pub close_pending_transition: Option<String>,
    /// Close a solved ticket after this long (e.g. 48), and ask for the customer's rating.
    #[serde(default)]
    pub close_solved_after_hours: Option<Spanned<i64>>,
    /// The blueprint transition that closes a solved ticket (default `close`).
    #[serde(default)]
    pub close_solved_transition: Option<String>,
}

/// What a timer does when it comes due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimedRule {
    /// Waiting on the customer for `remind_pending_after`: a public reply from the template.
    RemindPending,
    /// Waiting on the customer for `close_pending_after`: the close transition.
    ClosePending,
    /// Solved for `close_solved_after`: the close transition, then the CSAT survey.
    CloseSolved,
}

impl TimedRule {
    pub fn name(self) -> &'static str {
        match self {
            TimedRule::RemindPending => "remind_pending",
            TimedRule::ClosePending => "close_pending",
            TimedRule::CloseSolved => "close_solved",
        }
    }
}

/// The compiled rules.
#[derive(Clone, Debug, Default)]
pub struct TimedRules {
    pub remind_pending: Option<(SignedDuration, Template)>,
    pub close_pending: Option<(SignedDuration, String)>,
    pub close_solved: Option<(SignedDuration, String)>,
}

impl TimedRules {
    pub(crate) fn compile(config: &Spanned<TimedConfig>) -> Result<TimedRules, ConfigError> {
        let key = "automation.timed";
        // An error points at the value it is about, or (for a missing one) at the value that
        // needs it; the whole table only when neither is written.
        let error = |name: &str, at: Option<Range<usize>>, message: String| ConfigError {
            span: Some(at.unwrap_or_else(|| config.span())),
            key: format!("{key}.{name}"),
            message,
        };
        let hours = |name: &str, value: Option<&Spanned<i64>>| -> Result<_, ConfigError> {
            match value {
                None => Ok(None),
                Some(hours) if (1..=TIMED_DELAY_HOURS_MAX).contains(hours.get_ref()) => Ok(Some((
                    SignedDuration::from_hours(*hours.get_ref()),
                    hours.span(),
                ))),
                Some(hours) => Err(error(
                    name,
                    Some(hours.span()),
                    format!(
                        "{} must be 1 to {TIMED_DELAY_HOURS_MAX} hours",
                        hours.get_ref()
                    ),
                )),
            }
        };
        let timed = config.get_ref();
        let remind_pending = match hours(
            "remind_pending_after_hours",
            timed.remind_pending_after_hours.as_ref(),
        )? {
            None => None,
            Some((after, after_span)) => {
                let text = timed.reminder.as_ref().ok_or_else(|| {
                    error(
                        "reminder",
                        Some(after_span),
                        "remind_pending_after_hours needs a reminder text".to_owned(),
                    )
                })?;
                let at = Some(text.span());
                let template = Template::parse(text.get_ref())
                    .map_err(|e| error("reminder", at.clone(), e.to_string()))?;
                if template
                    .placeholders()
                    .any(|p| p == crate::template::Placeholder::AgentName)
                {
                    return Err(error(
                        "reminder",
                        at,
                        "{{agent.name}} has no value in an automatic reminder".to_owned(),
                    ));
                }
                Some((after, template))
            }
        };
        let close_pending = match hours(
            "close_pending_after_hours",
            timed.close_pending_after_hours.as_ref(),
        )? {
            None => None,
            Some((after, after_span)) => {
                let transition = timed.close_pending_transition.clone().ok_or_else(|| {
                    error(
                        "close_pending_transition",
                        Some(after_span),
                        "close_pending_after_hours needs the transition that closes a pending ticket (one the system role may take)".to_owned(),
                    )
                })?;
                Some((after, transition))
            }
        };
        let close_solved = hours(
            "close_solved_after_hours",
            timed.close_solved_after_hours.as_ref(),
        )?
        .map(|(after, _)| {
            let transition = timed
                .close_solved_transition
                .clone()
                .unwrap_or_else(|| "close".to_owned());
            (after, transition)
        });
        Ok(TimedRules {
            remind_pending,
            close_pending,
            close_solved,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.remind_pending.is_none() && self.close_pending.is_none() && self.close_solved.is_none()
    }

    /// The commands a due timer issues. The survey is its own command after the close, so that
    /// a close the blueprint refuses still leaves the survey out.
    pub fn commands(
        &self,
        rule: TimedRule,
        values: &TemplateValues,
    ) -> Result<Vec<Command>, crate::template::TemplateError> {
        Ok(match rule {
            TimedRule::RemindPending => match &self.remind_pending {
                Some((_, template)) => vec![Command::PostPublicReply(domain::PostPublicReply {
                    body: template.render(values)?,
                    attachments: Vec::new(),
                })],
                None => Vec::new(),
            },
            TimedRule::ClosePending => match &self.close_pending {
                Some((_, transition)) => vec![Command::TransitionTicket(TransitionTicket {
                    transition: transition.clone(),
                })],
                None => Vec::new(),
            },
            TimedRule::CloseSolved => match &self.close_solved {
                Some((_, transition)) => vec![
                    Command::TransitionTicket(TransitionTicket {
                        transition: transition.clone(),
                    }),
                    Command::SendSatisfactionSurvey(domain::SendSatisfactionSurvey {
                        rule_id: "timed:close_solved".to_owned(),
                    }),
                ],
                None => Vec::new(),
            },
        })
    }

    /// The delay of `rule`, if it is on.
    pub fn delay(&self, rule: TimedRule) -> Option<SignedDuration> {
        match rule {
            TimedRule::RemindPending => self.remind_pending.as_ref().map(|(after, _)| *after),
            TimedRule::ClosePending => self.close_pending.as_ref().map(|(after, _)| *after),
            TimedRule::CloseSolved => self.close_solved.as_ref().map(|(after, _)| *after),
        }
    }

    fn delays(&self, category: StateCategory) -> Vec<(TimedRule, SignedDuration)> {
        let mut delays = Vec::new();
        match category {
            StateCategory::Pending => {
                if let Some((after, _)) = &self.remind_pending {
                    delays.push((TimedRule::RemindPending, *after));
                }
                if let Some((after, _)) = &self.close_pending {
                    delays.push((TimedRule::ClosePending, *after));
                }
            }
            StateCategory::Solved => {
                if let Some((after, _)) = &self.close_solved {
                    delays.push((TimedRule::CloseSolved, *after));
                }
            }
            StateCategory::New | StateCategory::Open | StateCategory::Closed => {}
        }
        delays
    }
}

/// A timer that came due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedDue {
    pub ticket: TicketId,
    pub rule: TimedRule,
    pub due_at: Timestamp,
    /// The stream version at which the ticket entered the state this timer belongs to.
    pub entered_version: u64,
    pub command_id: Uuid,
}

/// The deterministic command id of a fire.
pub fn timed_command_id(ticket: TicketId, rule: TimedRule, entered_version: u64) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"docket-timed\0")
        .chain_update(ticket.0.as_bytes())
        .chain_update(rule.name().as_bytes())
        .chain_update(entered_version.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The timers of all tickets.
#[derive(Debug, Default)]
pub struct TimedCore {
    rules: TimedRules,
    /// Per ticket: the version it entered its state at, and its pending timers.
    tickets: HashMap<TicketId, (u64, Vec<(Timestamp, TimedRule)>)>,
    by_due: BTreeSet<(Timestamp, TicketId, TimedRule)>,
}

impl TimedCore {
    pub fn new(rules: TimedRules) -> TimedCore {
        TimedCore {
            rules,
            tickets: HashMap::new(),
            by_due: BTreeSet::new(),
        }
    }

    pub fn rules(&self) -> &TimedRules {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.by_due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_due.is_empty()
    }

    /// The ticket entered `category` at `entered_at` (its stream version `entered_version`):
    /// timers of its previous state are dropped, the new state's are set.
    pub fn observe(
        &mut self,
        ticket: TicketId,
        category: StateCategory,
        entered_at: Timestamp,
        entered_version: u64,
    ) {
        if let Some((version, _)) = self.tickets.get(&ticket) {
            if *version >= entered_version {
                return;
            }
        }
        self.forget(ticket);
        let timers: Vec<(Timestamp, TimedRule)> = self
            .rules
            .delays(category)
            .into_iter()
            .filter_map(|(rule, after)| Some((entered_at.checked_add(after).ok()?, rule)))
            .collect();
        if timers.is_empty() {
            return;
        }
        for (due_at, rule) in &timers {
            self.by_due.insert((*due_at, ticket, *rule));
        }
        self.tickets.insert(ticket, (entered_version, timers));
    }

    fn forget(&mut self, ticket: TicketId) {
        if let Some((_, timers)) = self.tickets.remove(&ticket) {
            for (due_at, rule) in timers {
                self.by_due.remove(&(due_at, ticket, rule));
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.by_due.first().map(|(due_at, _, _)| *due_at)
    }

    /// Removes and returns the timers due at `now`, oldest first, at most `max` (and never
    /// more than `TIMED_FIRE_BATCH_MAX`).
    pub fn fire_due(&mut self, now: Timestamp, max: usize) -> Vec<TimedDue> {
        let max = max.min(TIMED_FIRE_BATCH_MAX);
        let mut due = Vec::new();
        while due.len() < max {
            let Some(&(due_at, ticket, rule)) = self.by_due.first() else {
                break;
            };
            if due_at > now {
                break;
            }
            self.by_due.remove(&(due_at, ticket, rule));
            let entered_version = match self.tickets.get_mut(&ticket) {
                Some((version, timers)) => {
                    timers.retain(|timer| *timer != (due_at, rule));
                    *version
                }
                None => continue,
            };
            due.push(TimedDue {
                ticket,
                rule,
                due_at,
                entered_version,
                command_id: timed_command_id(ticket, rule, entered_version),
            });
        }
        due
    }
}

/// The time-based rules as a source of the SLA scheduler's driver: it folds the log into a
/// `TimedCore` and hands out due work, one domain command per item (a close and its survey are
/// two items with their own command ids).
#[derive(Debug)]
pub struct TimedSource {
    core: TimedCore,
    tickets: HashMap<TicketId, TicketFacts>,
    people: HashMap<Uuid, String>,
    /// Work already taken from the core but beyond the driver's `max`.
    queued: std::collections::VecDeque<sla_scheduler::Work>,
}

#[derive(Debug, Default)]
struct TicketFacts {
    category: Option<StateCategory>,
    number: u64,
    requester: Uuid,
    requester_name: Option<String>,
    requester_email: Option<String>,
    subject: String,
}

/// The command id of the `index`-th command of a fire.
fn work_id(base: Uuid, index: usize) -> Uuid {
    if index == 0 {
        return base;
    }
    let digest = Sha256::new()
        .chain_update(base.as_bytes())
        .chain_update((index as u64).to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl TimedSource {
    pub fn new(rules: TimedRules) -> TimedSource {
        TimedSource {
            core: TimedCore::new(rules),
            tickets: HashMap::new(),
            people: HashMap::new(),
            queued: std::collections::VecDeque::new(),
        }
    }

    fn values(&self, ticket: TicketId) -> TemplateValues {
        let Some(facts) = self.tickets.get(&ticket) else {
            return TemplateValues::default();
        };
        TemplateValues {
            customer_name: self
                .people
                .get(&facts.requester)
                .cloned()
                .or_else(|| facts.requester_name.clone()),
            customer_email: facts.requester_email.clone(),
            ticket_number: Some(facts.number),
            ticket_subject: Some(facts.subject.clone()),
            agent_name: None,
        }
    }
}

impl sla_scheduler::TimerSource for TimedSource {
    fn name(&self) -> &'static str {
        "automation.timed"
    }

    fn observe(&mut self, record: &store::Record) {
        if record.event_type == "CustomerRegistered" {
            if let Ok(payload) = serde_json::from_str::<serde_json::Value>(&record.payload) {
                let id = payload["customer_id"]
                    .as_str()
                    .and_then(|id| Uuid::parse_str(id).ok());
                if let (Some(id), Some(name)) = (id, payload["pii"]["name"].as_str()) {
                    self.people.insert(id, name.to_owned());
                }
            }
            return;
        }
        if self.core.rules().is_empty() {
            return;
        }
        let moves = matches!(
            record.event_type.as_str(),
            "TicketCreated" | "TicketTransitioned" | "TicketReopened" | "TicketMergedInto"
        );
        if !moves {
            return;
        }
        let Some(ticket) = sla_scheduler::source::ticket_of(record) else {
            return;
        };
        let Ok(event) =
            domain::Event::from_stored(&record.event_type, record.schema_version, &record.payload)
        else {
            return;
        };
        let facts = self.tickets.entry(ticket).or_default();
        let category = match &event {
            domain::Event::TicketCreated(created) => {
                facts.number = created.number.0;
                facts.requester = created.requester.0;
                facts.requester_name = created.pii.requester_name.clone();
                facts.requester_email = created.pii.requester_email.clone();
                facts.subject = created.pii.subject.clone();
                created.category
            }
            domain::Event::TicketTransitioned(moved) => moved.to_category,
            domain::Event::TicketReopened(reopened) => reopened.to_category,
            domain::Event::TicketMergedInto(_) => StateCategory::Closed,
            _ => return,
        };
        if facts.category == Some(category) {
            return;
        }
        facts.category = Some(category);
        let at = sla_scheduler::source::event_time(record);
        self.core
            .observe(ticket, category, at, record.stream_version);
        if category == StateCategory::Closed {
            // Nothing more happens to a closed ticket: forget what templates needed.
            self.tickets.remove(&ticket);
        }
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        if let Some(work) = self.queued.front() {
            return Some(work.due_at);
        }
        self.core.next_deadline()
    }

    fn fire_due(&mut self, now: Timestamp, max: usize) -> Vec<sla_scheduler::Work> {
        if self.queued.len() < max {
            for due in self.core.fire_due(now, max) {
                let values = self.values(due.ticket);
                let commands = match self.core.rules().commands(due.rule, &values) {
                    Ok(commands) => commands,
                    Err(error) => {
                        tracing::warn!(%error, ticket = %due.ticket, rule = due.rule.name(), "time-based rule cannot fire");
                        continue;
                    }
                };
                // The evidence an auditor needs: when the ticket entered the state (at which
                // stream version) and how long the rule waits.
                let delay = self.core.rules().delay(due.rule).unwrap_or_default();
                let evidence = serde_json::json!({
                    "state": match due.rule {
                        TimedRule::RemindPending | TimedRule::ClosePending => "pending",
                        TimedRule::CloseSolved => "solved",
                    },
                    "state_entered_at": due.due_at.checked_sub(delay).unwrap_or(due.due_at),
                    "state_entered_version": due.entered_version,
                    "delay_hours": delay.as_hours(),
                });
                for (index, command) in commands.into_iter().enumerate() {
                    self.queued.push_back(sla_scheduler::Work {
                        ticket: due.ticket,
                        command,
                        command_id: work_id(due.command_id, index),
                        due_at: due.due_at,
                        source: "automation.timed",
                        rule: Some(due.rule.name()),
                        evidence: Some(evidence.clone()),
                    });
                }
            }
        }
        let take = max.min(self.queued.len());
        self.queued.drain(..take).collect()
    }

    fn timers(&self) -> usize {
        self.core.len() + self.queued.len()
    }
}
