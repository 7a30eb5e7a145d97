//! Reading stored events back: `(event_type, schema_version, payload)` → `Event`, upcasting
//! payloads written by older schema versions.
//!
//! An upcaster rewrites a payload of version `n` into version `n + 1` as plain JSON, so old
//! payloads are never touched in the log and every version ever released stays readable. The
//! chain runs step by step until the current version, then the payload is decoded strictly
//! (unknown fields are errors), which is what catches a shape that drifted without a new version.

use serde_json::Value;

use crate::event::{Event, EVENT_TYPES};
use crate::limits::EVENT_PAYLOAD_BYTES_MAX;

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type `{event_type}`")]
    UnknownEventType { event_type: String },
    #[error("`{event_type}` schema version {version} is not supported (current is {current})")]
    UnsupportedVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("no upcaster for `{event_type}` from schema version {version}")]
    MissingUpcaster { event_type: String, version: u32 },
    #[error("`{event_type}` v{version} payload is {bytes} bytes, over the {max} byte limit")]
    PayloadTooLarge {
        event_type: String,
        version: u32,
        bytes: usize,
        max: usize,
    },
    #[error("`{event_type}` v{version} payload is malformed: {message}")]
    Malformed {
        event_type: String,
        version: u32,
        message: String,
    },
}

/// One step of schema evolution: rewrites a payload of `event_type` from `from_version` to
/// `from_version + 1`.
#[derive(Clone, Copy, Debug)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from_version: u32,
    pub apply: fn(Value) -> Result<Value, String>,
}

/// Every upcaster this build knows; the golden file of each old version stays.
pub const UPCASTERS: &[Upcaster] = &[
    Upcaster {
        event_type: "CollaboratorAdded",
        from_version: 1,
        apply: collaborator_added_v1_to_v2,
    },
    Upcaster {
        event_type: "AgentAssigned",
        from_version: 1,
        apply: agent_assigned_v1_to_v2,
    },
];

/// `CollaboratorAdded` v2 added `reason`; a v1 collaborator was added by a person, for no
/// recorded reason.
fn collaborator_added_v1_to_v2(mut value: Value) -> Result<Value, String> {
    let object = value.as_object_mut().ok_or("payload is not an object")?;
    object.insert("reason".to_owned(), Value::Null);
    Ok(value)
}

/// `AgentAssigned` v2 records the routing decision; a v1 assignment had none.
fn agent_assigned_v1_to_v2(mut value: Value) -> Result<Value, String> {
    let object = value.as_object_mut().ok_or("payload is not an object")?;
    object.insert("routing".to_owned(), Value::Null);
    Ok(value)
}

impl Event {
    /// Decodes an event as the store recorded it, upcasting older schema versions.
    pub fn from_stored(
        event_type: &str,
        schema_version: u32,
        payload: &str,
    ) -> Result<Event, DecodeError> {
        decode_with(UPCASTERS, event_type, schema_version, payload)
    }
}

fn decode_with(
    upcasters: &[Upcaster],
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<Event, DecodeError> {
    let Some(&(_, current)) = EVENT_TYPES.iter().find(|(name, _)| *name == event_type) else {
        return Err(DecodeError::UnknownEventType {
            event_type: event_type.to_owned(),
        });
    };
    if payload.len() > EVENT_PAYLOAD_BYTES_MAX {
        return Err(DecodeError::PayloadTooLarge {
            event_type: event_type.to_owned(),
            version: schema_version,
            bytes: payload.len(),
            max: EVENT_PAYLOAD_BYTES_MAX,
        });
    }
    let malformed = |error: serde_json::Error| DecodeError::Malformed {
        event_type: event_type.to_owned(),
        version: schema_version,
        message: error.to_string(),
    };
    if schema_version == current {
        // The common case decodes straight from text, without an intermediate `Value`.
        return Event::decode_current_str(event_type, payload)
            .expect("event type was found in EVENT_TYPES")
            .map_err(malformed);
    }
    if schema_version == 0 || schema_version > current {
        return Err(DecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
            current,
        });
    }
    let value: Value = serde_json::from_str(payload).map_err(malformed)?;
    let value = upcast(upcasters, event_type, schema_version, current, value)?;
    Event::decode_current(event_type, value)
        .expect("event type was found in EVENT_TYPES")
        .map_err(malformed)
}

/// Runs the upcaster chain of `event_type` from `from_version` up to `to_version`, one step at a
/// time. Public so that the chain can be tested with a table of its own.
pub fn upcast(
    upcasters: &[Upcaster],
    event_type: &str,
    from_version: u32,
    to_version: u32,
    mut value: Value,
) -> Result<Value, DecodeError> {
    for version in from_version..to_version {
        let Some(upcaster) = upcasters
            .iter()
            .find(|upcaster| upcaster.event_type == event_type && upcaster.from_version == version)
        else {
            return Err(DecodeError::MissingUpcaster {
                event_type: event_type.to_owned(),
                version,
            });
        };
        value = (upcaster.apply)(value).map_err(|message| DecodeError::Malformed {
            event_type: event_type.to_owned(),
            version,
            message,
        })?;
    }
    Ok(value)
}
