//! Ticket commands and ticket reads. A command is decided by the domain against the ticket folded
//! from its stream, then appended with the version it was decided on, so a concurrent change is
//! a conflict, never a lost update. `Idempotency-Key` maps to the store's command id: a retry is
//! answered from the log without deciding again.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use domain::{
    ActorId, AttachmentInput, Command, CommandContext, CreateTicket, Event, FieldValue, LinkKind,
    Priority, Requester, Ticket, TicketId, TicketNumber, Visibility,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::{to_raw_value, RawValue};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use store::{AppendError, ExpectedVersion, NewEvent, Record, StreamId};
use uuid::Uuid;

use crate::auth::Principal;
use crate::body::{ApiQuery, JsonBody};
use crate::directory::ApiRole;
use crate::error::ApiError;
use crate::AppState;

/// How often a command without `If-Match` is decided again after losing a race.
pub const COMMAND_ATTEMPTS_MAX: usize = 5;
/// Longest accepted `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;
/// Most events one trail request returns.
pub const TRAIL_LIMIT_MAX: usize = 1000;

/// `POST /v1/tickets`: the ticket's id and number are allocated here.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketRequest {
    pub channel: domain::Channel,
    pub requester: Requester,
    pub subject: String,
    pub description: String,
    pub ticket_type: String,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldValue>,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
}

/// `{"type": "apply_macro", "macro": "refund_done"}`: the macro's actions (reply, note, tags,
/// priority, transition), decided in order as one command and appended atomically.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyMacro {
    #[serde(rename = "type")]
    #[expect(
        dead_code,
        reason = "the tag only selects this shape; serde checks its value"
    )]
    kind: ApplyMacroType,
    /// The id of a macro configured in `[automation]`.
    #[serde(rename = "macro")]
    pub macro_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyMacroType {
    ApplyMacro,
}

/// The body of `POST /v1/tickets/{id}/commands`: a domain command, or `apply_macro`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per request, never stored: boxing would only add an allocation"
)]
pub enum TicketCommand {
    ApplyMacro(ApplyMacro),
    Domain(Command),
}

impl TicketCommand {
    /// Parses the body by its `type`, so that a bad domain command gets the domain's precise
    /// error (an untagged enum would only say that nothing matched).
    fn parse(bytes: &[u8]) -> Result<TicketCommand, ApiError> {
        #[derive(Deserialize)]
        struct Peek<'a> {
            #[serde(rename = "type", borrow, default)]
            kind: Option<std::borrow::Cow<'a, str>>,
        }
        let kind = serde_json::from_slice::<Peek<'_>>(bytes)
            .ok()
            .and_then(|peek| peek.kind);
        if kind.as_deref() == Some("apply_macro") {
            crate::body::parse(bytes).map(TicketCommand::ApplyMacro)
        } else {
            crate::body::parse(bytes).map(TicketCommand::Domain)
        }
    }

    fn name(&self) -> &'static str {
        match self {
            TicketCommand::ApplyMacro(_) => "apply_macro",
            TicketCommand::Domain(command) => command.name(),
        }
    }
}

/// An event as the API shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventView {
    pub position: u64,
    pub stream_version: u64,
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u32,
    // The payload as stored: no parse and re-serialization on the way out.
    #[schemars(with = "Value")]
    pub data: Box<RawValue>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CommandResponse {
    pub ticket_id: TicketId,
    pub stream_version: u64,
    /// The global position of the last event written (or the log position the command saw when
    /// it wrote nothing): pass it as `?min_position=` to read your own write.
    pub position: u64,
    pub events: Vec<EventView>,
    /// The command id had been appended already (a concurrent retry): answer with a replay.
    #[serde(skip)]
    pub duplicate: bool,
}

pub async fn create_ticket(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: JsonBody<CreateTicketRequest>,
) -> Result<Response, ApiError> {
    let request = body.value;
    if principal.role == ApiRole::Customer && principal.subject != Some(request.requester.id.0) {
        return Err(ApiError::Forbidden(
            "customers open tickets for themselves: requester.id must be their own id".to_owned(),
        ));
    }
    let command_id = command_id(&principal, &headers)?;
    let fingerprint = fingerprint("POST", "/v1/tickets", &body.sha256);
    if let Some(replay) =
        replay(&state, &principal, command_id, &headers, &fingerprint, true).await?
    {
        return Ok(replay);
    }
    let ticket_id = TicketId(Uuid::now_v7());
    let number = TicketNumber(state.inner.numbers.next(&state.inner.store).await?);
    let command = Command::CreateTicket(CreateTicket {
        ticket_id,
        number,
        channel: request.channel,
        requester: request.requester,
        subject: request.subject,
        description: request.description,
        ticket_type: request.ticket_type,
        priority: request.priority,
        tags: request.tags,
        fields: request.fields,
        attachments: request.attachments,
    });
    let response = execute(
        &state,
        &principal,
        &headers,
        ticket_id,
        &TicketCommand::Domain(command),
        command_id,
        &fingerprint,
    )
    .await?;
    if response.duplicate {
        // The same key raced in from another request: answer as its replay would.
        return replay(&state, &principal, command_id, &headers, &fingerprint, true)
            .await?
            .ok_or_else(|| {
                ApiError::Internal(format!("command {command_id} is a duplicate of nothing"))
            });
    }
    Ok(created(response, &principal))
}

pub async fn post_command(
    State(state): State<AppState>,
    principal: Principal,
    Path(ticket_id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<serde::de::IgnoredAny>,
) -> Result<Response, ApiError> {
    let ticket_id = parse_ticket_id(&ticket_id)?;
    let request = TicketCommand::parse(&body.bytes)?;
    if matches!(request, TicketCommand::Domain(Command::CreateTicket(_))) {
        return Err(ApiError::BadRequest(
            "create tickets with POST /v1/tickets".to_owned(),
        ));
    }
    let command_id = command_id(&principal, &headers)?;
    let fingerprint = fingerprint(
        "POST",
        &format!("/v1/tickets/{ticket_id}/commands"),
        &body.sha256,
    );
    if let Some(replay) = replay(
        &state,
        &principal,
        command_id,
        &headers,
        &fingerprint,
        false,
    )
    .await?
    {
        return Ok(replay);
    }
    let response = execute(
        &state,
        &principal,
        &headers,
        ticket_id,
        &request,
        command_id,
        &fingerprint,
    )
    .await?;
    if response.duplicate {
        return replay(
            &state,
            &principal,
            command_id,
            &headers,
            &fingerprint,
            false,
        )
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("command {command_id} is a duplicate of nothing"))
        });
    }
    follow_up(&state, &principal, &headers, &response).await;
    Ok(ok(response, &principal))
}

/// What an idempotent retry must repeat exactly: the method, the path and the body. Stored in
/// the metadata of the events a request wrote, and compared when its key comes again.
fn fingerprint(method: &str, path: &str, body_sha256: &str) -> String {
    crate::directory::hex(
        &Sha256::new()
            .chain_update(method.as_bytes())
            .chain_update(b" ")
            .chain_update(path.as_bytes())
            .chain_update(b"\n")
            .chain_update(body_sha256.as_bytes())
            .finalize(),
    )
}

pub fn parse_ticket_id(text: &str) -> Result<TicketId, ApiError> {
    Uuid::parse_str(text)
        .map(TicketId)
        .map_err(|_| ApiError::NotFound(format!("no ticket {text:?}: ticket ids are UUIDs")))
}

/// The command id: derived from the caller's `Idempotency-Key` (so a retry carries the same
/// one), or fresh.
fn command_id(principal: &Principal, headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let Some(key) = idempotency_key(headers)? else {
        return Ok(Uuid::now_v7());
    };
    let digest = Sha256::new()
        .chain_update(principal.token_id.as_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // A version 8 (custom) UUID: the key's hash, scoped to the token that sent it.
    Ok(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".to_owned()))?;
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_CHARS_MAX {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_CHARS_MAX} characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

fn correlation_id(headers: &HeaderMap, command_id: Uuid) -> Result<Uuid, ApiError> {
    match headers.get("x-correlation-id") {
        None => Ok(command_id),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| Uuid::parse_str(text).ok())
            .ok_or_else(|| ApiError::BadRequest("X-Correlation-Id must be a UUID".to_owned())),
    }
}

/// `If-Match: "7"` (or `W/"7"`, or `7`): the version the caller decided on.
fn if_match(headers: &HeaderMap) -> Result<Option<(String, u64)>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim().to_owned();
    let bare = text.trim_start_matches("W/").trim_matches('"');
    let version = bare.parse::<u64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "If-Match {text:?} is not a ticket version like \"7\""
        ))
    })?;
    Ok(Some((text, version)))
}

/// Answers a retried request from the log, if its command id was already appended.
async fn replay(
    state: &AppState,
    principal: &Principal,
    command_id: Uuid,
    headers: &HeaderMap,
    fingerprint: &str,
    create: bool,
) -> Result<Option<Response>, ApiError> {
    if idempotency_key(headers)?.is_none() {
        return Ok(None);
    }
    let Some((stream_id, outcome)) = state.inner.store.find_command(command_id).await? else {
        return Ok(None);
    };
    let count = (outcome.last_position - outcome.first_position + 1) as usize;
    let records = state
        .inner
        .store
        .read_all(outcome.first_position - 1, count)
        .await?;
    let original_sha256 = records
        .first()
        .and_then(|record| serde_json::from_str::<Value>(&record.metadata).ok())
        .and_then(|metadata| metadata["request_sha256"].as_str().map(str::to_owned));
    if original_sha256.as_deref() != Some(fingerprint) {
        let key = idempotency_key(headers)?.unwrap_or_default();
        return Err(ApiError::IdempotencyKeyReused { key });
    }
    let ticket_id = stream_id
        .strip_prefix("ticket-")
        .and_then(|id| Uuid::parse_str(id).ok())
        .map(TicketId)
        .ok_or_else(|| ApiError::Internal(format!("command {command_id} wrote to {stream_id}")))?;
    let response = CommandResponse {
        ticket_id,
        stream_version: outcome.stream_version,
        position: outcome.last_position,
        events: records.iter().map(event_view).collect(),
        duplicate: false,
    };
    let mut reply = if create {
        created(response, principal)
    } else {
        ok(response, principal)
    };
    reply
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(reply))
}

/// Loads a ticket by folding its stream.
pub async fn load(state: &AppState, ticket_id: TicketId) -> Result<Ticket, ApiError> {
    catch_up(state, ticket_id, Ticket::initial()).await
}

/// The ticket as of the latest event in the log: the cached fold (a fold of the stream's first
/// versions, cached only once they were committed) caught up with whatever the log holds after
/// it, so a read costs one query that usually returns nothing rather than a replay.
async fn load_latest(state: &AppState, ticket_id: TicketId) -> Result<Ticket, ApiError> {
    let Some(cached) = state.inner.tickets.get(ticket_id) else {
        return load(state, ticket_id).await;
    };
    let version = cached.version;
    let ticket = catch_up(state, ticket_id, cached).await?;
    if ticket.version != version {
        state.inner.tickets.put(ticket_id, ticket.clone());
    }
    Ok(ticket)
}

/// Folds the events of the ticket's stream that `ticket` has not seen yet.
pub(crate) async fn catch_up(
    state: &AppState,
    ticket_id: TicketId,
    mut ticket: Ticket,
) -> Result<Ticket, ApiError> {
    let stream = stream_id(ticket_id)?;
    loop {
        let page = state
            .inner
            .store
            .read_stream(&stream, ticket.version + 1, store::READ_LIMIT_MAX)
            .await?;
        for record in &page {
            let event =
                Event::from_stored(&record.event_type, record.schema_version, &record.payload)
                    .map_err(|error| {
                        ApiError::Internal(format!(
                            "{} at {}: {error}",
                            record.event_type, record.position
                        ))
                    })?;
            ticket = domain::evolve(ticket, &event);
        }
        if page.len() < store::READ_LIMIT_MAX {
            return Ok(ticket);
        }
    }
}

pub(crate) fn stream_id(ticket_id: TicketId) -> Result<StreamId, ApiError> {
    StreamId::new(ticket_id.stream_id()).map_err(|error| ApiError::Internal(error.to_string()))
}

/// Who issues a command: a caller's token, or the system itself (the SLA scheduler).
struct Issuer {
    actor: domain::Actor,
    actor_json: Value,
    /// Recorded in the metadata under `scheduler` (the source and the due time of its work).
    scheduler: Option<Value>,
}

/// Decides `command` against the current ticket and appends what it produces.
async fn execute(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    ticket_id: TicketId,
    command: &TicketCommand,
    command_id: Uuid,
    fingerprint: &str,
) -> Result<CommandResponse, ApiError> {
    let role = principal.role.command_role().ok_or_else(|| {
        ApiError::Forbidden(
            format!("role {:?} reads and never writes", principal.role).to_lowercase(),
        )
    })?;
    let issuer = Issuer {
        actor: domain::Actor {
            id: ActorId(principal.subject.unwrap_or(principal.token_id)),
            role,
        },
        actor_json: principal.actor_json(),
        scheduler: None,
    };
    execute_as(
        state,
        &issuer,
        headers,
        ticket_id,
        command,
        command_id,
        fingerprint,
    )
    .await
}

/// What a system command did.
#[derive(Debug)]
pub enum SystemOutcome {
    /// Events were appended; the last at this position.
    Appended { position: u64 },
    /// The command id had been appended before: nothing was written now.
    Duplicate,
    /// The domain decided there was nothing to record.
    Unchanged,
}

/// Issues a command as `actor`, in-process (tools and tests that act as agents or customers
/// without HTTP); otherwise as `system_command`.
pub async fn command_as(
    state: &AppState,
    actor: domain::Actor,
    ticket_id: TicketId,
    command: &Command,
    command_id: Uuid,
) -> Result<SystemOutcome, ApiError> {
    let issuer = Issuer {
        actor,
        actor_json: json!({"role": actor.role, "id": actor.id}),
        scheduler: None,
    };
    outcome(
        execute_as(
            state,
            &issuer,
            &HeaderMap::new(),
            ticket_id,
            &TicketCommand::Domain(command.clone()),
            command_id,
            "",
        )
        .await?,
    )
}

fn outcome(response: CommandResponse) -> Result<SystemOutcome, ApiError> {
    Ok(if response.duplicate {
        SystemOutcome::Duplicate
    } else if response.events.is_empty() {
        SystemOutcome::Unchanged
    } else {
        SystemOutcome::Appended {
            position: response.position,
        }
    })
}

/// Issues a command as the System actor (the SLA scheduler, time-based automations), with a
/// command id the caller derived, so a repeated fire appends once. `scheduler` is recorded in
/// the metadata (for the SLA: the source and when the work was due). A rejection comes back as
/// `ApiError::Rejected`.
pub async fn system_command(
    state: &AppState,
    ticket_id: TicketId,
    command: &Command,
    command_id: Uuid,
    scheduler: Value,
) -> Result<SystemOutcome, ApiError> {
    let issuer = Issuer {
        actor: domain::Actor {
            id: ActorId(Uuid::nil()),
            role: domain::Role::System,
        },
        actor_json: json!({"role": "system", "id": "scheduler"}),
        scheduler: Some(scheduler),
    };
    outcome(
        execute_as(
            state,
            &issuer,
            &HeaderMap::new(),
            ticket_id,
            &TicketCommand::Domain(command.clone()),
            command_id,
            "",
        )
        .await?,
    )
}

async fn execute_as(
    state: &AppState,
    issuer: &Issuer,
    headers: &HeaderMap,
    ticket_id: TicketId,
    command: &TicketCommand,
    command_id: Uuid,
    fingerprint: &str,
) -> Result<CommandResponse, ApiError> {
    let actor = issuer.actor;
    let correlation_id = correlation_id(headers, command_id)?;
    let expected_by_caller = if_match(headers)?;
    let stream = stream_id(ticket_id)?;
    // Commands on one ticket take turns in this process: each decides on what the one before
    // left in the cache, instead of racing it to the same version.
    let _turn = state.inner.ticket_turns.turn(ticket_id).await;
    // From the cache when we can; `fresh` says whether `ticket` was just read from the log.
    let (mut ticket, mut fresh) = match state.inner.tickets.get(ticket_id) {
        Some(cached) => (cached, false),
        None => (load(state, ticket_id).await?, true),
    };
    for _ in 0..COMMAND_ATTEMPTS_MAX {
        if let Some((text, version)) = &expected_by_caller {
            if *version != ticket.version {
                if !fresh {
                    ticket = catch_up(state, ticket_id, ticket).await?;
                    fresh = true;
                    continue;
                }
                return Err(ApiError::PreconditionFailed {
                    expected: text.clone(),
                    current_version: ticket.version,
                });
            }
        }
        let at = state.now();
        let mut context = CommandContext::new(at, command_id, actor, &state.inner.blueprints);
        context.correlation_id = correlation_id;
        let decided = match command {
            TicketCommand::Domain(command) => {
                domain::decide(command, &ticket, &context).map_err(ApiError::from)
            }
            TicketCommand::ApplyMacro(apply) => {
                decide_macro(state, &apply.macro_id, &ticket, &context).await
            }
        };
        // Only "append these events" may rest on a cached ticket: the append checks its version.
        // A rejection or a no-op is confirmed against the log first.
        if !fresh && !matches!(&decided, Ok(events) if !events.is_empty()) {
            let version = ticket.version;
            ticket = catch_up(state, ticket_id, ticket).await?;
            fresh = true;
            if ticket.version != version {
                continue;
            }
        }
        let events = decided?;
        if events.is_empty() {
            state.inner.tickets.put(ticket_id, ticket.clone());
            // What this node knows is committed: enough for read-your-writes of nothing, and no
            // read of the database for a command that changed nothing.
            let position = state.inner.store.committed_position();
            return Ok(CommandResponse {
                ticket_id,
                stream_version: ticket.version,
                position,
                events: vec![],
                duplicate: false,
            });
        }
        let metadata = CommandMetadata {
            actor: &issuer.actor_json,
            at,
            causation_id: None,
            command: command.name(),
            command_id,
            correlation_id,
            macro_id: match command {
                TicketCommand::ApplyMacro(apply) => Some(apply.macro_id.as_str()),
                _ => None,
            },
            request_sha256: fingerprint,
            scheduler: issuer.scheduler.as_ref(),
        };
        let metadata =
            to_raw_value(&metadata).map_err(|error| ApiError::Internal(error.to_string()))?;
        let new_events = events
            .iter()
            .map(|event| {
                Ok(NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    payload: RawValue::from_string(event.to_payload_json())
                        .map_err(|error| ApiError::Internal(error.to_string()))?,
                    metadata: metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let expected = match ticket.version {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        match state
            .inner
            .store
            .append(&stream, expected, new_events.clone(), command_id)
            .await
        {
            Ok(outcome) => {
                let first_version = ticket.version + 1;
                if !outcome.duplicate {
                    let next = events.iter().fold(ticket, domain::evolve);
                    state.inner.tickets.put(ticket_id, next);
                }
                let views = new_events
                    .iter()
                    .zip(outcome.first_position..)
                    .zip(first_version..)
                    .map(|((event, position), stream_version)| EventView {
                        position,
                        stream_version,
                        event_id: event.event_id,
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        data: event.payload.clone(),
                    })
                    .collect();
                return Ok(CommandResponse {
                    ticket_id,
                    stream_version: outcome.stream_version,
                    position: outcome.last_position,
                    events: if outcome.duplicate { vec![] } else { views },
                    duplicate: outcome.duplicate,
                });
            }
            Err(AppendError::WrongExpectedVersion { actual, .. }) => {
                if let Some((text, _)) = expected_by_caller {
                    return Err(ApiError::PreconditionFailed {
                        expected: text,
                        current_version: actual.unwrap_or(0),
                    });
                }
                // Someone else changed the ticket since we read it: decide again on the new state.
                ticket = catch_up(state, ticket_id, ticket).await?;
                fresh = true;
                continue;
            }
            // The command id wrote to another ticket: a retry of a creation that raced in, whose
            // first attempt allocated another ticket id. The handler answers with its replay.
            Err(AppendError::CommandIdReused { .. }) => {
                return Ok(CommandResponse {
                    ticket_id,
                    stream_version: 0,
                    position: 0,
                    events: vec![],
                    duplicate: true,
                })
            }
            Err(error) => return Err(error.into()),
        }
    }
    let ticket = load(state, ticket_id).await?;
    Err(ApiError::VersionConflict {
        current_version: ticket.version,
    })
}

/// Expands macro `macro_id` for this ticket and actor and decides its commands as one batch.
/// The template values come from the directory (the customer's and the agent's names), else
/// from the ticket's creation (the requester's name as the channel gave it).
async fn decide_macro(
    state: &AppState,
    macro_id: &str,
    ticket: &Ticket,
    context: &CommandContext<'_>,
) -> Result<Vec<Event>, ApiError> {
    let details = ticket
        .details
        .as_ref()
        .ok_or_else(|| ApiError::from(domain::Rejection::TicketNotFound))?;
    let mut values = automation::TemplateValues {
        ticket_number: Some(details.number.0),
        ticket_subject: Some(details.subject.clone()),
        ..automation::TemplateValues::default()
    };
    {
        let directory = state.directory();
        if let Some(customer) = directory.customers.get(&details.requester.0) {
            values.customer_name = Some(customer.name.clone());
            values.customer_email = customer.email.clone();
        }
        if let Some(agent) = directory.agents.get(&context.actor.id.0) {
            values.agent_name = Some(agent.name.clone());
        }
    }
    if values.customer_name.is_none() {
        let first = state
            .inner
            .store
            .read_stream(&stream_id(details.id)?, 1, 1)
            .await?;
        if let Some(Ok(Event::TicketCreated(created))) = first.first().map(|record| {
            Event::from_stored(&record.event_type, record.schema_version, &record.payload)
        }) {
            values.customer_name = created.pii.requester_name;
            values.customer_email = values.customer_email.or(created.pii.requester_email);
        }
    }
    let commands = state
        .inner
        .config
        .automation
        .macros
        .expand(macro_id, &values, automation::AppliedBy::Agent)
        .map_err(|error| ApiError::Unprocessable(error.to_string()))?;
    automation::decide_sequence(&commands, ticket, context)
        .map_err(|rejected| ApiError::from(rejected.rejection))
}

/// The metadata of a command's events, serialized straight to text. Fields are in alphabetical
/// order, so the bytes are those the same object built as a `serde_json::Value` had (its maps
/// are sorted): the stored metadata did not change shape with this struct.
#[derive(Serialize)]
pub(crate) struct CommandMetadata<'a> {
    pub actor: &'a Value,
    pub at: jiff::Timestamp,
    pub causation_id: Option<Uuid>,
    pub command: &'a str,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    #[serde(rename = "macro", skip_serializing_if = "Option::is_none")]
    pub macro_id: Option<&'a str>,
    pub request_sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<&'a Value>,
}

/// Commands that touch two tickets are decided on one and mirrored on the other here: a merge
/// is recorded on the survivor, a link on the linked ticket. The mirror is caused by the first
/// command and shares its correlation id; a failure leaves the first command standing.
async fn follow_up(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    response: &CommandResponse,
) {
    for view in &response.events {
        // Only these two events have a mirror; nothing else is worth decoding here.
        if !matches!(
            view.event_type.as_str(),
            "TicketMergedInto" | "TicketLinked"
        ) {
            continue;
        }
        let Ok(event) = Event::from_stored(&view.event_type, view.schema_version, view.data.get())
        else {
            continue;
        };
        let (other, command) = match &event {
            Event::TicketMergedInto(merged) => {
                let Ok(duplicate) = load(state, response.ticket_id).await else {
                    continue;
                };
                let Some(details) = duplicate.details else {
                    continue;
                };
                (
                    merged.survivor,
                    Command::RecordMergedDuplicate(domain::RecordMergedDuplicate {
                        duplicate: response.ticket_id,
                        duplicate_number: details.number,
                    }),
                )
            }
            Event::TicketLinked(linked) => {
                let kind = match linked.kind {
                    LinkKind::Parent => LinkKind::Child,
                    LinkKind::Child => LinkKind::Parent,
                    LinkKind::Related => LinkKind::Related,
                };
                (
                    linked.other,
                    Command::LinkTicket(domain::LinkTicket {
                        other: response.ticket_id,
                        kind,
                    }),
                )
            }
            _ => continue,
        };
        // Derived from the causing event, so a retried follow-up is the same command.
        let digest = Sha256::new()
            .chain_update(view.event_id.as_bytes())
            .chain_update(b"follow-up")
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let command_id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
        let mut headers = headers.clone();
        headers.remove(header::IF_MATCH);
        headers.remove("idempotency-key");
        if let Err(error) = execute(
            state,
            principal,
            &headers,
            other,
            &TicketCommand::Domain(command),
            command_id,
            "",
        )
        .await
        {
            tracing::warn!(%error, ticket = %other, "follow-up command on the other ticket failed");
        }
    }
}

fn visible_to(principal: &Principal, record: &Record) -> bool {
    if principal.role.reads_everything() {
        return true;
    }
    Event::from_stored(&record.event_type, record.schema_version, &record.payload)
        .is_ok_and(|event| event.visibility() == Visibility::Public)
}

fn event_view(record: &Record) -> EventView {
    EventView {
        position: record.position,
        stream_version: record.stream_version,
        event_id: record.event_id,
        event_type: record.event_type.clone(),
        schema_version: record.schema_version,
        data: RawValue::from_string(record.payload.clone())
            .unwrap_or_else(|_| RawValue::NULL.to_owned()),
    }
}

/// Keys of public events' payloads that are internal to the team (priority, tags, custom
/// fields, the blueprint): a customer's view of an event leaves them out.
const INTERNAL_PAYLOAD_KEYS: &[&str] = &["priority", "tags", "fields", "set", "unset", "blueprint"];

/// A public event's payload as a customer may see it: without internal keys.
pub fn redact_for_customer(data: &mut Value) {
    let Some(object) = data.as_object_mut() else {
        return;
    };
    for key in INTERNAL_PAYLOAD_KEYS {
        object.remove(*key);
    }
}

fn respond(mut response: CommandResponse, principal: &Principal, status: StatusCode) -> Response {
    if !principal.role.reads_everything() {
        response.events.retain(|view| {
            Event::from_stored(&view.event_type, view.schema_version, view.data.get())
                .is_ok_and(|event| event.visibility() == Visibility::Public)
        });
        for view in &mut response.events {
            let mut data: Value = serde_json::from_str(view.data.get()).unwrap_or(Value::Null);
            redact_for_customer(&mut data);
            if let Ok(redacted) = to_raw_value(&data) {
                view.data = redacted;
            }
        }
    }
    let etag = format!("\"{}\"", response.stream_version);
    let location = format!("/v1/tickets/{}", response.ticket_id);
    let mut reply = (status, Json(response)).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        reply.headers_mut().insert(header::ETAG, value);
    }
    if status == StatusCode::CREATED {
        if let Ok(value) = HeaderValue::from_str(&location) {
            reply.headers_mut().insert(header::LOCATION, value);
        }
    }
    reply
}

fn created(response: CommandResponse, principal: &Principal) -> Response {
    respond(response, principal, StatusCode::CREATED)
}

fn ok(response: CommandResponse, principal: &Principal) -> Response {
    respond(response, principal, StatusCode::OK)
}

/// A customer may see a ticket only if they requested it; to anyone else it does not exist.
fn check_can_read(principal: &Principal, ticket: &Ticket) -> Result<(), ApiError> {
    let details = ticket
        .details
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the ticket does not exist".to_owned()))?;
    if principal.role == ApiRole::Customer && principal.subject != Some(details.requester.0) {
        return Err(ApiError::NotFound("the ticket does not exist".to_owned()));
    }
    Ok(())
}

/// `GET /v1/tickets/{id}`: the ticket as of its latest event. Customers see no internal fields.
pub async fn get_ticket(
    State(state): State<AppState>,
    principal: Principal,
    Path(ticket_id): Path<String>,
) -> Result<Response, ApiError> {
    let ticket_id = parse_ticket_id(&ticket_id)?;
    let ticket = load_latest(&state, ticket_id).await?;
    check_can_read(&principal, &ticket)?;
    let details = ticket.details.as_ref().expect("checked above");
    let public_attachments: Vec<Value> = details
        .attachments
        .iter()
        .filter(|attachment| principal.role.reads_everything() || attachment.visibility == Visibility::Public)
        .map(|attachment| json!({"id": attachment.id, "content_type": attachment.content_type, "visibility": attachment.visibility}))
        .collect();
    let mut view = json!({
        "id": details.id,
        "number": details.number.0,
        "display_number": details.number.to_string(),
        "version": ticket.version,
        "channel": details.channel,
        "requester": details.requester,
        "type": details.ticket_type,
        "subject": details.subject,
        "description": details.description,
        "state": details.state,
        "category": details.category,
        "attachments": public_attachments,
        "merged_into": details.merged_into,
    });
    if principal.role.reads_everything() {
        let internal = json!({
            "priority": details.priority,
            "tags": details.tags,
            "fields": details.fields,
            "blueprint": details.blueprint,
            "team": details.team,
            "assignee": details.assignee,
            "collaborators": details.collaborators,
            "links": details.links.iter().map(|(other, kind)| json!({"ticket": other, "kind": kind})).collect::<Vec<_>>(),
            "merged_duplicates": details.merged_duplicates,
            "resolutions": details.resolutions,
            "escalation_level": details.escalation_level,
            "customer_upset": details.customer_upset,
            "sla_clocks": details.sla_clocks.iter().map(|clock| json!({
                "policy_id": clock.policy_id, "metric": clock.metric, "due_at": clock.due_at,
                "warned": clock.warned, "breached": clock.breached,
            })).collect::<Vec<_>>(),
        });
        if let (Some(view), Some(internal)) = (view.as_object_mut(), internal.as_object()) {
            view.extend(internal.clone());
        }
        // The SLA view: status, state and remaining business time of each clock.
        let now = state.now();
        let clocks = {
            let sla = state.inner.projections.sla.read();
            match state.sla_policies() {
                Some(policies) => {
                    sla.ticket_with(ticket_id, now, &crate::scheduler::PolicyRules(policies))
                }
                None => sla.ticket(ticket_id, now),
            }
        };
        view["sla"] = json!(clocks.unwrap_or_default());
    }
    let mut reply = Json(view).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", ticket.version)) {
        reply.headers_mut().insert(header::ETAG, value);
    }
    Ok(reply)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrailQuery {
    #[serde(default)]
    pub from_version: Option<u64>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /v1/tickets/{id}/events`: the full trail: every event with actor, time, causation,
/// correlation and hashes. Customers see only public events, without internal metadata.
pub async fn ticket_events(
    State(state): State<AppState>,
    principal: Principal,
    Path(ticket_id): Path<String>,
    ApiQuery(query): ApiQuery<TrailQuery>,
) -> Result<Json<Value>, ApiError> {
    let ticket_id = parse_ticket_id(&ticket_id)?;
    let ticket = load(&state, ticket_id).await?;
    check_can_read(&principal, &ticket)?;
    let limit = query
        .limit
        .unwrap_or(TRAIL_LIMIT_MAX)
        .clamp(1, TRAIL_LIMIT_MAX);
    let records = state
        .inner
        .store
        .read_stream(
            &stream_id(ticket_id)?,
            query.from_version.unwrap_or(1),
            limit,
        )
        .await?;
    let events: Vec<Value> = records
        .iter()
        .filter(|record| visible_to(&principal, record))
        .map(|record| {
            let mut json = crate::feed::record_json(record, principal.role.reads_everything());
            if !principal.role.reads_everything() {
                redact_for_customer(&mut json["data"]);
            }
            json
        })
        .collect();
    let next = records
        .last()
        .filter(|_| records.len() == limit)
        .map(|record| record.stream_version + 1);
    Ok(Json(
        json!({ "ticket_id": ticket_id, "events": events, "next_from_version": next }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_metadata_has_the_bytes_of_the_sorted_json_object() {
        let principal = Principal {
            token_id: Uuid::from_u128(1),
            role: ApiRole::Agent,
            subject: Some(Uuid::from_u128(2)),
        };
        let at: jiff::Timestamp = "2026-11-24T07:00:00.123456Z".parse().unwrap();
        let actor = principal.actor_json();
        let scheduler = json!({"source": "sla", "due_at": at});
        let cases = [
            (None, None, None),
            (Some(Uuid::from_u128(5)), Some("greeting"), Some(&scheduler)),
        ];
        for (causation, macro_id, scheduler) in cases {
            let typed = CommandMetadata {
                actor: &actor,
                at,
                causation_id: causation,
                command: "assign_agent",
                command_id: Uuid::from_u128(3),
                correlation_id: Uuid::from_u128(4),
                macro_id,
                request_sha256: "00ff",
                scheduler,
            };
            let mut untyped = json!({
                "actor": principal.actor_json(),
                "command": "assign_agent",
                "command_id": Uuid::from_u128(3),
                "correlation_id": Uuid::from_u128(4),
                "causation_id": causation,
                "at": at,
                "request_sha256": "00ff",
            });
            if let Some(scheduler) = scheduler {
                untyped["scheduler"] = scheduler.clone();
            }
            if let Some(macro_id) = macro_id {
                untyped["macro"] = Value::from(macro_id);
            }
            assert_eq!(
                serde_json::to_string(&typed).unwrap(),
                serde_json::to_string(&untyped).unwrap()
            );
        }
    }
}
