//! Identifiers and small value types shared by commands, events and the ticket state.
//!
//! Ids are newtypes over `Uuid` so that an agent id can never be passed where a team id is
//! expected. The shell generates them; the domain never does, because it reads no randomness.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

uuid_id!(
    /// The identity of a ticket; its event stream is `ticket-{id}`.
    TicketId
);
uuid_id!(
    /// Whoever issues a command: a customer, an agent, an automation or a channel bridge.
    ActorId
);
uuid_id!(
    /// An agent (or supervisor, or admin) who can own and work on tickets.
    AgentId
);
uuid_id!(
    /// A team (group, queue) that tickets are routed to.
    TeamId
);
uuid_id!(
    /// A customer; the requester of a ticket. The id itself is pseudonymous.
    CustomerId
);
uuid_id!(
    /// A stored file; the bytes live outside the log, the log records only their description.
    AttachmentId
);

impl TicketId {
    /// The name of the event stream that holds this ticket's history.
    pub fn stream_id(&self) -> String {
        format!("ticket-{}", self.0)
    }
}

impl ActorId {
    /// Whether this actor is the given customer; customers act only on their own tickets.
    pub fn is_customer(&self, customer: CustomerId) -> bool {
        self.0 == customer.0
    }

    /// The agent identity of this actor, for agents, supervisors and admins.
    pub fn as_agent(&self) -> AgentId {
        AgentId(self.0)
    }
}

/// The human-readable number of a ticket, shown as `#10042`.
///
/// The shell allocates it (unique under concurrency) and passes it in `CreateTicket`; the domain
/// only records it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(transparent)]
pub struct TicketNumber(pub u64);

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How urgent a ticket is; ordered from `Low` to `Urgent` so that "minimum priority" compares.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a ticket came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Web,
    Chat,
    Phone,
    Social,
    App,
    Api,
}

/// Who may see an event or an attachment. Customers see only `Public`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Public,
    Internal,
}

/// How two tickets relate. `Parent` means the other ticket is this ticket's parent.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    Related,
    Parent,
    Child,
}

/// The value of a custom field. Custom fields hold business data (order id, amount, product),
/// never personal data; see docs/domain.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Integer(i64),
    Text(String),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Bool(value) => write!(f, "{value}"),
            FieldValue::Integer(value) => write!(f, "{value}"),
            FieldValue::Text(value) => write!(f, "{value:?}"),
        }
    }
}

/// The JSON Schema of a `jiff::Timestamp` as serde writes and reads it: RFC 3339 text.
pub(crate) fn timestamp_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "format": "date-time",
    })
}
