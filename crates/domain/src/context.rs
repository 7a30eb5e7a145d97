//! What the shell hands to `decide` besides the command and the ticket: time, ids, the actor
//! and the blueprint catalog.
//!
//! Everything that would otherwise be a clock read, a random id or a database lookup arrives
//! here, so that `decide` stays a pure function of its arguments.

use std::fmt;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::blueprint::BlueprintCatalog;
use crate::ids::ActorId;

/// The role an actor acts in. Auditors and analysts only read, so they are not command roles.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Agent,
    Supervisor,
    Admin,
    /// Automations, the SLA scheduler and routing.
    System,
    /// Channel bridges (email, chat, phone, social) acting on behalf of a customer.
    Integration,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Customer,
        Role::Agent,
        Role::Supervisor,
        Role::Admin,
        Role::System,
        Role::Integration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::System => "system",
            Role::Integration => "integration",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who issues a command and in which role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub id: ActorId,
    pub role: Role,
}

/// The inputs of a decision other than the command and the ticket.
///
/// The shell fills it: `at` from its clock, `command_id` from the client's idempotency key or a
/// fresh v7 uuid, `correlation_id`/`causation_id` from the request or the event that caused the
/// command, `blueprints` from the catalog loaded at start-up. The domain copies none of the ids
/// into events (the store records them as metadata); `at` is used for rules about time and is
/// recorded where an automatic decision depends on it.
#[derive(Clone, Copy, Debug)]
pub struct CommandContext<'a> {
    pub at: Timestamp,
    pub command_id: Uuid,
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub blueprints: &'a BlueprintCatalog,
}

impl<'a> CommandContext<'a> {
    /// A context for a command that starts a new conversation: it correlates with itself and
    /// was caused by nothing recorded.
    pub fn new(
        at: Timestamp,
        command_id: Uuid,
        actor: Actor,
        blueprints: &'a BlueprintCatalog,
    ) -> CommandContext<'a> {
        CommandContext {
            at,
            command_id,
            actor,
            correlation_id: command_id,
            causation_id: None,
            blueprints,
        }
    }
}
