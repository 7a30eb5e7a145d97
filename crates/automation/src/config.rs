//! The `[automation]` section of `docket.toml`, as written (`AutomationSection`, deserialized
//! with spans) and compiled (`Automation`). Compilation checks everything serde cannot: ids,
//! event type names, tags, templates, regular expressions, macro references, business hours.
//! An error carries the byte span of the offending value and its dotted key, so the binary can
//! print `docket.toml:12: automation.triggers[1].actions[0].apply_macro: …`.

use std::collections::BTreeSet;
use std::ops::Range;

use domain::calendar::BusinessCalendar;
use domain::{AgentId, Channel, FieldValue, Priority, StateCategory, TeamId};
use jiff::civil::{Date, Time};
use regex_automata::meta::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::macros::{Macro, Macros, MACROS_MAX};
use crate::template::Template;
use crate::timed::{TimedConfig, TimedRules};
use crate::trigger::{
    Action, Condition, Trigger, TriggerSet, ACTIONS_MAX, CONDITIONS_MAX, PATTERN_BYTES_MAX,
    TRIGGERS_MAX,
};

/// Longest trigger or macro id, in bytes.
pub const ID_BYTES_MAX: usize = 64;

/// `[automation]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationSection {
    /// When "business hours" is true; without it, always.
    #[serde(default)]
    pub business_hours: Option<BusinessHoursConfig>,
    #[serde(default)]
    pub triggers: Vec<TriggerConfig>,
    #[serde(default)]
    pub macros: Vec<MacroConfig>,
    #[serde(default)]
    pub timed: Option<Spanned<TimedConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    /// An IANA time zone such as `Asia/Shanghai`.
    pub zone: Spanned<String>,
    /// `"09:00-12:00"`-style intervals per weekday.
    #[serde(default)]
    pub monday: Vec<Spanned<String>>,
    #[serde(default)]
    pub tuesday: Vec<Spanned<String>>,
    #[serde(default)]
    pub wednesday: Vec<Spanned<String>>,
    #[serde(default)]
    pub thursday: Vec<Spanned<String>>,
    #[serde(default)]
    pub friday: Vec<Spanned<String>>,
    #[serde(default)]
    pub saturday: Vec<Spanned<String>>,
    #[serde(default)]
    pub sunday: Vec<Spanned<String>>,
    /// Dates such as `"2026-10-01"`.
    #[serde(default)]
    pub holidays: Vec<Spanned<String>>,
}

/// One `[[automation.triggers]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    pub id: Spanned<String>,
    /// Event types, e.g. `["TicketCreated", "CustomerMessageReceived"]`.
    pub on: Spanned<Vec<Spanned<String>>>,
    /// Every one must hold.
    #[serde(default)]
    pub all: Vec<Spanned<ConditionConfig>>,
    /// When given, at least one must hold.
    #[serde(default)]
    pub any: Vec<Spanned<ConditionConfig>>,
    pub actions: Spanned<Vec<Spanned<ActionConfig>>>,
}

/// A condition as written: a one-key inline table such as `{ priority_at_least = "high" }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ConditionConfig {
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
    Field(FieldConditionConfig),
    TextContains(String),
    TextMatches(String),
    CustomerTier(String),
    BusinessHours(bool),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConditionConfig {
    pub name: String,
    pub equals: FieldValue,
}

/// An action as written: a one-key inline table such as `{ add_tags = ["vip"] }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionConfig {
    SetPriority(Priority),
    AssignTeam(TeamId),
    AssignAgent(AgentId),
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
    AddNote(String),
    Transition(String),
    ApplyMacro(String),
    SendWebhook(String),
}

/// One `[[automation.macros]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacroConfig {
    pub id: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub reply: Option<Spanned<String>>,
    #[serde(default)]
    pub note: Option<Spanned<String>>,
    #[serde(default)]
    pub add_tags: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub remove_tags: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub transition: Option<Spanned<String>>,
}

/// A configuration error: where (byte span in the file, when known), which key, and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub span: Option<Range<usize>>,
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn at<T>(spanned: &Spanned<T>, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            span: Some(spanned.span()),
            key: key.into(),
            message: message.into(),
        }
    }

    /// `file:line: key: message`, the line counted in `text`.
    pub fn display_in(&self, file: &str, text: &str) -> String {
        match &self.span {
            Some(span) => {
                let start = span.start.min(text.len());
                let line = text[..start].matches('\n').count() + 1;
                format!("{file}:{line}: {self}")
            }
            None => format!("{file}: {self}"),
        }
    }
}

/// The compiled section: what the process manager, the API and the scheduler use.
#[derive(Debug, Default)]
pub struct Automation {
    pub triggers: TriggerSet,
    pub macros: Macros,
    pub timed: TimedRules,
}

impl AutomationSection {
    pub fn compile(&self) -> Result<Automation, ConfigError> {
        let calendar = match &self.business_hours {
            Some(hours) => compile_calendar(hours)?,
            None => BusinessCalendar::always_open(),
        };
        if self.macros.len() > MACROS_MAX {
            return Err(ConfigError {
                span: None,
                key: "automation.macros".to_owned(),
                message: format!("at most {MACROS_MAX} macros"),
            });
        }
        let mut macros = Vec::new();
        let mut macro_ids = BTreeSet::new();
        for (index, config) in self.macros.iter().enumerate() {
            let key = format!("automation.macros[{index}]");
            let compiled = compile_macro(config, &key)?;
            if !macro_ids.insert(compiled.id.clone()) {
                return Err(ConfigError::at(
                    &config.id,
                    format!("{key}.id"),
                    format!("macro id {:?} is used twice", compiled.id),
                ));
            }
            macros.push(compiled);
        }
        if self.triggers.len() > TRIGGERS_MAX {
            return Err(ConfigError {
                span: None,
                key: "automation.triggers".to_owned(),
                message: format!("at most {TRIGGERS_MAX} triggers"),
            });
        }
        let mut triggers = Vec::new();
        let mut needles = Vec::new();
        let mut trigger_ids = BTreeSet::new();
        for (index, config) in self.triggers.iter().enumerate() {
            let key = format!("automation.triggers[{index}]");
            let trigger = compile_trigger(config, &key, &macro_ids, &mut needles)?;
            if !trigger_ids.insert(trigger.id.clone()) {
                return Err(ConfigError::at(
                    &config.id,
                    format!("{key}.id"),
                    format!("trigger id {:?} is used twice", trigger.id),
                ));
            }
            triggers.push(trigger);
        }
        let timed = match &self.timed {
            Some(timed) => TimedRules::compile(timed)?,
            None => TimedRules::default(),
        };
        Ok(Automation {
            triggers: TriggerSet::new(triggers, needles, calendar),
            macros: Macros::new(macros),
            timed,
        })
    }
}

fn check_id(id: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
    let text = id.get_ref();
    let well_formed = !text.is_empty()
        && text.len() <= ID_BYTES_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !well_formed {
        return Err(ConfigError::at(
            id,
            key,
            format!("{text:?} must be 1 to {ID_BYTES_MAX} of a-z, 0-9, `_` and `-`"),
        ));
    }
    Ok(text.clone())
}

/// Tags follow the domain's rules: no whitespace, at most `TAG_BYTES_MAX` bytes.
fn check_tags<T>(tags: &[String], spanned: &Spanned<T>, key: &str) -> Result<(), ConfigError> {
    for tag in tags {
        let bad = tag.is_empty()
            || tag.len() > domain::limits::TAG_BYTES_MAX
            || tag.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad {
            return Err(ConfigError::at(
                spanned,
                key,
                format!(
                    "tag {tag:?} must be 1 to {} bytes without whitespace",
                    domain::limits::TAG_BYTES_MAX
                ),
            ));
        }
    }
    if tags.len() > domain::limits::TAGS_PER_TICKET_MAX {
        return Err(ConfigError::at(
            spanned,
            key,
            format!("at most {} tags", domain::limits::TAGS_PER_TICKET_MAX),
        ));
    }
    Ok(())
}

fn compile_template(text: &Spanned<String>, key: &str) -> Result<Template, ConfigError> {
    Template::parse(text.get_ref()).map_err(|error| ConfigError::at(text, key, error.to_string()))
}

fn compile_macro(config: &MacroConfig, key: &str) -> Result<Macro, ConfigError> {
    let id = check_id(&config.id, &format!("{key}.id"))?;
    let reply = config
        .reply
        .as_ref()
        .map(|text| compile_template(text, &format!("{key}.reply")))
        .transpose()?;
    let note = config
        .note
        .as_ref()
        .map(|text| compile_template(text, &format!("{key}.note")))
        .transpose()?;
    let mut tag_lists = Vec::new();
    for (name, tags) in [
        ("add_tags", &config.add_tags),
        ("remove_tags", &config.remove_tags),
    ] {
        let list = match tags {
            Some(tags) => {
                check_tags(tags.get_ref(), tags, &format!("{key}.{name}"))?;
                tags.get_ref().clone()
            }
            None => Vec::new(),
        };
        tag_lists.push(list);
    }
    let remove_tags = tag_lists.pop().unwrap_or_default();
    let add_tags = tag_lists.pop().unwrap_or_default();
    let transition = config.transition.as_ref().map(|t| t.get_ref().clone());
    let compiled = Macro {
        id,
        title: config.title.clone(),
        reply,
        note,
        add_tags,
        remove_tags,
        priority: config.priority,
        transition,
    };
    let does_nothing = compiled.reply.is_none()
        && compiled.note.is_none()
        && compiled.add_tags.is_empty()
        && compiled.remove_tags.is_empty()
        && compiled.priority.is_none()
        && compiled.transition.is_none();
    if does_nothing {
        return Err(ConfigError::at(
            &config.id,
            key,
            "a macro needs at least one of reply, note, add_tags, remove_tags, priority, transition",
        ));
    }
    Ok(compiled)
}

fn compile_trigger(
    config: &TriggerConfig,
    key: &str,
    macro_ids: &BTreeSet<String>,
    needles: &mut Vec<String>,
) -> Result<Trigger, ConfigError> {
    let id = check_id(&config.id, &format!("{key}.id"))?;
    let mut on = Vec::new();
    if config.on.get_ref().is_empty() {
        return Err(ConfigError::at(
            &config.on,
            format!("{key}.on"),
            "name at least one event type",
        ));
    }
    for event_type in config.on.get_ref() {
        let name = event_type.get_ref();
        if !domain::EVENT_TYPES.iter().any(|(known, _)| known == name) {
            let known: Vec<&str> = domain::EVENT_TYPES.iter().map(|(name, _)| *name).collect();
            return Err(ConfigError::at(
                event_type,
                format!("{key}.on"),
                format!("unknown event type {name:?}; known: {}", known.join(", ")),
            ));
        }
        if !on.contains(name) {
            on.push(name.clone());
        }
    }
    if config.all.len() + config.any.len() > CONDITIONS_MAX {
        return Err(ConfigError::at(
            &config.id,
            key,
            format!("at most {CONDITIONS_MAX} conditions"),
        ));
    }
    let mut compile_all = |list: &[Spanned<ConditionConfig>], name: &str| {
        list.iter()
            .enumerate()
            .map(|(index, condition)| {
                compile_condition(condition, &format!("{key}.{name}[{index}]"), needles)
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let all = compile_all(&config.all, "all")?;
    let any = compile_all(&config.any, "any")?;
    let actions_written = config.actions.get_ref();
    if actions_written.is_empty() || actions_written.len() > ACTIONS_MAX {
        return Err(ConfigError::at(
            &config.actions,
            format!("{key}.actions"),
            format!("1 to {ACTIONS_MAX} actions"),
        ));
    }
    let mut actions = Vec::new();
    for (index, action) in actions_written.iter().enumerate() {
        let action_key = format!("{key}.actions[{index}]");
        actions.push(compile_action(action, &action_key, macro_ids)?);
    }
    Ok(Trigger {
        id,
        on,
        all,
        any,
        actions,
    })
}

fn compile_condition(
    condition: &Spanned<ConditionConfig>,
    key: &str,
    needles: &mut Vec<String>,
) -> Result<Condition, ConfigError> {
    let pattern_length = |text: &str, name: &str| {
        if text.is_empty() || text.len() > PATTERN_BYTES_MAX {
            return Err(ConfigError::at(
                condition,
                format!("{key}.{name}"),
                format!("must be 1 to {PATTERN_BYTES_MAX} bytes"),
            ));
        }
        Ok(())
    };
    Ok(match condition.get_ref() {
        ConditionConfig::Priority(priority) => Condition::Priority(*priority),
        ConditionConfig::PriorityAtLeast(priority) => Condition::PriorityAtLeast(*priority),
        ConditionConfig::Channel(channel) => Condition::Channel(*channel),
        ConditionConfig::TicketType(ticket_type) => Condition::TicketType(ticket_type.clone()),
        ConditionConfig::State(state) => Condition::State(state.clone()),
        ConditionConfig::Category(category) => Condition::Category(*category),
        ConditionConfig::HasTag(tag) => Condition::HasTag(tag.clone()),
        ConditionConfig::LacksTag(tag) => Condition::LacksTag(tag.clone()),
        ConditionConfig::Team(team) => Condition::Team(*team),
        ConditionConfig::Assignee(agent) => Condition::Assignee(*agent),
        ConditionConfig::Assigned(assigned) => Condition::Assigned(*assigned),
        ConditionConfig::Field(field) => Condition::Field {
            name: field.name.clone(),
            equals: field.equals.clone(),
        },
        ConditionConfig::TextContains(needle) => {
            pattern_length(needle, "text_contains")?;
            let needle = needle.to_lowercase();
            let index = match needles.iter().position(|known| *known == needle) {
                Some(index) => index,
                None => {
                    needles.push(needle.clone());
                    needles.len() - 1
                }
            };
            Condition::TextContains { needle, index }
        }
        ConditionConfig::TextMatches(pattern) => {
            pattern_length(pattern, "text_matches")?;
            let regex = Regex::builder()
                .configure(Regex::config().nfa_size_limit(Some(1 << 20)))
                .build(pattern)
                .map_err(|error| {
                    // The syntax error says what and where; its text spans lines, keep one.
                    let detail = match error.syntax_error() {
                        Some(syntax) => syntax
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                        None => error.to_string(),
                    };
                    ConfigError::at(
                        condition,
                        format!("{key}.text_matches"),
                        format!("{pattern:?} is not a regular expression: {detail}"),
                    )
                })?;
            Condition::TextMatches(Box::new(regex), pattern.clone())
        }
        ConditionConfig::CustomerTier(tier) => Condition::CustomerTier(tier.clone()),
        ConditionConfig::BusinessHours(open) => Condition::BusinessHours(*open),
    })
}

fn compile_action(
    action: &Spanned<ActionConfig>,
    key: &str,
    macro_ids: &BTreeSet<String>,
) -> Result<Action, ConfigError> {
    Ok(match action.get_ref() {
        ActionConfig::SetPriority(priority) => Action::SetPriority(*priority),
        ActionConfig::AssignTeam(team) => Action::AssignTeam(*team),
        ActionConfig::AssignAgent(agent) => Action::AssignAgent(*agent),
        ActionConfig::AddTags(tags) => {
            check_tags(tags, action, &format!("{key}.add_tags"))?;
            Action::AddTags(tags.clone())
        }
        ActionConfig::RemoveTags(tags) => {
            check_tags(tags, action, &format!("{key}.remove_tags"))?;
            Action::RemoveTags(tags.clone())
        }
        ActionConfig::AddNote(text) => Action::AddNote(Template::parse(text).map_err(|error| {
            ConfigError::at(action, format!("{key}.add_note"), error.to_string())
        })?),
        ActionConfig::Transition(transition) => Action::Transition(transition.clone()),
        ActionConfig::ApplyMacro(id) => {
            if !macro_ids.contains(id) {
                let known: Vec<&str> = macro_ids.iter().map(String::as_str).collect();
                return Err(ConfigError::at(
                    action,
                    format!("{key}.apply_macro"),
                    format!(
                        "no macro {id:?}; known: {}",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
            Action::ApplyMacro(id.clone())
        }
        ActionConfig::SendWebhook(name) => Action::SendWebhook(name.clone()),
    })
}

fn compile_calendar(hours: &BusinessHoursConfig) -> Result<BusinessCalendar, ConfigError> {
    let key = "automation.business_hours";
    let days = [
        ("monday", &hours.monday),
        ("tuesday", &hours.tuesday),
        ("wednesday", &hours.wednesday),
        ("thursday", &hours.thursday),
        ("friday", &hours.friday),
        ("saturday", &hours.saturday),
        ("sunday", &hours.sunday),
    ];
    let mut week: [Vec<(Time, Time)>; 7] = Default::default();
    for (day, (name, intervals)) in days.iter().enumerate() {
        for interval in intervals.iter() {
            let parsed = interval.get_ref().split_once('-').and_then(|(start, end)| {
                Some((start.trim().parse().ok()?, end.trim().parse().ok()?))
            });
            let Some((start, end)) = parsed else {
                return Err(ConfigError::at(
                    interval,
                    format!("{key}.{name}"),
                    format!(
                        "{:?} is not an interval like \"09:00-18:00\"",
                        interval.get_ref()
                    ),
                ));
            };
            week[day].push((start, end));
        }
    }
    let mut holidays = Vec::new();
    for holiday in &hours.holidays {
        let date: Date = holiday.get_ref().parse().map_err(|_| {
            ConfigError::at(
                holiday,
                format!("{key}.holidays"),
                format!("{:?} is not a date like \"2026-10-01\"", holiday.get_ref()),
            )
        })?;
        holidays.push(date);
    }
    BusinessCalendar::new(hours.zone.get_ref(), week, holidays, [])
        .map_err(|error| ConfigError::at(&hours.zone, key, error.to_string()))
}
