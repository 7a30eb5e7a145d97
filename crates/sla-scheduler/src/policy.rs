//! SLA policies: the `[sla]` section of `docket.toml`, checked and compiled into `Policies`.
//!
//! A policy names a business-hours calendar, the conditions that choose it (customer tier,
//! priority, channel, ticket type, team; every listed condition must hold; the first policy that
//! matches wins, and one with no conditions is the fallback), a target per metric and priority,
//! the metrics a pending state pauses, when to warn, and escalation rules for a warning or a
//! breach. The whole set carries a version, recorded in every SLA event. The semantics are in
//! docs/sla.md.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use domain::calendar::{BusinessCalendar, CalendarError};
use domain::{AgentId, Channel, EscalationAction, Priority, SlaEscalation, TeamId};
use jiff::civil::{Date, Time};
use jiff::SignedDuration;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// Most policies in one configuration.
pub const POLICIES_MAX: usize = 100;
/// Most calendars in one configuration.
pub const CALENDARS_MAX: usize = 50;
/// Most escalation rules of one policy.
pub const ESCALATIONS_PER_POLICY_MAX: usize = domain::limits::SLA_ESCALATIONS_MAX;
/// The longest target: a year of business time.
pub const TARGET_MAX: SignedDuration = SignedDuration::from_hours(366 * 24);
/// The name of the built-in always-open calendar.
pub const ALWAYS_OPEN: &str = "24x7";

/// The shipped policies (seed 002: VIP customers get a first response within 2 hours, everyone
/// else within 24), used when `docket.toml` has no `[sla]` section.
pub const DEFAULT_POLICIES: &str = r#"
version = 1

[[policies]]
id = "vip"
when = { tier = ["vip"] }
warning = "80%"
targets.first_response = { urgent = "1h", high = "2h", normal = "2h", low = "2h" }
targets.next_reply = { urgent = "2h", high = "4h", normal = "4h", low = "4h" }
targets.periodic_update = "24h"
targets.resolution = { urgent = "8h", high = "24h", normal = "24h", low = "48h" }

[[policies.escalations]]
rule = "warn_high_priority"
on = "warning"
metrics = ["first_response", "next_reply"]
raise_priority = "high"

[[policies.escalations]]
rule = "breach_urgent"
on = "breach"
raise_priority = "urgent"
notify = []

[[policies]]
id = "standard"
warning = "80%"
targets.first_response = { urgent = "4h", high = "8h", normal = "24h", low = "48h" }
targets.next_reply = { urgent = "8h", high = "24h", normal = "24h", low = "48h" }
targets.periodic_update = "72h"
targets.resolution = { urgent = "24h", high = "72h", normal = "120h", low = "240h" }

[[policies.escalations]]
rule = "breach_high_priority"
on = "breach"
metrics = ["first_response", "resolution"]
raise_priority = "high"
notify = []
"#;

/// The metrics a policy can promise, in a fixed order (their index names a ticket's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// From creation to the first public reply by an agent.
    FirstResponse,
    /// From the oldest unanswered customer message to the next public agent reply.
    NextReply,
    /// The longest time between public agent updates while the ticket is open.
    PeriodicUpdate,
    /// From creation to solved, minus paused time.
    Resolution,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::FirstResponse,
        Metric::NextReply,
        Metric::PeriodicUpdate,
        Metric::Resolution,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::NextReply => "next_reply",
            Metric::PeriodicUpdate => "periodic_update",
            Metric::Resolution => "resolution",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(text: &str) -> Option<Metric> {
        Metric::ALL
            .into_iter()
            .find(|metric| metric.as_str() == text)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A business duration written as `2h`, `90m`, `1h30m` or ISO 8601 `PT2H`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusinessDuration(pub SignedDuration);

impl<'de> Deserialize<'de> for BusinessDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let duration = SignedDuration::from_str(&text).map_err(|_| {
            D::Error::custom(format!(
                "{text:?} is not a duration such as \"2h\", \"90m\" or \"1h30m\""
            ))
        })?;
        if duration <= SignedDuration::ZERO || duration > TARGET_MAX {
            return Err(D::Error::custom(format!(
                "{text:?} must be more than zero and at most 8784h"
            )));
        }
        Ok(BusinessDuration(duration))
    }
}

/// When to warn: at a share of the target (`"80%"`) or some time before the due time (`"30m"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    Percent(u8),
    Before(SignedDuration),
}

impl<'de> Deserialize<'de> for Warning {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if let Some(number) = text.strip_suffix('%') {
            return match number.trim().parse::<u8>() {
                Ok(percent) if (1..=99).contains(&percent) => Ok(Warning::Percent(percent)),
                _ => Err(D::Error::custom(format!(
                    "{text:?}: a warning percentage is 1% to 99%"
                ))),
            };
        }
        let duration = SignedDuration::from_str(&text).map_err(|_| {
            D::Error::custom(format!(
                "{text:?} is neither a percentage (\"80%\") nor a duration (\"30m\")"
            ))
        })?;
        if duration <= SignedDuration::ZERO {
            return Err(D::Error::custom(format!("{text:?} must be more than zero")));
        }
        Ok(Warning::Before(duration))
    }
}

impl Warning {
    /// The business time into a target of `target` at which the warning is due, if before it.
    pub fn threshold(self, target: SignedDuration) -> Option<SignedDuration> {
        let threshold = match self {
            Warning::Percent(percent) => target * i32::from(percent) / 100,
            Warning::Before(before) => target - before,
        };
        (threshold > SignedDuration::ZERO && threshold < target).then_some(threshold)
    }
}

/// A target for every priority, or per priority (a missing priority has no target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetConfig {
    All(BusinessDuration),
    PerPriority(PerPriority),
}

impl<'de> Deserialize<'de> for TargetConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TargetConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"2h\", or a table of durations by priority")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<TargetConfig, E> {
                BusinessDuration::deserialize(serde::de::value::StrDeserializer::<E>::new(text))
                    .map(TargetConfig::All)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<TargetConfig, A::Error> {
                PerPriority::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(TargetConfig::PerPriority)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerPriority {
    pub low: Option<BusinessDuration>,
    pub normal: Option<BusinessDuration>,
    pub high: Option<BusinessDuration>,
    pub urgent: Option<BusinessDuration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsConfig {
    pub first_response: Option<TargetConfig>,
    pub next_reply: Option<TargetConfig>,
    pub periodic_update: Option<TargetConfig>,
    pub resolution: Option<TargetConfig>,
}

/// Conditions that choose a policy: each listed one must hold (any of its values).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default)]
    pub tier: Vec<String>,
    #[serde(default)]
    pub priority: Vec<Priority>,
    #[serde(default)]
    pub channel: Vec<Channel>,
    #[serde(default, rename = "type")]
    pub ticket_type: Vec<String>,
    #[serde(default)]
    pub team: Vec<TeamId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Warning,
    Breach,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    pub rule: String,
    pub on: Trigger,
    /// The metrics it applies to; all when absent.
    #[serde(default)]
    pub metrics: Option<Vec<Metric>>,
    #[serde(default)]
    pub raise_priority: Option<Priority>,
    #[serde(default)]
    pub reassign_team: Option<TeamId>,
    #[serde(default)]
    pub add_collaborator: Option<AgentId>,
    /// Agents to notify; present (even empty) means "emit an escalation notification".
    #[serde(default)]
    pub notify: Option<Vec<AgentId>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub id: String,
    #[serde(default = "always_open")]
    pub calendar: String,
    #[serde(default)]
    pub when: Conditions,
    #[serde(default)]
    pub targets: TargetsConfig,
    /// Metrics whose clock stops while the ticket is pending; all but first response when absent.
    #[serde(default)]
    pub pause_on_pending: Option<Vec<Metric>>,
    #[serde(default)]
    pub warning: Option<Warning>,
    #[serde(default)]
    pub escalations: Vec<EscalationConfig>,
}

fn always_open() -> String {
    ALWAYS_OPEN.to_owned()
}

/// A working interval such as `09:00-12:00` (`24:00` or `00:00` as an end is midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalConfig(pub Time, pub Time);

impl<'de> Deserialize<'de> for IntervalConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bad = || {
            D::Error::custom(format!(
                "{text:?} is not an interval such as \"09:00-18:00\""
            ))
        };
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let time = |part: &str| -> Result<Time, D::Error> {
            let part = part.trim();
            if part == "24:00" {
                return Ok(Time::midnight());
            }
            Time::from_str(part).map_err(|_| bad())
        };
        Ok(IntervalConfig(time(start)?, time(end)?))
    }
}

/// A holiday: `2026-12-25`, a range `2026-10-01..2026-10-07`, or every year `01-01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolidayConfig {
    Dates(Date, Date),
    Yearly(i8, i8),
}

impl<'de> Deserialize<'de> for HolidayConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bad = || {
            D::Error::custom(format!(
                "{text:?} is not a holiday such as \"2026-12-25\", \"2026-10-01..2026-10-07\" or \"01-01\""
            ))
        };
        if let Some((first, last)) = text.split_once("..") {
            let first = Date::from_str(first.trim()).map_err(|_| bad())?;
            let last = Date::from_str(last.trim()).map_err(|_| bad())?;
            if last < first || (last - first).get_days() > 366 {
                return Err(D::Error::custom(format!(
                    "{text:?}: a holiday range runs forwards, for at most a year"
                )));
            }
            return Ok(HolidayConfig::Dates(first, last));
        }
        if text.len() == 5 {
            let (month, day) = text.split_once('-').ok_or_else(bad)?;
            let month: i8 = month.parse().map_err(|_| bad())?;
            let day: i8 = day.parse().map_err(|_| bad())?;
            // 2024 is a leap year, so 02-29 is a valid yearly day.
            Date::new(2024, month, day).map_err(|_| bad())?;
            return Ok(HolidayConfig::Yearly(month, day));
        }
        let date = Date::from_str(&text).map_err(|_| bad())?;
        Ok(HolidayConfig::Dates(date, date))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    pub time_zone: String,
    #[serde(default)]
    pub monday: Vec<IntervalConfig>,
    #[serde(default)]
    pub tuesday: Vec<IntervalConfig>,
    #[serde(default)]
    pub wednesday: Vec<IntervalConfig>,
    #[serde(default)]
    pub thursday: Vec<IntervalConfig>,
    #[serde(default)]
    pub friday: Vec<IntervalConfig>,
    #[serde(default)]
    pub saturday: Vec<IntervalConfig>,
    #[serde(default)]
    pub sunday: Vec<IntervalConfig>,
    #[serde(default)]
    pub holidays: Vec<HolidayConfig>,
}

/// The `[sla]` section as written.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConfig {
    pub version: u32,
    #[serde(default)]
    pub calendars: BTreeMap<String, CalendarConfig>,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
}

impl SlaConfig {
    /// The shipped defaults.
    pub fn shipped() -> SlaConfig {
        toml::from_str(DEFAULT_POLICIES).expect("the shipped SLA policies parse (tested)")
    }
}

/// Why a configuration is refused; `path` names the key, such as `sla.policies[1].calendar`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

fn error(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        path: path.into(),
        message: message.into(),
    }
}

/// One escalation rule, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escalation {
    pub rule: String,
    pub on: Trigger,
    pub metrics: Option<Vec<Metric>>,
    pub actions: Vec<EscalationAction>,
}

/// One policy, compiled: calendars resolved, targets per metric and priority.
#[derive(Clone, Debug)]
pub struct Policy {
    pub id: String,
    pub calendar_name: String,
    pub calendar: BusinessCalendar,
    pub when: Conditions,
    /// `targets[metric][priority]`.
    pub targets: [[Option<SignedDuration>; 4]; 4],
    pub pause_on_pending: [bool; 4],
    pub warning: Option<Warning>,
    pub escalations: Vec<Escalation>,
}

/// What a policy's conditions look at.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub tier: &'a str,
    pub priority: Priority,
    pub channel: Channel,
    pub ticket_type: &'a str,
    pub team: Option<TeamId>,
}

impl Policy {
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        let when = &self.when;
        (when.tier.is_empty() || when.tier.iter().any(|tier| tier == facts.tier))
            && (when.priority.is_empty() || when.priority.contains(&facts.priority))
            && (when.channel.is_empty() || when.channel.contains(&facts.channel))
            && (when.ticket_type.is_empty()
                || when
                    .ticket_type
                    .iter()
                    .any(|name| name == facts.ticket_type))
            && (when.team.is_empty() || facts.team.is_some_and(|team| when.team.contains(&team)))
    }

    pub fn target(&self, metric: Metric, priority: Priority) -> Option<SignedDuration> {
        self.targets[metric.index()][priority_index(priority)]
    }

    /// Why this policy matched, for the event's reason.
    pub fn explain(&self, facts: &Facts<'_>) -> String {
        let when = &self.when;
        let mut parts = Vec::new();
        if !when.tier.is_empty() {
            parts.push(format!("tier {}", facts.tier));
        }
        if !when.priority.is_empty() {
            parts.push(format!("priority {}", facts.priority));
        }
        if !when.channel.is_empty() {
            parts.push(format!("channel {:?}", facts.channel).to_lowercase());
        }
        if !when.ticket_type.is_empty() {
            parts.push(format!("type {}", facts.ticket_type));
        }
        if !when.team.is_empty() {
            if let Some(team) = facts.team {
                parts.push(format!("team {team}"));
            }
        }
        if parts.is_empty() {
            format!("policy {} (fallback)", self.id)
        } else {
            format!("policy {} matched {}", self.id, parts.join(", "))
        }
    }

    /// The escalation rules for a trigger on a metric, as the domain command carries them.
    pub fn escalations(&self, on: Trigger, metric: Metric) -> Vec<SlaEscalation> {
        self.escalations
            .iter()
            .filter(|escalation| escalation.on == on)
            .filter(|escalation| {
                escalation
                    .metrics
                    .as_ref()
                    .is_none_or(|metrics| metrics.contains(&metric))
            })
            .map(|escalation| SlaEscalation {
                rule: escalation.rule.clone(),
                actions: escalation.actions.clone(),
            })
            .collect()
    }
}

pub fn priority_index(priority: Priority) -> usize {
    match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

/// The compiled policy set.
#[derive(Clone, Debug)]
pub struct Policies {
    pub version: u32,
    pub policies: Vec<Policy>,
}

impl Policies {
    /// No policies: no ticket gets an SLA.
    pub fn none() -> Policies {
        Policies {
            version: 0,
            policies: Vec::new(),
        }
    }

    /// Checks and compiles a configuration.
    pub fn compile(config: &SlaConfig) -> Result<Policies, PolicyError> {
        if config.calendars.len() > CALENDARS_MAX {
            return Err(error(
                "sla.calendars",
                format!("at most {CALENDARS_MAX} calendars"),
            ));
        }
        if config.policies.len() > POLICIES_MAX {
            return Err(error(
                "sla.policies",
                format!("at most {POLICIES_MAX} policies"),
            ));
        }
        let mut calendars = BTreeMap::new();
        for (name, calendar) in &config.calendars {
            let path = format!("sla.calendars.{name}");
            if name == ALWAYS_OPEN {
                return Err(error(path, format!("{ALWAYS_OPEN} is built in")));
            }
            calendars.insert(
                name.clone(),
                compile_calendar(calendar).map_err(|e| error(path, e.to_string()))?,
            );
        }
        let mut policies: Vec<Policy> = Vec::new();
        for (n, policy) in config.policies.iter().enumerate() {
            let path = format!("sla.policies[{n}]");
            if !is_identifier(&policy.id) {
                return Err(error(
                    format!("{path}.id"),
                    format!("{:?}: lowercase letters, digits, `_` and `-`", policy.id),
                ));
            }
            if policies.iter().any(|other| other.id == policy.id) {
                return Err(error(
                    format!("{path}.id"),
                    format!("{:?} is defined twice", policy.id),
                ));
            }
            if let Some(fallback) = policies
                .iter()
                .find(|other| other.when == Conditions::default())
            {
                return Err(error(
                    path,
                    format!(
                        "unreachable: policy {:?} before it has no conditions and matches every ticket",
                        fallback.id
                    ),
                ));
            }
            let calendar = if policy.calendar == ALWAYS_OPEN {
                BusinessCalendar::always_open()
            } else {
                calendars.get(&policy.calendar).cloned().ok_or_else(|| {
                    error(
                        format!("{path}.calendar"),
                        format!(
                            "unknown calendar {:?} (define it under [sla.calendars.{}] or use {ALWAYS_OPEN:?})",
                            policy.calendar, policy.calendar
                        ),
                    )
                })?
            };
            let mut targets = [[None; 4]; 4];
            let written = [
                &policy.targets.first_response,
                &policy.targets.next_reply,
                &policy.targets.periodic_update,
                &policy.targets.resolution,
            ];
            for (metric, target) in written.into_iter().enumerate() {
                targets[metric] = match target {
                    None => [None; 4],
                    Some(TargetConfig::All(duration)) => [Some(duration.0); 4],
                    Some(TargetConfig::PerPriority(per)) => [
                        per.low.map(|d| d.0),
                        per.normal.map(|d| d.0),
                        per.high.map(|d| d.0),
                        per.urgent.map(|d| d.0),
                    ],
                };
            }
            if targets.iter().flatten().all(Option::is_none) {
                return Err(error(
                    format!("{path}.targets"),
                    "a policy needs at least one target",
                ));
            }
            let mut pause_on_pending = [false, true, true, true];
            if let Some(metrics) = &policy.pause_on_pending {
                pause_on_pending = [false; 4];
                for metric in metrics {
                    pause_on_pending[metric.index()] = true;
                }
            }
            if policy.escalations.len() > ESCALATIONS_PER_POLICY_MAX {
                return Err(error(
                    format!("{path}.escalations"),
                    format!("at most {ESCALATIONS_PER_POLICY_MAX} rules"),
                ));
            }
            let mut escalations: Vec<Escalation> = Vec::new();
            for (e, escalation) in policy.escalations.iter().enumerate() {
                let path = format!("{path}.escalations[{e}]");
                if !is_identifier(&escalation.rule) {
                    return Err(error(
                        format!("{path}.rule"),
                        format!(
                            "{:?}: lowercase letters, digits, `_` and `-`",
                            escalation.rule
                        ),
                    ));
                }
                if escalations
                    .iter()
                    .any(|other| other.rule == escalation.rule)
                {
                    return Err(error(
                        format!("{path}.rule"),
                        format!("{:?} is defined twice", escalation.rule),
                    ));
                }
                let mut actions = Vec::new();
                if let Some(priority) = escalation.raise_priority {
                    actions.push(EscalationAction::RaisePriority { priority });
                }
                if let Some(team) = escalation.reassign_team {
                    actions.push(EscalationAction::ReassignTeam { team });
                }
                if let Some(agent) = escalation.add_collaborator {
                    actions.push(EscalationAction::AddCollaborator { agent });
                }
                if let Some(agents) = &escalation.notify {
                    if agents.len() > domain::limits::ESCALATION_NOTIFY_MAX {
                        return Err(error(
                            format!("{path}.notify"),
                            format!("at most {} agents", domain::limits::ESCALATION_NOTIFY_MAX),
                        ));
                    }
                    actions.push(EscalationAction::Notify {
                        agents: agents.clone(),
                    });
                }
                if actions.is_empty() {
                    return Err(error(
                        path,
                        "an escalation needs an action: raise_priority, reassign_team, add_collaborator or notify",
                    ));
                }
                escalations.push(Escalation {
                    rule: escalation.rule.clone(),
                    on: escalation.on,
                    metrics: escalation.metrics.clone(),
                    actions,
                });
            }
            policies.push(Policy {
                id: policy.id.clone(),
                calendar_name: policy.calendar.clone(),
                calendar,
                when: policy.when.clone(),
                targets,
                pause_on_pending,
                warning: policy.warning,
                escalations,
            });
        }
        Ok(Policies {
            version: config.version,
            policies,
        })
    }

    /// The first policy whose conditions hold.
    pub fn choose(&self, facts: &Facts<'_>) -> Option<usize> {
        self.policies
            .iter()
            .position(|policy| policy.matches(facts))
    }

    pub fn by_id(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|policy| policy.id == id)
    }
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= domain::limits::IDENTIFIER_BYTES_MAX / 2
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn compile_calendar(config: &CalendarConfig) -> Result<BusinessCalendar, CalendarError> {
    let day = |intervals: &[IntervalConfig]| -> Vec<(Time, Time)> {
        intervals
            .iter()
            .map(|interval| (interval.0, interval.1))
            .collect()
    };
    let week = [
        day(&config.monday),
        day(&config.tuesday),
        day(&config.wednesday),
        day(&config.thursday),
        day(&config.friday),
        day(&config.saturday),
        day(&config.sunday),
    ];
    let mut dates = Vec::new();
    let mut yearly = Vec::new();
    for holiday in &config.holidays {
        match *holiday {
            HolidayConfig::Yearly(month, day) => yearly.push((month, day)),
            HolidayConfig::Dates(first, last) => {
                let mut date = first;
                while date <= last {
                    dates.push(date);
                    if dates.len() > domain::calendar::HOLIDAYS_MAX {
                        return Err(CalendarError::TooManyHolidays {
                            max: domain::calendar::HOLIDAYS_MAX,
                        });
                    }
                    let Ok(next) = date.tomorrow() else { break };
                    date = next;
                }
            }
        }
    }
    BusinessCalendar::new(&config.time_zone, week, dates, yearly)
}
