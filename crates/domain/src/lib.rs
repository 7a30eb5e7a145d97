//! The ticket domain: commands, events, blueprints and the pure decider.
//!
//! `decide(&Command, &Ticket, &CommandContext) -> Result<Vec<Event>, Rejection>` says what a
//! command does; `evolve(Ticket, &Event) -> Ticket` folds what happened. Nothing here reads a
//! clock, generates ids, does I/O or logs: time, ids, the actor and the blueprint catalog come
//! in through `CommandContext`. Agents are an aggregate of their own (`agent`), decided and
//! folded the same way. See docs/domain.md for the rules and the formats.

mod agent;
mod blueprint;
pub mod calendar;
mod codec;
mod command;
mod context;
mod decide;
mod event;
mod ids;
pub mod limits;
mod rejection;
mod routing;
mod ticket;

pub use agent::{
    agent_command_roles, decide_agent, evolve_agent, Agent, AgentCommand, AgentDetails, AgentEvent,
    AgentPii, AgentPresenceChanged, AgentProfile, AgentProfileUpdated, AgentRegistered,
    ChangePresence, Presence, RegisterAgent, UpdateAgent, AGENT_CATEGORY, AGENT_EVENT_TYPES,
    AGENT_LANGUAGES_MAX, AGENT_NAME_BYTES_MAX, AGENT_SKILLS_MAX, AGENT_TEAMS_MAX, CAPACITY_DEFAULT,
    CAPACITY_MAX, SKILL_BYTES_MAX,
};
pub use blueprint::{
    content_type_matches, AllowedTransition, Blueprint, BlueprintCatalog, BlueprintError,
    BlueprintErrorKind, BlueprintRef, Comparison, Requirement, State, StateCategory, Transition,
    BUILTIN_BLUEPRINTS, DEFAULT_BLUEPRINT_ID,
};
pub use codec::{upcast, DecodeError, Upcaster, UPCASTERS};
pub use command::*;
pub use context::{Actor, CommandContext, Role};
pub use decide::{allowed_roles, decide, requirement_met};
pub use event::*;
pub use ids::{
    ActorId, AgentId, AttachmentId, Channel, CustomerId, FieldValue, LinkKind, Priority, TeamId,
    TicketId, TicketNumber, Visibility,
};
pub use rejection::{InputProblem, Rejection};
pub use routing::{RoutingRecord, RoutingStrategy, SkipReason, SkippedAgent, ROUTING_SKIPPED_MAX};
pub use ticket::{evolve, AttachmentSummary, SlaClock, Ticket, TicketDetails};
