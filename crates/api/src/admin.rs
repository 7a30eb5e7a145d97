//! Admin endpoints: agents, teams, customers and tokens. Each change is a directory event in
//! the log; the response comes after the directory has applied it (read your writes).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{self, Principal};
use crate::body::JsonBody;
use crate::directory::{self, ApiRole, ContactPii, DirectoryEvent, NAME_CHARS_MAX};
use crate::error::ApiError;
use crate::AppState;

const ADMIN: &[ApiRole] = &[ApiRole::Admin];
const READERS: &[ApiRole] = &[
    ApiRole::Admin,
    ApiRole::Supervisor,
    ApiRole::Auditor,
    ApiRole::Analyst,
];

fn check_name(field: &str, name: &str) -> Result<(), ApiError> {
    let chars = name.trim().chars().count();
    if chars == 0 || chars > NAME_CHARS_MAX {
        return Err(ApiError::Unprocessable(format!(
            "{field} must be 1 to {NAME_CHARS_MAX} characters"
        )));
    }
    Ok(())
}

pub async fn list_agents(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require(READERS)?;
    let mut agents: Vec<_> = state.directory().agents.values().cloned().collect();
    agents.sort_by_key(|agent| agent.agent_id);
    Ok(Json(json!({ "agents": agents })))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
}

pub async fn create_team(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<NewTeam>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require(ADMIN)?;
    check_name("name", &body.value.name)?;
    let team_id = Uuid::now_v7();
    let event = DirectoryEvent::TeamCreated {
        team_id,
        name: body.value.name,
    };
    state
        .record_directory_event(&event, principal.actor_json())
        .await?;
    let team = state.directory().teams.get(&team_id).cloned();
    Ok((StatusCode::CREATED, Json(json!(team))))
}

pub async fn list_teams(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[
        ApiRole::Admin,
        ApiRole::Supervisor,
        ApiRole::Agent,
        ApiRole::Auditor,
        ApiRole::Analyst,
    ])?;
    let mut teams: Vec<_> = state.directory().teams.values().cloned().collect();
    teams.sort_by_key(|team| team.team_id);
    Ok(Json(json!({ "teams": teams })))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// e.g. `vip` or `normal`; SLA policies and routing read it.
    #[serde(default = "normal_tier")]
    pub tier: String,
}

fn normal_tier() -> String {
    "normal".to_owned()
}

pub async fn create_customer(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<NewCustomer>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require(&[ApiRole::Admin, ApiRole::Integration])?;
    let customer = body.value;
    check_name("name", &customer.name)?;
    check_name("tier", &customer.tier)?;
    let customer_id = Uuid::now_v7();
    let event = DirectoryEvent::CustomerRegistered {
        customer_id,
        tier: customer.tier,
        pii: ContactPii {
            name: customer.name,
            email: customer.email,
        },
    };
    state
        .record_directory_event(&event, principal.actor_json())
        .await?;
    let customer = state.directory().customers.get(&customer_id).cloned();
    Ok((StatusCode::CREATED, Json(json!(customer))))
}

pub async fn list_customers(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[
        ApiRole::Admin,
        ApiRole::Supervisor,
        ApiRole::Agent,
        ApiRole::Auditor,
        ApiRole::Analyst,
    ])?;
    let mut customers: Vec<_> = state.directory().customers.values().cloned().collect();
    customers.sort_by_key(|customer| customer.customer_id);
    Ok(Json(json!({ "customers": customers })))
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub role: ApiRole,
    /// The agent (for agent and supervisor tokens) or customer (for customer tokens) it acts as.
    #[serde(default)]
    pub subject: Option<Uuid>,
    #[serde(default)]
    pub label: String,
}

/// Creates a token and returns its secret, once; only its hash is stored.
pub async fn create_token(
    State(state): State<AppState>,
    principal: Principal,
    body: JsonBody<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require(ADMIN)?;
    let request = body.value;
    if request.label.chars().count() > NAME_CHARS_MAX {
        return Err(ApiError::Unprocessable(format!(
            "label must be at most {NAME_CHARS_MAX} characters"
        )));
    }
    {
        let directory = state.directory();
        match (request.role, request.subject) {
            (ApiRole::Agent | ApiRole::Supervisor, Some(agent))
                if directory.agents.contains_key(&agent) => {}
            (ApiRole::Agent | ApiRole::Supervisor, _) => {
                return Err(ApiError::Unprocessable(
                    "subject: agent and supervisor tokens name a registered agent".to_owned(),
                ))
            }
            (ApiRole::Customer, Some(customer)) if directory.customers.contains_key(&customer) => {}
            (ApiRole::Customer, _) => {
                return Err(ApiError::Unprocessable(
                    "subject: customer tokens name a registered customer".to_owned(),
                ))
            }
            (_, None) => {}
            (role, Some(_)) => {
                return Err(ApiError::Unprocessable(
                    format!("subject: {role:?} tokens act as no one").to_lowercase(),
                ))
            }
        }
    }
    let secret = auth::new_token_secret();
    let token_id = Uuid::now_v7();
    let event = DirectoryEvent::TokenIssued {
        token_id,
        role: request.role,
        subject: request.subject,
        token_sha256: directory::hash_token(&secret),
        label: request.label,
    };
    state
        .record_directory_event(&event, principal.actor_json())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "token_id": token_id, "role": request.role, "subject": request.subject, "token": secret }),
        ),
    ))
}

pub async fn list_tokens(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[ApiRole::Admin, ApiRole::Auditor])?;
    let mut tokens: Vec<_> = state.directory().tokens.values().cloned().collect();
    tokens.sort_by_key(|token| token.token_id);
    Ok(Json(json!({ "tokens": tokens })))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    principal: Principal,
    Path(token_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(ADMIN)?;
    let token_id = Uuid::parse_str(&token_id)
        .ok()
        .filter(|id| state.directory().tokens.contains_key(id))
        .ok_or_else(|| ApiError::NotFound(format!("no token {token_id:?}")))?;
    state
        .record_directory_event(
            &DirectoryEvent::TokenRevoked { token_id },
            principal.actor_json(),
        )
        .await?;
    Ok(Json(json!({ "token_id": token_id, "revoked": true })))
}
