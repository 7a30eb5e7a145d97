//! Why a command was refused: one variant per rule, machine-readable (serialized with a `rule`
//! tag for HTTP 422 bodies) and readable by people (`Display`).

use std::fmt;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;

use crate::blueprint::{AllowedTransition, BlueprintRef, Requirement, StateCategory};
use crate::context::Role;

/// What is wrong with one input field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputProblem {
    /// Missing, or only whitespace.
    Empty,
    TooLong {
        max_bytes: usize,
    },
    TooMany {
        max: usize,
    },
    OutOfRange {
        min: u64,
        max: u64,
    },
    Malformed {
        expected: String,
    },
    /// The same value appears twice where it must be unique.
    Duplicate {
        value: String,
    },
    /// Required from this role, for example the rule behind an automatic decision.
    Required,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputProblem::Empty => f.write_str("must not be empty"),
            InputProblem::TooLong { max_bytes } => write!(f, "longer than {max_bytes} bytes"),
            InputProblem::TooMany { max } => write!(f, "more than {max} entries"),
            InputProblem::OutOfRange { min, max } => write!(f, "must be from {min} to {max}"),
            InputProblem::Malformed { expected } => write!(f, "expected {expected}"),
            InputProblem::Duplicate { value } => write!(f, "`{value}` appears twice"),
            InputProblem::Required => f.write_str("is required for this role"),
        }
    }
}

/// A refused command, naming the rule it broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema, thiserror::Error)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rejection {
    #[error("the ticket does not exist")]
    TicketNotFound,
    #[error("the ticket already exists")]
    TicketAlreadyExists,
    #[error("the ticket is closed; it accepts nothing but links")]
    TicketClosed,
    #[error("role {role} may not {command}")]
    RoleNotAllowed { command: String, role: Role },
    #[error("customers act only on their own tickets")]
    NotOwnTicket,
    #[error("customers cannot write what is internal to the team")]
    InternalNotForCustomers,
    #[error("invalid {field}: {problem}")]
    InvalidInput {
        field: String,
        problem: InputProblem,
    },
    #[error("no blueprint for ticket type `{ticket_type}`")]
    NoBlueprintForType { ticket_type: String },
    #[error("blueprint {blueprint} is not loaded")]
    BlueprintNotLoaded { blueprint: BlueprintRef },
    #[error("no transition `{transition}`; allowed here: {}", list(.allowed))]
    UnknownTransition {
        transition: String,
        allowed: Vec<AllowedTransition>,
    },
    #[error("transition `{transition}` does not start from state `{state}`; allowed here: {}", list(.allowed))]
    TransitionNotFromState {
        transition: String,
        state: String,
        allowed: Vec<AllowedTransition>,
    },
    #[error("role {role} may not take transition `{transition}`; allowed here: {}", list(.allowed))]
    TransitionRoleNotAllowed {
        transition: String,
        role: Role,
        allowed: Vec<AllowedTransition>,
    },
    #[error("transition `{transition}` needs {}; allowed here: {}", requirements(.unmet), list(.allowed))]
    TransitionRequirementsUnmet {
        transition: String,
        unmet: Vec<Requirement>,
        allowed: Vec<AllowedTransition>,
    },
    #[error("the agent does not exist")]
    AgentNotFound,
    #[error("the agent is already registered")]
    AgentAlreadyRegistered,
    #[error("agents change only their own presence")]
    NotOwnPresence,
    #[error("a ticket cannot be linked to itself")]
    LinkToSelf,
    #[error("a ticket cannot be merged into itself")]
    MergeIntoSelf,
    #[error("only a solved ticket can be rated; this one is {category}")]
    NotSolved { category: StateCategory },
    #[error("resolution {resolution} is already rated")]
    AlreadyRated { resolution: u32 },
    #[error("no SLA clock `{policy_id}`/`{metric}` due at {due_at} runs on this ticket")]
    SlaNotApplied {
        policy_id: String,
        metric: String,
        #[schemars(schema_with = "crate::ids::timestamp_schema")]
        due_at: Timestamp,
    },
    #[error("SLA clock due at {due_at} has not passed at {at}")]
    SlaNotDue {
        #[schemars(schema_with = "crate::ids::timestamp_schema")]
        due_at: Timestamp,
        #[schemars(schema_with = "crate::ids::timestamp_schema")]
        at: Timestamp,
    },
}

fn list(allowed: &[AllowedTransition]) -> String {
    if allowed.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<String> = allowed
        .iter()
        .map(|transition| format!("{} (to {})", transition.name, transition.to))
        .collect();
    names.join(", ")
}

fn requirements(unmet: &[Requirement]) -> String {
    let texts: Vec<String> = unmet.iter().map(ToString::to_string).collect();
    texts.join(", ")
}
