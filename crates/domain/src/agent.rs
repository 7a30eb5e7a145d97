//! The agent aggregate: who an agent is to routing (skills, languages, capacity, team
//! memberships) and whether they can take work now (presence). Event-sourced in the
//! `agent-{id}` stream with the same shape as tickets: `decide_agent(&AgentCommand, &Agent,
//! &CommandContext) -> Result<Vec<AgentEvent>, Rejection>` and `evolve_agent(Agent, &AgentEvent)`.
//!
//! `AgentRegistered` keeps the payload the API's directory wrote before agents moved here, so
//! every registration already in a log still reads.

use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::context::{CommandContext, Role};
use crate::ids::{AgentId, TeamId};
use crate::limits::{EMAIL_BYTES_MAX, REASON_BYTES_MAX};
use crate::rejection::{InputProblem, Rejection};

/// An agent's display name: the directory's 200 characters, at up to 4 bytes each.
pub const AGENT_NAME_BYTES_MAX: usize = 800;
/// Teams one agent belongs to.
pub const AGENT_TEAMS_MAX: usize = 50;
/// Skills one agent has.
pub const AGENT_SKILLS_MAX: usize = 32;
/// Languages one agent speaks.
pub const AGENT_LANGUAGES_MAX: usize = 16;
/// One skill or language code.
pub const SKILL_BYTES_MAX: usize = 64;
/// The highest capacity (concurrent open tickets, or weight units when weighted).
pub const CAPACITY_MAX: u32 = 1_000;
/// The capacity of an agent registered without one.
pub const CAPACITY_DEFAULT: u32 = 20;

/// Whether an agent can take work. Only `Online` agents are routed to.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Away,
    /// Where a newly registered agent starts: nobody is routed work before they sign in.
    #[default]
    Offline,
    Vacation,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Offline => "offline",
            Presence::Vacation => "vacation",
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What routing knows of an agent besides presence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentProfile {
    pub teams: Vec<TeamId>,
    /// Lowercase skill names such as `billing`; a ticket's required skills must all be here.
    pub skills: Vec<String>,
    /// Lowercase ISO 639-1 codes such as `zh`, `en`.
    pub languages: Vec<String>,
    /// Most concurrent open tickets (or weight units, when `weighted`).
    pub capacity: u32,
    /// Whether each ticket counts its priority weight (low 1, normal 2, high 3, urgent 5)
    /// against the capacity instead of 1.
    pub weighted: bool,
}

/// Personal data of an agent: lives under `pii` like a customer's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPii {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// Everything one can ask of an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentCommand {
    RegisterAgent(RegisterAgent),
    UpdateAgent(UpdateAgent),
    ChangePresence(ChangePresence),
}

impl AgentCommand {
    pub fn name(&self) -> &'static str {
        match self {
            AgentCommand::RegisterAgent(_) => "register_agent",
            AgentCommand::UpdateAgent(_) => "update_agent",
            AgentCommand::ChangePresence(_) => "change_presence",
        }
    }
}

/// Registers an agent; the shell allocates the id. Skills, languages and capacity default to
/// none, none and `CAPACITY_DEFAULT` unweighted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    pub agent_id: AgentId,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub teams: Vec<TeamId>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub weighted: bool,
}

/// Changes what routing knows of an agent; fields left out keep their value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    #[serde(default)]
    pub teams: Option<Vec<TeamId>>,
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub weighted: Option<bool>,
}

/// An agent (for themselves), a supervisor or an admin changes presence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePresence {
    pub presence: Presence,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Every fact an agent stream can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentEvent {
    AgentRegistered(AgentRegistered),
    AgentProfileUpdated(AgentProfileUpdated),
    AgentPresenceChanged(AgentPresenceChanged),
}

/// Every agent event type with its schema version.
pub const AGENT_EVENT_TYPES: &[(&str, u32)] = &[
    ("AgentRegistered", 1),
    ("AgentProfileUpdated", 1),
    ("AgentPresenceChanged", 1),
];

/// The agent stream category (`agent-{id}`).
pub const AGENT_CATEGORY: &str = "agent";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRegistered {
    pub agent_id: AgentId,
    pub teams: Vec<TeamId>,
    pub pii: AgentPii,
}

/// The whole profile after the change, so a reader needs no earlier event to know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentProfileUpdated {
    pub teams: Vec<TeamId>,
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    pub capacity: u32,
    pub weighted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPresenceChanged {
    pub from: Presence,
    pub to: Presence,
    /// Why, written for auditors by the agent or a supervisor; no personal data.
    pub reason: Option<String>,
}

impl AgentEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            AgentEvent::AgentRegistered(_) => "AgentRegistered",
            AgentEvent::AgentProfileUpdated(_) => "AgentProfileUpdated",
            AgentEvent::AgentPresenceChanged(_) => "AgentPresenceChanged",
        }
    }

    pub fn schema_version(&self) -> u32 {
        1
    }

    /// The payload as stored: the variant's fields, without a type tag.
    pub fn to_payload(&self) -> serde_json::Value {
        let value = match self {
            AgentEvent::AgentRegistered(event) => serde_json::to_value(event),
            AgentEvent::AgentProfileUpdated(event) => serde_json::to_value(event),
            AgentEvent::AgentPresenceChanged(event) => serde_json::to_value(event),
        };
        value.expect("agent events serialize")
    }

    /// Decodes a stored agent event; `None` for a type or version this build does not know.
    pub fn from_stored(
        event_type: &str,
        schema_version: u32,
        payload: &str,
    ) -> Option<Result<AgentEvent, serde_json::Error>> {
        if schema_version != 1 {
            return None;
        }
        Some(match event_type {
            "AgentRegistered" => serde_json::from_str(payload).map(AgentEvent::AgentRegistered),
            "AgentProfileUpdated" => {
                serde_json::from_str(payload).map(AgentEvent::AgentProfileUpdated)
            }
            "AgentPresenceChanged" => {
                serde_json::from_str(payload).map(AgentEvent::AgentPresenceChanged)
            }
            _ => return None,
        })
    }
}

/// An agent as its stream has it so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Agent {
    /// Events folded so far: the stream version, for expected-version appends.
    pub version: u64,
    pub details: Option<AgentDetails>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentDetails {
    pub agent_id: AgentId,
    pub name: String,
    pub email: Option<String>,
    pub profile: AgentProfile,
    pub presence: Presence,
}

impl Agent {
    pub fn initial() -> Agent {
        Agent::default()
    }
}

/// Folds one agent event.
pub fn evolve_agent(mut agent: Agent, event: &AgentEvent) -> Agent {
    agent.version += 1;
    match event {
        AgentEvent::AgentRegistered(registered) => {
            agent.details = Some(AgentDetails {
                agent_id: registered.agent_id,
                name: registered.pii.name.clone(),
                email: registered.pii.email.clone(),
                profile: AgentProfile {
                    teams: registered.teams.clone(),
                    skills: vec![],
                    languages: vec![],
                    capacity: CAPACITY_DEFAULT,
                    weighted: false,
                },
                presence: Presence::Offline,
            });
        }
        AgentEvent::AgentProfileUpdated(updated) => {
            if let Some(details) = &mut agent.details {
                details.profile = AgentProfile {
                    teams: updated.teams.clone(),
                    skills: updated.skills.clone(),
                    languages: updated.languages.clone(),
                    capacity: updated.capacity,
                    weighted: updated.weighted,
                };
            }
        }
        AgentEvent::AgentPresenceChanged(changed) => {
            if let Some(details) = &mut agent.details {
                details.presence = changed.to;
            }
        }
    }
    agent
}

fn invalid(field: &str, problem: InputProblem) -> Rejection {
    Rejection::InvalidInput {
        field: field.to_owned(),
        problem,
    }
}

fn check_text(field: &str, value: &str, max_bytes: usize) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(invalid(field, InputProblem::Empty));
    }
    if value.len() > max_bytes {
        return Err(invalid(field, InputProblem::TooLong { max_bytes }));
    }
    Ok(())
}

/// Skills and languages: lowercase words of letters, digits, `_` and `-`, kept sorted and
/// unique so that equal profiles compare equal.
fn check_words(field: &str, words: &[String], max: usize) -> Result<Vec<String>, Rejection> {
    if words.len() > max {
        return Err(invalid(field, InputProblem::TooMany { max }));
    }
    let mut set = BTreeSet::new();
    for word in words {
        if word.is_empty() || word.len() > SKILL_BYTES_MAX {
            return Err(invalid(
                field,
                InputProblem::TooLong {
                    max_bytes: SKILL_BYTES_MAX,
                },
            ));
        }
        let well_formed = word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !well_formed {
            return Err(invalid(
                field,
                InputProblem::Malformed {
                    expected: "lowercase ascii letters, digits, `_` and `-`".to_owned(),
                },
            ));
        }
        if !set.insert(word.clone()) {
            return Err(invalid(
                field,
                InputProblem::Duplicate {
                    value: word.clone(),
                },
            ));
        }
    }
    Ok(set.into_iter().collect())
}

fn check_teams(teams: &[TeamId]) -> Result<Vec<TeamId>, Rejection> {
    if teams.len() > AGENT_TEAMS_MAX {
        return Err(invalid(
            "teams",
            InputProblem::TooMany {
                max: AGENT_TEAMS_MAX,
            },
        ));
    }
    let mut seen = BTreeSet::new();
    for team in teams {
        if !seen.insert(*team) {
            return Err(invalid(
                "teams",
                InputProblem::Duplicate {
                    value: team.to_string(),
                },
            ));
        }
    }
    Ok(teams.to_vec())
}

fn check_capacity(capacity: u32) -> Result<u32, Rejection> {
    if capacity > CAPACITY_MAX {
        return Err(invalid(
            "capacity",
            InputProblem::OutOfRange {
                min: 0,
                max: u64::from(CAPACITY_MAX),
            },
        ));
    }
    Ok(capacity)
}

/// Which roles may issue an agent command. Agents change only their own presence (checked in
/// `decide_agent`); the system changes presence for automations (idle sign-out).
pub fn agent_command_roles(command: &AgentCommand) -> &'static [Role] {
    match command {
        AgentCommand::RegisterAgent(_) | AgentCommand::UpdateAgent(_) => {
            &[Role::Admin, Role::Supervisor]
        }
        AgentCommand::ChangePresence(_) => {
            &[Role::Agent, Role::Supervisor, Role::Admin, Role::System]
        }
    }
}

/// Decides what an agent command does. Changes that change nothing are no events.
pub fn decide_agent(
    command: &AgentCommand,
    agent: &Agent,
    ctx: &CommandContext<'_>,
) -> Result<Vec<AgentEvent>, Rejection> {
    let role = ctx.actor.role;
    if !agent_command_roles(command).contains(&role) {
        return Err(Rejection::RoleNotAllowed {
            command: command.name().to_owned(),
            role,
        });
    }
    match command {
        AgentCommand::RegisterAgent(register) => {
            if agent.details.is_some() {
                return Err(Rejection::AgentAlreadyRegistered);
            }
            check_text("name", &register.name, AGENT_NAME_BYTES_MAX)?;
            if let Some(email) = &register.email {
                check_text("email", email, EMAIL_BYTES_MAX)?;
            }
            let teams = check_teams(&register.teams)?;
            let skills = check_words("skills", &register.skills, AGENT_SKILLS_MAX)?;
            let languages = check_words("languages", &register.languages, AGENT_LANGUAGES_MAX)?;
            let capacity = check_capacity(register.capacity.unwrap_or(CAPACITY_DEFAULT))?;
            let mut events = vec![AgentEvent::AgentRegistered(AgentRegistered {
                agent_id: register.agent_id,
                teams: teams.clone(),
                pii: AgentPii {
                    name: register.name.clone(),
                    email: register.email.clone(),
                },
            })];
            let profile = AgentProfileUpdated {
                teams,
                skills,
                languages,
                capacity,
                weighted: register.weighted,
            };
            let plain = profile.skills.is_empty()
                && profile.languages.is_empty()
                && profile.capacity == CAPACITY_DEFAULT
                && !profile.weighted;
            if !plain {
                events.push(AgentEvent::AgentProfileUpdated(profile));
            }
            Ok(events)
        }
        AgentCommand::UpdateAgent(update) => {
            let details = agent.details.as_ref().ok_or(Rejection::AgentNotFound)?;
            let current = &details.profile;
            let profile = AgentProfileUpdated {
                teams: match &update.teams {
                    Some(teams) => check_teams(teams)?,
                    None => current.teams.clone(),
                },
                skills: match &update.skills {
                    Some(skills) => check_words("skills", skills, AGENT_SKILLS_MAX)?,
                    None => current.skills.clone(),
                },
                languages: match &update.languages {
                    Some(languages) => check_words("languages", languages, AGENT_LANGUAGES_MAX)?,
                    None => current.languages.clone(),
                },
                capacity: check_capacity(update.capacity.unwrap_or(current.capacity))?,
                weighted: update.weighted.unwrap_or(current.weighted),
            };
            let unchanged = profile.teams == current.teams
                && profile.skills == current.skills
                && profile.languages == current.languages
                && profile.capacity == current.capacity
                && profile.weighted == current.weighted;
            if unchanged {
                return Ok(vec![]);
            }
            Ok(vec![AgentEvent::AgentProfileUpdated(profile)])
        }
        AgentCommand::ChangePresence(change) => {
            let details = agent.details.as_ref().ok_or(Rejection::AgentNotFound)?;
            if role == Role::Agent && ctx.actor.id.as_agent() != details.agent_id {
                return Err(Rejection::NotOwnPresence);
            }
            if let Some(reason) = &change.reason {
                check_text("reason", reason, REASON_BYTES_MAX)?;
            }
            if change.presence == details.presence {
                return Ok(vec![]);
            }
            Ok(vec![AgentEvent::AgentPresenceChanged(
                AgentPresenceChanged {
                    from: details.presence,
                    to: change.presence,
                    reason: change.reason.clone(),
                },
            )])
        }
    }
}
