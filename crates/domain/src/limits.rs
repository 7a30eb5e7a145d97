//! Every bound the domain enforces, in one place.
//!
//! A command that would cross a bound is rejected with `Rejection::InvalidInput`; nothing is
//! truncated silently. Text limits are in UTF-8 bytes, because that is what storage pays for
//! (a Chinese character is three bytes).

/// Subject line of a ticket.
pub const SUBJECT_BYTES_MAX: usize = 1_000;
/// Description of a ticket, a public reply, a customer message or an internal note.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// A reason, a transfer note, a CSAT comment or rule evidence: short free text.
pub const REASON_BYTES_MAX: usize = 2_000;
/// The requester's display name.
pub const NAME_BYTES_MAX: usize = 200;
/// The requester's email address (RFC 5321 path limit).
pub const EMAIL_BYTES_MAX: usize = 254;
/// A ticket type name such as `refund`.
pub const TICKET_TYPE_BYTES_MAX: usize = 64;
/// One tag.
pub const TAG_BYTES_MAX: usize = 64;
/// Tags on one ticket.
pub const TAGS_PER_TICKET_MAX: usize = 32;
/// Custom fields on one ticket.
pub const CUSTOM_FIELDS_MAX: usize = 64;
/// A custom field name.
pub const FIELD_NAME_BYTES_MAX: usize = 64;
/// A text custom field value.
pub const FIELD_TEXT_BYTES_MAX: usize = 1_024;
/// Attachments on one ticket over its whole life.
pub const ATTACHMENTS_PER_TICKET_MAX: usize = 100;
/// Attachments carried by one command (create, reply, message).
pub const ATTACHMENTS_PER_COMMAND_MAX: usize = 10;
/// An attachment's file name.
pub const ATTACHMENT_NAME_BYTES_MAX: usize = 255;
/// An attachment's content type such as `image/png`.
pub const CONTENT_TYPE_BYTES_MAX: usize = 127;
/// An attachment's size; the bytes live outside the log but the bound still holds.
pub const ATTACHMENT_SIZE_BYTES_MAX: u64 = 100 * 1024 * 1024;
/// @mentions in one internal note.
pub const MENTIONS_PER_NOTE_MAX: usize = 20;
/// Collaborators on one ticket.
pub const COLLABORATORS_MAX: usize = 50;
/// Links from one ticket to others (related, parent, child).
pub const LINKS_PER_TICKET_MAX: usize = 100;
/// Duplicates merged into one surviving ticket.
pub const MERGED_DUPLICATES_MAX: usize = 1_000;
/// A rule, policy, metric or transition identifier.
pub const IDENTIFIER_BYTES_MAX: usize = 128;
/// SLA targets applied by one policy (first response, next reply, resolution, ...).
pub const SLA_TARGETS_MAX: usize = 8;
/// SLA clocks running on one ticket at once.
pub const SLA_CLOCKS_MAX: usize = 16;
/// The highest escalation level.
pub const ESCALATION_LEVEL_MAX: u8 = 5;
/// The lowest and highest CSAT score.
pub const CSAT_SCORE_MIN: u8 = 1;
pub const CSAT_SCORE_MAX: u8 = 5;
/// Agents notified by one escalation.
pub const ESCALATION_NOTIFY_MAX: usize = 20;
/// Most escalation rules one SLA warning or breach runs.
pub const SLA_ESCALATIONS_MAX: usize = 4;
/// Most actions of one SLA escalation rule.
pub const SLA_ESCALATION_ACTIONS_MAX: usize = 8;

/// A blueprint source file.
pub const BLUEPRINT_SOURCE_BYTES_MAX: usize = 256 * 1024;
/// States in one blueprint.
pub const BLUEPRINT_STATES_MAX: usize = 64;
/// Transitions in one blueprint.
pub const BLUEPRINT_TRANSITIONS_MAX: usize = 256;
/// Requirements on one transition.
pub const TRANSITION_REQUIREMENTS_MAX: usize = 32;
/// A stored event payload that `Event::from_stored` accepts.
pub const EVENT_PAYLOAD_BYTES_MAX: usize = 1024 * 1024;
