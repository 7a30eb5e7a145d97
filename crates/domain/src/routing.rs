//! The audit record of an automatic routing decision, carried by `AssignAgent` and kept in
//! `AgentAssigned`: which team and strategy, what narrowed the candidates (required skills,
//! the detected language, the VIP group), how many agents were candidates and which were
//! skipped and why. The routing engine (crate `routing`) fills it; the domain only checks its
//! bounds and records it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agent::{Presence, AGENT_SKILLS_MAX, SKILL_BYTES_MAX};
use crate::ids::{AgentId, TeamId};
use crate::rejection::InputProblem;

/// Skipped agents listed one by one in a record; the rest are only counted (`skipped_total`),
/// so that a team of a thousand agents does not make a megabyte event.
pub const ROUTING_SKIPPED_MAX: usize = 16;

/// How a team picks among its candidates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    /// The next candidate after the team's last routed agent, in agent id order.
    #[default]
    RoundRobin,
    /// The candidate with the most spare capacity; ties go to the one waiting longest since
    /// their last assignment.
    LeastLoaded,
}

impl RoutingStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingStrategy::RoundRobin => "round_robin",
            RoutingStrategy::LeastLoaded => "least_loaded",
        }
    }
}

/// Why an agent of the team was not a candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum SkipReason {
    NotAvailable {
        presence: Presence,
    },
    AtCapacity {
        load: u32,
        capacity: u32,
    },
    MissingSkill {
        skill: String,
    },
    NoLanguage {
        language: String,
    },
    /// The ticket's customer is VIP and this agent is not in the team's VIP group, which has
    /// a candidate.
    NotInVipGroup,
}

/// One skipped agent: `{"agent": …, "why": "at_capacity", "load": 20, "capacity": 20}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedAgent {
    pub agent: AgentId,
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// How the routing engine chose an agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRecord {
    pub team: TeamId,
    pub strategy: RoutingStrategy,
    /// Skills the ticket needs (from its type and tags), all of which the agent has.
    pub required_skills: Vec<String>,
    /// The language detected in the ticket's text (ISO 639-1), when the team routes by it.
    pub language: Option<String>,
    /// Whether the ticket was routed within the team's VIP group.
    pub vip_group: bool,
    /// Agents of the team looked at (least loaded without narrowing reads its ranking of
    /// online members from the top, and stops at the first that fits).
    pub considered: u32,
    /// Agents looked at that could have taken the ticket, the chosen one included.
    pub candidates: u32,
    /// The first `ROUTING_SKIPPED_MAX` agents skipped, with why.
    pub skipped: Vec<SkippedAgent>,
    pub skipped_total: u32,
}

impl RoutingRecord {
    /// The bounds a record must keep: `(field, problem)` of the first it breaks.
    pub(crate) fn check(&self) -> Result<(), (&'static str, InputProblem)> {
        if self.skipped.len() > ROUTING_SKIPPED_MAX {
            return Err((
                "routing.skipped",
                InputProblem::TooMany {
                    max: ROUTING_SKIPPED_MAX,
                },
            ));
        }
        if self.required_skills.len() > AGENT_SKILLS_MAX {
            return Err((
                "routing.required_skills",
                InputProblem::TooMany {
                    max: AGENT_SKILLS_MAX,
                },
            ));
        }
        let words = self
            .required_skills
            .iter()
            .chain(self.language.iter())
            .chain(
                self.skipped
                    .iter()
                    .filter_map(|skipped| match &skipped.reason {
                        SkipReason::MissingSkill { skill } => Some(skill),
                        SkipReason::NoLanguage { language } => Some(language),
                        _ => None,
                    }),
            );
        for word in words {
            if word.len() > SKILL_BYTES_MAX {
                return Err((
                    "routing",
                    InputProblem::TooLong {
                        max_bytes: SKILL_BYTES_MAX,
                    },
                ));
            }
        }
        Ok(())
    }
}
