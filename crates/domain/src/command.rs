//! Commands: what actors ask the ticket to do.
//!
//! `Command` is an internally tagged enum so that the HTTP API can accept it as JSON directly,
//! for example `{"type":"assign_agent","agent":"…"}`. Unknown fields are rejected by serde, so a
//! misspelt field is an error rather than silently ignored input.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{
    AgentId, AttachmentId, Channel, CustomerId, FieldValue, LinkKind, Priority, TeamId, TicketId,
    TicketNumber, Visibility,
};
use crate::routing::RoutingRecord;

/// Everything an actor can ask of a ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    CreateTicket(CreateTicket),
    UpdateFields(UpdateFields),
    SetPriority(SetPriority),
    ChangePriorityByRule(ChangePriorityByRule),
    AddTags(AddTags),
    RemoveTags(RemoveTags),
    AssignTeam(AssignTeam),
    TransferTeam(TransferTeam),
    AssignAgent(AssignAgent),
    UnassignAgent(UnassignAgent),
    AddCollaborator(AddCollaborator),
    RemoveCollaborator(RemoveCollaborator),
    PostPublicReply(PostPublicReply),
    PostCustomerMessage(PostCustomerMessage),
    AddInternalNote(AddInternalNote),
    AttachFile(AttachFile),
    LinkTicket(LinkTicket),
    MergeInto(MergeInto),
    RecordMergedDuplicate(RecordMergedDuplicate),
    TransitionTicket(TransitionTicket),
    ReopenTicket(ReopenTicket),
    RateSatisfaction(RateSatisfaction),
    ApplySla(ApplySla),
    RecordSlaWarning(RecordSlaWarning),
    RecordSlaBreach(RecordSlaBreach),
    RecomputeSla(RecomputeSla),
    Escalate(Escalate),
    FlagCustomerUpset(FlagCustomerUpset),
    SendSatisfactionSurvey(SendSatisfactionSurvey),
}

impl Command {
    /// The JSON `type` tag of this command, used in rejections.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateTicket(_) => "create_ticket",
            Command::UpdateFields(_) => "update_fields",
            Command::SetPriority(_) => "set_priority",
            Command::ChangePriorityByRule(_) => "change_priority_by_rule",
            Command::AddTags(_) => "add_tags",
            Command::RemoveTags(_) => "remove_tags",
            Command::AssignTeam(_) => "assign_team",
            Command::TransferTeam(_) => "transfer_team",
            Command::AssignAgent(_) => "assign_agent",
            Command::UnassignAgent(_) => "unassign_agent",
            Command::AddCollaborator(_) => "add_collaborator",
            Command::RemoveCollaborator(_) => "remove_collaborator",
            Command::PostPublicReply(_) => "post_public_reply",
            Command::PostCustomerMessage(_) => "post_customer_message",
            Command::AddInternalNote(_) => "add_internal_note",
            Command::AttachFile(_) => "attach_file",
            Command::LinkTicket(_) => "link_ticket",
            Command::MergeInto(_) => "merge_into",
            Command::RecordMergedDuplicate(_) => "record_merged_duplicate",
            Command::TransitionTicket(_) => "transition_ticket",
            Command::ReopenTicket(_) => "reopen_ticket",
            Command::RateSatisfaction(_) => "rate_satisfaction",
            Command::ApplySla(_) => "apply_sla",
            Command::RecordSlaWarning(_) => "record_sla_warning",
            Command::RecordSlaBreach(_) => "record_sla_breach",
            Command::RecomputeSla(_) => "recompute_sla",
            Command::Escalate(_) => "escalate",
            Command::FlagCustomerUpset(_) => "flag_customer_upset",
            Command::SendSatisfactionSurvey(_) => "send_satisfaction_survey",
        }
    }
}

/// The customer a ticket is for. Name and email are personal data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    pub id: CustomerId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// A file already stored outside the log, described for the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInput {
    pub id: AttachmentId,
    pub name: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the bytes, 64 characters.
    pub sha256: String,
}

/// Opens a ticket. The shell allocates `ticket_id` and the unique `number`; the blueprint is
/// chosen by `ticket_type` from the catalog (latest version), and recorded on the ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    pub ticket_id: TicketId,
    pub number: TicketNumber,
    pub channel: Channel,
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

/// Changes the subject, the description or custom fields. Only real changes become events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFields {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub set: BTreeMap<String, FieldValue>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// A person changes the priority and says why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPriority {
    pub priority: Priority,
    pub reason: String,
}

/// An automatic priority rule (keyword, customer tier, sentiment) changes the priority; the rule
/// and the evidence that triggered it are recorded for auditors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePriorityByRule {
    pub priority: Priority,
    pub rule_id: String,
    pub evidence: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTags {
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveTags {
    pub tags: Vec<String>,
}

/// Routes the ticket to a team. `reason` explains an automatic routing decision and is required
/// from the system role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignTeam {
    pub team: TeamId,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Hands the ticket to another team with a note for them; the current assignee is released.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferTeam {
    pub team: TeamId,
    pub note: String,
}

/// Makes an agent the owner of the ticket. `reason` explains an automatic routing decision and
/// is required from the system role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignAgent {
    pub agent: AgentId,
    #[serde(default)]
    pub reason: Option<String>,
    /// How the routing engine chose the agent; only the system records one.
    #[serde(default)]
    pub routing: Option<RoutingRecord>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnassignAgent {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddCollaborator {
    pub agent: AgentId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveCollaborator {
    pub agent: AgentId,
}

/// An answer the customer sees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostPublicReply {
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
}

/// A message from the customer, typed in a portal or relayed by a channel bridge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostCustomerMessage {
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<AttachmentInput>,
}

/// A note for colleagues, never visible to the customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddInternalNote {
    pub body: String,
    #[serde(default)]
    pub mentions: Vec<AgentId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachFile {
    pub attachment: AttachmentInput,
    #[serde(default)]
    pub visibility: Visibility,
}

/// Links this ticket to another. The other ticket learns of it only through its own command:
/// the shell issues the mirror `LinkTicket` on the other stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkTicket {
    pub other: TicketId,
    pub kind: LinkKind,
}

/// Merges this ticket (the duplicate) into the survivor: it is closed and points there. The
/// shell then issues `RecordMergedDuplicate` on the survivor's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeInto {
    pub survivor: TicketId,
    pub survivor_number: TicketNumber,
    #[serde(default)]
    pub note: Option<String>,
}

/// Records on the survivor that a duplicate was merged into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordMergedDuplicate {
    pub duplicate: TicketId,
    pub duplicate_number: TicketNumber,
}

/// Moves the ticket along a named transition of its blueprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionTicket {
    pub transition: String,
}

/// Reopens a solved (or pending) ticket into the blueprint's `reopen_to` state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenTicket {
    pub reason: String,
}

/// The customer's satisfaction with the latest resolution: 1 to 5, once per resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateSatisfaction {
    pub score: u8,
    #[serde(default)]
    pub comment: Option<String>,
}

/// One SLA target: a metric (e.g. `first_response`) and when it is due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaTarget {
    pub metric: String,
    #[schemars(schema_with = "crate::ids::timestamp_schema")]
    pub due_at: Timestamp,
}

/// The SLA scheduler applies a policy; `reason` says why this policy (priority, customer tier).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplySla {
    pub policy_id: String,
    pub policy_version: u32,
    pub targets: Vec<SlaTarget>,
    pub reason: String,
}

/// A running SLA clock is close to its due time. `escalation` names the policy's rule whose
/// actions run with the warning (recorded only if the warning is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSlaWarning {
    pub policy_id: String,
    pub metric: String,
    #[schemars(schema_with = "crate::ids::timestamp_schema")]
    pub due_at: Timestamp,
    #[serde(default)]
    pub escalations: Vec<SlaEscalation>,
}

/// A running SLA clock passed its due time. Recorded at most once per clock; the escalations
/// run with it, in the same append, so they too happen once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordSlaBreach {
    pub policy_id: String,
    pub metric: String,
    #[schemars(schema_with = "crate::ids::timestamp_schema")]
    pub due_at: Timestamp,
    #[serde(default)]
    pub escalations: Vec<SlaEscalation>,
}

/// One escalation rule of an SLA policy and the actions it takes. Each action that changes
/// something becomes its own event, naming the policy and the rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaEscalation {
    pub rule: String,
    pub actions: Vec<EscalationAction>,
}

/// What an escalation rule does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum EscalationAction {
    /// Raises the priority to at least `priority` (never lowers it).
    RaisePriority { priority: Priority },
    /// Routes the ticket to the escalation team.
    ReassignTeam { team: TeamId },
    /// Adds a collaborator (the supervisor).
    AddCollaborator { agent: AgentId },
    /// Raises the escalation level by one and notifies these agents.
    Notify { agents: Vec<AgentId> },
}

/// Why an SLA clock's due time moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecomputeCause {
    /// A new cycle of a repeating metric started (a customer message waits for a reply, an
    /// agent update restarts the periodic update clock); its warning and breach are new.
    NewCycle,
    /// The clock left a pause (pending, or solved for resolution): the due time moves out by
    /// the paused time.
    Resumed,
    /// The priority changed, so the target did.
    PriorityChanged,
    /// Another policy now matches the ticket.
    PolicyChanged,
}

/// The SLA scheduler moves one clock's due time. Targets are recomputed from the clock's
/// original start; `elapsed_business_seconds` is the business time already counted, which
/// carries over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecomputeSla {
    pub policy_id: String,
    pub policy_version: u32,
    pub metric: String,
    #[schemars(schema_with = "crate::ids::timestamp_schema")]
    pub due_at: Timestamp,
    pub elapsed_business_seconds: i64,
    pub cause: RecomputeCause,
    pub reason: String,
}

/// Raises the escalation level. The system must name the rule that escalated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalate {
    pub level: u8,
    #[serde(default)]
    pub rule_id: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub notify: Vec<AgentId>,
}

/// The sentiment rule found the customer upset; `evidence` quotes what matched. A ticket is
/// flagged once: a later angry message changes nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagCustomerUpset {
    pub rule_id: String,
    pub evidence: String,
}

/// A time-based automation asks the customer to rate the latest resolution. Once per
/// resolution; the ticket may be solved or already closed, and a surveyed closed ticket still
/// accepts the customer's rating.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSatisfactionSurvey {
    pub rule_id: String,
}
