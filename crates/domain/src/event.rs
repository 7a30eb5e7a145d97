//! Events: the facts recorded in a ticket's stream, forever.
//!
//! Each variant has a stable `event_type()` name and a `schema_version()`. The store keeps the
//! type, the version and the JSON payload apart, so a payload does not repeat its type. A
//! released payload shape never changes: a change is a new version plus an upcaster from the old
//! one (see `codec`). Personal data lives only under the top-level `pii` key of a payload, so
//! that a later issue can encrypt that one sub-object per customer.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::blueprint::{BlueprintRef, StateCategory};
use crate::command::{RecomputeCause, SlaTarget};
use crate::ids::{
    AgentId, AttachmentId, Channel, CustomerId, FieldValue, LinkKind, Priority, TeamId, TicketId,
    TicketNumber, Visibility,
};
use crate::routing::RoutingRecord;

/// Declares the `Event` enum together with each variant's name and schema version, so that the
/// list of event types can never drift from the enum.
macro_rules! events {
    ($($variant:ident = $version:literal,)*) => {
        /// Every fact a ticket stream can hold.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Event {
            $($variant($variant),)*
        }

        /// Every event type with its current schema version.
        pub const EVENT_TYPES: &[(&str, u32)] = &[$((stringify!($variant), $version),)*];

        impl Event {
            /// The stable name of this event's type, stored next to its payload.
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => stringify!($variant),)*
                }
            }

            /// The schema version this build writes for this event's type.
            pub fn schema_version(&self) -> u32 {
                match self {
                    $(Event::$variant(_) => $version,)*
                }
            }

            /// The payload as JSON text, without the type tag.
            pub fn to_payload_json(&self) -> String {
                let json = match self {
                    $(Event::$variant(payload) => serde_json::to_string(payload),)*
                };
                // Payloads are plain structs with string-keyed maps, which always serialize.
                json.expect("event payloads always serialize")
            }

            /// The payload as a JSON value, without the type tag.
            pub fn to_payload(&self) -> serde_json::Value {
                let value = match self {
                    $(Event::$variant(payload) => serde_json::to_value(payload),)*
                };
                value.expect("event payloads always serialize")
            }

            /// Decodes a payload written in the current schema version of `event_type`.
            pub(crate) fn decode_current(
                event_type: &str,
                payload: serde_json::Value,
            ) -> Option<Result<Event, serde_json::Error>> {
                match event_type {
                    $(stringify!($variant) => Some(serde_json::from_value(payload).map(Event::$variant)),)*
                    _ => None,
                }
            }

            /// Decodes a payload text written in the current schema version of `event_type`,
            /// without building an intermediate JSON value.
            pub(crate) fn decode_current_str(
                event_type: &str,
                payload: &str,
            ) -> Option<Result<Event, serde_json::Error>> {
                match event_type {
                    $(stringify!($variant) => Some(serde_json::from_str(payload).map(Event::$variant)),)*
                    _ => None,
                }
            }
        }
    };
}

events! {
    TicketCreated = 1,
    TicketFieldsUpdated = 1,
    PriorityChanged = 1,
    PriorityChangedByRule = 1,
    TagsAdded = 1,
    TagsRemoved = 1,
    TeamAssigned = 1,
    TeamTransferred = 1,
    AgentAssigned = 2,
    AgentUnassigned = 1,
    CollaboratorAdded = 2,
    CollaboratorRemoved = 1,
    PublicReplyPosted = 1,
    CustomerMessageReceived = 1,
    InternalNoteAdded = 1,
    FileAttached = 1,
    TicketLinked = 1,
    TicketMergedInto = 1,
    DuplicateMerged = 1,
    TicketTransitioned = 1,
    TicketReopened = 1,
    SatisfactionRated = 1,
    SlaApplied = 1,
    SlaWarningRaised = 1,
    SlaBreached = 1,
    SlaRecomputed = 1,
    Escalated = 1,
    CustomerUpsetFlagged = 1,
    SatisfactionSurveySent = 1,
}

impl Event {
    /// Who may see this event. Customers see only `Public` events of their own tickets; the API
    /// filters on this. Everything about internal handling (notes, assignment, SLA, priority,
    /// tags, collaborators, escalation) is internal.
    pub fn visibility(&self) -> Visibility {
        match self {
            Event::TicketCreated(_)
            | Event::TicketFieldsUpdated(_)
            | Event::PublicReplyPosted(_)
            | Event::CustomerMessageReceived(_)
            | Event::TicketLinked(_)
            | Event::TicketMergedInto(_)
            | Event::DuplicateMerged(_)
            | Event::TicketTransitioned(_)
            | Event::TicketReopened(_)
            | Event::SatisfactionRated(_)
            | Event::SatisfactionSurveySent(_) => Visibility::Public,
            Event::FileAttached(attached) => attached.visibility,
            Event::PriorityChanged(_)
            | Event::PriorityChangedByRule(_)
            | Event::TagsAdded(_)
            | Event::TagsRemoved(_)
            | Event::TeamAssigned(_)
            | Event::TeamTransferred(_)
            | Event::AgentAssigned(_)
            | Event::AgentUnassigned(_)
            | Event::CollaboratorAdded(_)
            | Event::CollaboratorRemoved(_)
            | Event::InternalNoteAdded(_)
            | Event::SlaApplied(_)
            | Event::SlaWarningRaised(_)
            | Event::SlaBreached(_)
            | Event::SlaRecomputed(_)
            | Event::Escalated(_)
            | Event::CustomerUpsetFlagged(_) => Visibility::Internal,
        }
    }

    /// Shorthand for `visibility() == Visibility::Internal`.
    pub fn is_internal(&self) -> bool {
        self.visibility() == Visibility::Internal
    }
}

/// Personal data of a created ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketCreatedPii {
    pub subject: String,
    pub description: String,
    pub requester_name: Option<String>,
    pub requester_email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketCreated {
    pub ticket_id: TicketId,
    pub number: TicketNumber,
    pub channel: Channel,
    pub requester: CustomerId,
    pub ticket_type: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub fields: BTreeMap<String, FieldValue>,
    pub blueprint: BlueprintRef,
    pub state: String,
    pub category: StateCategory,
    pub pii: TicketCreatedPii,
}

/// Personal data of a field update: only the texts that changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsUpdatedPii {
    pub subject: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketFieldsUpdated {
    pub set: BTreeMap<String, FieldValue>,
    pub unset: Vec<String>,
    pub pii: FieldsUpdatedPii,
}

/// Free text a person wrote as a reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonPii {
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityChanged {
    pub from: Priority,
    pub to: Priority,
    pub pii: ReasonPii,
}

/// Evidence may quote the customer (the keyword that matched), so it is personal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidencePii {
    pub evidence: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityChangedByRule {
    pub from: Priority,
    pub to: Priority,
    pub rule_id: String,
    pub pii: EvidencePii,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsAdded {
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsRemoved {
    pub tags: Vec<String>,
}

/// `reason` is a routing explanation written by code or an agent for auditors; it must not hold
/// personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamAssigned {
    pub from: Option<TeamId>,
    pub to: TeamId,
    pub reason: Option<String>,
}

/// A note written by a person for the receiving team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotePii {
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamTransferred {
    pub from: Option<TeamId>,
    pub to: TeamId,
    /// The agent who owned the ticket before the transfer and no longer does.
    pub unassigned: Option<AgentId>,
    pub pii: NotePii,
}

/// Version 2 added `routing`: how an automatic routing decision was made (version 1 payloads
/// read as `routing: null`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentAssigned {
    pub from: Option<AgentId>,
    pub to: AgentId,
    pub reason: Option<String>,
    pub routing: Option<RoutingRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentUnassigned {
    pub agent: AgentId,
    pub reason: Option<String>,
}

/// Version 2 added `reason` (an SLA escalation names its policy and rule); version 1 payloads
/// upcast with no reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollaboratorAdded {
    pub agent: AgentId,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollaboratorRemoved {
    pub agent: AgentId,
}

/// A message body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyPii {
    pub body: String,
}

/// The attachments, if any, were recorded by `FileAttached` events just before this one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicReplyPosted {
    pub attachments: Vec<AttachmentId>,
    pub pii: BodyPii,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerMessageReceived {
    pub attachments: Vec<AttachmentId>,
    pub pii: BodyPii,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalNoteAdded {
    pub mentions: Vec<AgentId>,
    pub pii: BodyPii,
}

/// A file name can say who the file is about, so it is personal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNamePii {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAttached {
    pub attachment: AttachmentId,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub visibility: Visibility,
    pub pii: FileNamePii,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketLinked {
    pub other: TicketId,
    pub kind: LinkKind,
}

/// An optional note written by a person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionalNotePii {
    pub note: Option<String>,
}

/// This ticket was a duplicate and is now closed, pointing at the survivor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketMergedInto {
    pub survivor: TicketId,
    pub survivor_number: TicketNumber,
    pub from: String,
    pub to: String,
    pub pii: OptionalNotePii,
}

/// A duplicate was merged into this ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateMerged {
    pub duplicate: TicketId,
    pub duplicate_number: TicketNumber,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketTransitioned {
    pub transition: String,
    pub from: String,
    pub from_category: StateCategory,
    pub to: String,
    pub to_category: StateCategory,
}

/// Why a ticket went back to work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReopenCause {
    /// Someone issued `ReopenTicket`.
    Requested,
    /// The customer wrote while the ticket was pending or solved.
    CustomerMessage,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReopenPii {
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketReopened {
    pub cause: ReopenCause,
    pub from: String,
    pub from_category: StateCategory,
    pub to: String,
    pub to_category: StateCategory,
    pub pii: ReopenPii,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentPii {
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionRated {
    pub score: u8,
    /// Which resolution of the ticket is rated: 1 for the first time it was solved.
    pub resolution: u32,
    pub pii: CommentPii,
}

/// An SLA policy now applies; the targets replace earlier clocks of the same policy and metric.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaApplied {
    pub policy_id: String,
    pub policy_version: u32,
    pub targets: Vec<SlaTarget>,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaWarningRaised {
    pub policy_id: String,
    pub metric: String,
    pub due_at: Timestamp,
    /// When the scheduler observed the clock close to due (the command's `at`).
    pub observed_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaBreached {
    pub policy_id: String,
    pub metric: String,
    pub due_at: Timestamp,
    /// When the scheduler observed the breach (the command's `at`), at or after `due_at`.
    pub observed_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalated {
    pub from_level: u8,
    pub to_level: u8,
    pub rule_id: Option<String>,
    pub reason: String,
    pub notify: Vec<AgentId>,
}

/// An SLA clock's due time moved: the old and the new due time, the business time already
/// counted (it carries over), and why. `from_policy_id` differs from `policy_id` when another
/// policy took over the clock; `from_due_at` is `None` for a metric's first clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaRecomputed {
    pub policy_id: String,
    pub policy_version: u32,
    pub metric: String,
    pub from_policy_id: Option<String>,
    pub from_due_at: Option<Timestamp>,
    pub to_due_at: Timestamp,
    pub elapsed_business_seconds: i64,
    pub cause: RecomputeCause,
    pub reason: String,
}

/// The customer is upset (the sentiment rule `rule_id` matched `evidence`, which quotes them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerUpsetFlagged {
    pub rule_id: String,
    pub pii: EvidencePii,
}

/// The customer was asked to rate resolution `resolution` (1 for the first time the ticket was
/// solved), by the automation rule `rule_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionSurveySent {
    pub resolution: u32,
    pub rule_id: String,
}
