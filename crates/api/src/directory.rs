//! The directory of who may use the API: agents, teams, customers and bearer tokens. It is
//! event-sourced like tickets (streams `agent-…`, `team-…`, `customer-…`, `token-…`), so every
//! node learns a new token or a revocation from the shared log, and an auditor sees who was
//! given access and when. Tokens are stored as SHA-256 hashes only.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::Record;
use uuid::Uuid;

/// Longest display name or label, in characters.
pub const NAME_CHARS_MAX: usize = 200;

/// The roles a token can carry. Auditors and analysts read everything and write nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    Admin,
    Supervisor,
    Agent,
    Customer,
    Auditor,
    Analyst,
    Integration,
}

impl ApiRole {
    /// The domain role this API role acts as; auditors and analysts issue no commands.
    pub fn command_role(self) -> Option<domain::Role> {
        match self {
            ApiRole::Admin => Some(domain::Role::Admin),
            ApiRole::Supervisor => Some(domain::Role::Supervisor),
            ApiRole::Agent => Some(domain::Role::Agent),
            ApiRole::Customer => Some(domain::Role::Customer),
            ApiRole::Integration => Some(domain::Role::Integration),
            ApiRole::Auditor | ApiRole::Analyst => None,
        }
    }

    /// Whether the role reads the whole log and every ticket.
    pub fn reads_everything(self) -> bool {
        !matches!(self, ApiRole::Customer)
    }
}

/// A personal-data wrapper: names and emails live under `pii` in payloads (see docs/domain.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactPii {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
}

/// The directory's own events. Agents are the domain's agent aggregate (`domain::AgentEvent`,
/// in the same `agent-…` streams); these are the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type")]
pub enum DirectoryEvent {
    TeamCreated {
        team_id: Uuid,
        name: String,
    },
    CustomerRegistered {
        customer_id: Uuid,
        tier: String,
        pii: ContactPii,
    },
    TokenIssued {
        token_id: Uuid,
        role: ApiRole,
        subject: Option<Uuid>,
        token_sha256: String,
        label: String,
    },
    TokenRevoked {
        token_id: Uuid,
    },
}

impl DirectoryEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            DirectoryEvent::TeamCreated { .. } => "TeamCreated",
            DirectoryEvent::CustomerRegistered { .. } => "CustomerRegistered",
            DirectoryEvent::TokenIssued { .. } => "TokenIssued",
            DirectoryEvent::TokenRevoked { .. } => "TokenRevoked",
        }
    }

    pub fn stream_id(&self) -> String {
        match self {
            DirectoryEvent::TeamCreated { team_id, .. } => format!("team-{team_id}"),
            DirectoryEvent::CustomerRegistered { customer_id, .. } => {
                format!("customer-{customer_id}")
            }
            DirectoryEvent::TokenIssued { token_id, .. }
            | DirectoryEvent::TokenRevoked { token_id } => {
                format!("token-{token_id}")
            }
        }
    }

    /// The payload as stored: the variant's fields, without the type tag (the store keeps it).
    pub fn payload(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("directory events serialize");
        if let Some(object) = value.as_object_mut() {
            object.remove("event_type");
        }
        value
    }

    fn from_record(record: &Record) -> Option<DirectoryEvent> {
        let mut value: serde_json::Value = serde_json::from_str(&record.payload).ok()?;
        value
            .as_object_mut()?
            .insert("event_type".to_owned(), record.event_type.clone().into());
        serde_json::from_value(value).ok()
    }
}

pub const DIRECTORY_CATEGORIES: &[&str] = &["agent", "team", "customer", "token"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Agent {
    pub agent_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub teams: Vec<Uuid>,
    pub skills: Vec<String>,
    pub languages: Vec<String>,
    pub capacity: u32,
    pub weighted: bool,
    pub presence: domain::Presence,
    /// The agent stream's version, for `If-Match` on agent changes.
    pub version: u64,
}

impl Agent {
    fn from_domain(agent: &domain::Agent) -> Option<Agent> {
        let details = agent.details.as_ref()?;
        Some(Agent {
            agent_id: details.agent_id.0,
            name: details.name.clone(),
            email: details.email.clone(),
            teams: details.profile.teams.iter().map(|team| team.0).collect(),
            skills: details.profile.skills.clone(),
            languages: details.profile.languages.clone(),
            capacity: details.profile.capacity,
            weighted: details.profile.weighted,
            presence: details.presence,
            version: agent.version,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Team {
    pub team_id: Uuid,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Customer {
    pub customer_id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub tier: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TokenInfo {
    pub token_id: Uuid,
    pub role: ApiRole,
    pub subject: Option<Uuid>,
    pub label: String,
    pub revoked: bool,
}

/// The directory as of `position`: a fold over the directory streams of the log.
#[derive(Debug, Default)]
pub struct Directory {
    pub position: u64,
    /// The views of `agent_states`, kept in step with them.
    pub agents: HashMap<Uuid, Agent>,
    /// Each agent folded by the domain, to decide agent commands on.
    pub agent_states: HashMap<Uuid, domain::Agent>,
    pub teams: HashMap<Uuid, Team>,
    pub customers: HashMap<Uuid, Customer>,
    pub tokens: HashMap<Uuid, TokenInfo>,
    by_hash: HashMap<String, Uuid>,
}

pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lowercase hex of `bytes`, in one allocation (digests are hashed on every request).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

impl Directory {
    /// Applies one record of the log (records of other categories only move the position).
    pub fn apply(&mut self, record: &Record) {
        assert!(
            record.position > self.position,
            "records are applied once, in order"
        );
        self.position = record.position;
        if !DIRECTORY_CATEGORIES.contains(&record.category.as_str()) {
            return;
        }
        if record.category == domain::AGENT_CATEGORY {
            self.apply_agent(record);
            return;
        }
        let Some(event) = DirectoryEvent::from_record(record) else {
            tracing::warn!(position = record.position, event_type = %record.event_type, "undecodable directory event");
            return;
        };
        match event {
            DirectoryEvent::TeamCreated { team_id, name } => {
                self.teams.insert(team_id, Team { team_id, name });
            }
            DirectoryEvent::CustomerRegistered {
                customer_id,
                tier,
                pii,
            } => {
                self.customers.insert(
                    customer_id,
                    Customer {
                        customer_id,
                        name: pii.name,
                        email: pii.email,
                        tier,
                    },
                );
            }
            DirectoryEvent::TokenIssued {
                token_id,
                role,
                subject,
                token_sha256,
                label,
            } => {
                self.by_hash.insert(token_sha256, token_id);
                self.tokens.insert(
                    token_id,
                    TokenInfo {
                        token_id,
                        role,
                        subject,
                        label,
                        revoked: false,
                    },
                );
            }
            DirectoryEvent::TokenRevoked { token_id } => {
                if let Some(token) = self.tokens.get_mut(&token_id) {
                    token.revoked = true;
                }
            }
        }
    }

    fn apply_agent(&mut self, record: &Record) {
        let Some(Ok(event)) = domain::AgentEvent::from_stored(
            &record.event_type,
            record.schema_version,
            &record.payload,
        ) else {
            tracing::warn!(position = record.position, event_type = %record.event_type, "undecodable agent event");
            return;
        };
        let Some(agent_id) = record
            .stream_id
            .strip_prefix("agent-")
            .and_then(|id| Uuid::parse_str(id).ok())
        else {
            return;
        };
        let agent = self.agent_states.remove(&agent_id).unwrap_or_default();
        let agent = domain::evolve_agent(agent, &event);
        if let Some(view) = Agent::from_domain(&agent) {
            self.agents.insert(agent_id, view);
        }
        self.agent_states.insert(agent_id, agent);
    }

    /// The live token whose secret hashes to `token_sha256`.
    pub fn token_by_hash(&self, token_sha256: &str) -> Option<&TokenInfo> {
        let token = self.tokens.get(self.by_hash.get(token_sha256)?)?;
        (!token.revoked).then_some(token)
    }

    pub fn has_token_hash(&self, token_sha256: &str) -> bool {
        self.by_hash.contains_key(token_sha256)
    }

    pub fn live_admin_tokens(&self) -> usize {
        self.tokens
            .values()
            .filter(|token| token.role == ApiRole::Admin && !token.revoked)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_are_lowercase_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
        assert_eq!(hex(&[]), "");
    }
}
