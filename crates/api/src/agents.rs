//! Agent endpoints: register an agent, change their profile (teams, skills, languages,
//! capacity) and their presence. Each is a command on the domain's agent aggregate, decided on
//! the directory's fold of the agent stream and appended with that stream version, so two
//! concurrent changes never overwrite each other silently. Admins and supervisors manage
//! agents; an agent changes their own presence.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use domain::{
    ActorId, AgentCommand, AgentId, ChangePresence, CommandContext, Presence, RegisterAgent,
    TeamId, UpdateAgent,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{AppendError, ExpectedVersion, NewEvent, StreamId};
use uuid::Uuid;

use crate::auth::Principal;
use crate::body::JsonBody;
use crate::directory::{ApiRole, NAME_CHARS_MAX};
use crate::error::ApiError;
use crate::AppState;

const MANAGERS: &[ApiRole] = &[ApiRole::Admin, ApiRole::Supervisor];

/// How often a change is decided again after another node changed the agent first.
const AGENT_COMMAND_ATTEMPTS_MAX: usize = 5;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub teams: Vec<Uuid>,
    /// Lowercase skill names, e.g. `billing`.
    #[serde(default)]
    pub skills: Vec<String>,
    /// ISO 639-1 codes, e.g. `zh`, `en`.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Most concurrent open tickets (weight units when `weighted`); 20 when left out.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Count each ticket's priority weight (low 1, normal 2, high 3, urgent 5) against the
    /// capacity instead of 1.
    #[serde(default)]
    pub weighted: bool,
}

/// Fields left out keep their value.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentChanges {
    #[serde(default)]
    pub teams: Option<Vec<Uuid>>,
    #[serde(default)]
    pub skills: Option<Vec<String>>,
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    #[serde(default)]
    pub capacity: Option<u32>,
    #[serde(default)]
    pub weighted: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceChange {
    pub presence: Presence,
    /// Why, for the audit trail (no personal data).
    #[serde(default)]
    pub reason: Option<String>,
}

fn check_teams(state: &AppState, teams: &[Uuid]) -> Result<Vec<TeamId>, ApiError> {
    let directory = state.directory();
    if let Some(team) = teams
        .iter()
        .find(|team| !directory.teams.contains_key(team))
    {
        return Err(ApiError::Unprocessable(format!("teams: no team {team}")));
    }
    Ok(teams.iter().copied().map(TeamId).collect())
}

fn parse_agent_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound(format!("no agent {text:?}")))
}

/// `POST /v1/admin/agents`.
pub async fn create_agent(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<NewAgent>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require(MANAGERS)?;
    let agent = body.value;
    // The directory's older, stricter limit on display names, in characters.
    let chars = agent.name.trim().chars().count();
    if chars == 0 || chars > NAME_CHARS_MAX {
        return Err(ApiError::Unprocessable(format!(
            "name must be 1 to {NAME_CHARS_MAX} characters"
        )));
    }
    let teams = check_teams(&state, &agent.teams)?;
    let agent_id = Uuid::now_v7();
    let command = AgentCommand::RegisterAgent(RegisterAgent {
        agent_id: AgentId(agent_id),
        name: agent.name,
        email: agent.email,
        teams,
        skills: agent.skills,
        languages: agent.languages,
        capacity: agent.capacity,
        weighted: agent.weighted,
    });
    let view = execute(&state, &principal, &HeaderMap::new(), agent_id, &command).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `POST /v1/admin/agents/{agent_id}`: changes the profile.
pub async fn update_agent(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(agent_id): Path<String>,
    body: JsonBody<AgentChanges>,
) -> Result<Json<Value>, ApiError> {
    principal.require(MANAGERS)?;
    let agent_id = parse_agent_id(&agent_id)?;
    let changes = body.value;
    let teams = match &changes.teams {
        Some(teams) => Some(check_teams(&state, teams)?),
        None => None,
    };
    let command = AgentCommand::UpdateAgent(UpdateAgent {
        teams,
        skills: changes.skills,
        languages: changes.languages,
        capacity: changes.capacity,
        weighted: changes.weighted,
    });
    Ok(Json(
        execute(&state, &principal, &headers, agent_id, &command).await?,
    ))
}

/// `PUT /v1/agents/{agent_id}/presence`: an agent for themselves, or a supervisor or admin.
pub async fn change_presence(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(agent_id): Path<String>,
    body: JsonBody<PresenceChange>,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[ApiRole::Admin, ApiRole::Supervisor, ApiRole::Agent])?;
    let agent_id = parse_agent_id(&agent_id)?;
    let command = AgentCommand::ChangePresence(ChangePresence {
        presence: body.value.presence,
        reason: body.value.reason,
    });
    Ok(Json(
        execute(&state, &principal, &headers, agent_id, &command).await?,
    ))
}

/// Folds an agent stream from the log.
async fn load(state: &AppState, stream: &StreamId) -> Result<domain::Agent, ApiError> {
    let mut agent = domain::Agent::initial();
    loop {
        let page = state
            .inner
            .store
            .read_stream(stream, agent.version + 1, store::READ_LIMIT_MAX)
            .await?;
        for record in &page {
            let event = domain::AgentEvent::from_stored(
                &record.event_type,
                record.schema_version,
                &record.payload,
            )
            .and_then(Result::ok)
            .ok_or_else(|| {
                ApiError::Internal(format!(
                    "undecodable {} at {}",
                    record.event_type, record.position
                ))
            })?;
            agent = domain::evolve_agent(agent, &event);
        }
        if page.len() < store::READ_LIMIT_MAX {
            return Ok(agent);
        }
    }
}

fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match is not text".to_owned()))?;
    text.trim()
        .trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| ApiError::BadRequest(format!("If-Match {text:?} is not a version")))
}

/// Decides `command` on the directory's fold of the agent and appends the events with that
/// version; answers with the agent as the directory then knows it.
async fn execute(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    agent_id: Uuid,
    command: &AgentCommand,
) -> Result<Value, ApiError> {
    let role = principal.role.command_role().ok_or_else(|| {
        ApiError::Forbidden(
            format!("role {:?} reads and never writes", principal.role).to_lowercase(),
        )
    })?;
    let actor = domain::Actor {
        id: ActorId(principal.subject.unwrap_or(principal.token_id)),
        role,
    };
    let expected_by_caller = if_match(headers)?;
    let stream = StreamId::new(format!("agent-{agent_id}"))
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let command_id = Uuid::now_v7();
    let mut agent = state
        .directory()
        .agent_states
        .get(&agent_id)
        .cloned()
        .unwrap_or_default();
    // The directory may lag the log (another node's write, or this node's follower behind).
    // A decision on its copy that would refuse, write nothing or find no agent is not final:
    // it is taken again on the agent folded from its stream. Writing decisions need no
    // reload: the append checks the version.
    let mut from_log = false;
    for _ in 0..AGENT_COMMAND_ATTEMPTS_MAX {
        let at = state.now();
        let context = CommandContext::new(at, command_id, actor, &state.inner.blueprints);
        let stale_precondition =
            expected_by_caller.is_some_and(|expected| expected != agent.version);
        let decided = if stale_precondition {
            Ok(Vec::new())
        } else {
            domain::decide_agent(command, &agent, &context)
        };
        let settled = matches!(&decided, Ok(events) if !events.is_empty())
            || matches!(&decided, Err(rejection) if *rejection != domain::Rejection::AgentNotFound);
        if !settled && !from_log {
            agent = load(state, &stream).await?;
            from_log = true;
            continue;
        }
        if let Some(expected) = expected_by_caller {
            if expected != agent.version {
                return Err(ApiError::PreconditionFailed {
                    expected: expected.to_string(),
                    current_version: agent.version,
                });
            }
        }
        let events = decided?;
        if events.is_empty() {
            return Ok(json!(state.directory().agents.get(&agent_id)));
        }
        let metadata = json!({
            "actor": principal.actor_json(),
            "command": command.name(),
            "command_id": command_id,
            "correlation_id": command_id,
            "at": at,
        });
        let metadata = serde_json::value::to_raw_value(&metadata)
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        let new_events = events
            .iter()
            .map(|event| {
                Ok(NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    payload: serde_json::value::to_raw_value(&event.to_payload())
                        .map_err(|error| ApiError::Internal(error.to_string()))?,
                    metadata: metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let expected = match agent.version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        match state
            .inner
            .store
            .append(&stream, expected, new_events, command_id)
            .await
        {
            Ok(outcome) => {
                state.directory_caught_up(outcome.last_position).await;
                return Ok(json!(state.directory().agents.get(&agent_id)));
            }
            Err(AppendError::WrongExpectedVersion { .. }) => {
                // Another node changed the agent first: decide again on the stream itself.
                agent = load(state, &stream).await?;
                from_log = true;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::VersionConflict {
        current_version: state
            .directory()
            .agent_states
            .get(&agent_id)
            .map_or(0, |agent| agent.version),
    })
}
