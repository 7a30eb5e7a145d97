//! `decide`: given a command, the ticket and the context, the events to record or the rule that
//! refuses them.
//!
//! Checks run in a fixed order so that a rejection is predictable: the role may issue the
//! command at all, the ticket exists, a customer owns it, it is not closed, the input is well
//! formed and within limits, and finally the rules of the command itself. A command that would
//! change nothing returns no events, which makes retries by automations harmless.

use std::collections::BTreeSet;

use crate::blueprint::{content_type_matches, Blueprint, Requirement, StateCategory};
use crate::command::{
    AddInternalNote, AddTags, ApplySla, AssignAgent, AssignTeam, AttachFile, AttachmentInput,
    ChangePriorityByRule, Command, CreateTicket, Escalate, EscalationAction, LinkTicket, MergeInto,
    PostCustomerMessage, PostPublicReply, RateSatisfaction, RecomputeCause, RecomputeSla,
    RecordMergedDuplicate, RecordSlaBreach, RecordSlaWarning, RemoveTags, ReopenTicket,
    SetPriority, SlaEscalation, TransferTeam, TransitionTicket, UnassignAgent, UpdateFields,
};
use crate::context::{CommandContext, Role};
use crate::event::{
    AgentAssigned, AgentUnassigned, BodyPii, CollaboratorAdded, CollaboratorRemoved, CommentPii,
    CustomerMessageReceived, CustomerUpsetFlagged, DuplicateMerged, Escalated, Event, EvidencePii,
    FieldsUpdatedPii, FileAttached, FileNamePii, InternalNoteAdded, NotePii, OptionalNotePii,
    PriorityChanged, PriorityChangedByRule, PublicReplyPosted, ReasonPii, ReopenCause, ReopenPii,
    SatisfactionRated, SatisfactionSurveySent, SlaApplied, SlaBreached, SlaRecomputed,
    SlaWarningRaised, TagsAdded, TagsRemoved, TeamAssigned, TeamTransferred, TicketCreated,
    TicketCreatedPii, TicketFieldsUpdated, TicketLinked, TicketMergedInto, TicketReopened,
    TicketTransitioned,
};
use crate::ids::{AttachmentId, FieldValue, Visibility};
use crate::limits::*;
use crate::rejection::{InputProblem, Rejection};
use crate::ticket::{Ticket, TicketDetails};

/// Decides what a command does to a ticket.
pub fn decide(
    command: &Command,
    ticket: &Ticket,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    let role = ctx.actor.role;
    if !allowed_roles(command).contains(&role) {
        return Err(Rejection::RoleNotAllowed {
            command: command.name().to_owned(),
            role,
        });
    }
    if let Command::CreateTicket(create) = command {
        return create_ticket(create, ticket, ctx);
    }
    let Some(details) = &ticket.details else {
        return Err(Rejection::TicketNotFound);
    };
    if role == Role::Customer && !ctx.actor.id.is_customer(details.requester) {
        return Err(Rejection::NotOwnTicket);
    }
    // A survey may follow the close, and the customer it asked may still answer it.
    let surveyed =
        details.resolutions > 0 && details.surveyed_resolution == Some(details.resolutions);
    let accepted_when_closed = matches!(
        command,
        Command::LinkTicket(_)
            | Command::RecordMergedDuplicate(_)
            | Command::SendSatisfactionSurvey(_)
    ) || (surveyed && matches!(command, Command::RateSatisfaction(_)));
    if details.category == StateCategory::Closed && !accepted_when_closed {
        return Err(Rejection::TicketClosed);
    }
    match command {
        Command::CreateTicket(_) => Err(Rejection::TicketAlreadyExists),
        Command::UpdateFields(update) => update_fields(update, details),
        Command::SetPriority(set) => set_priority(set, details),
        Command::ChangePriorityByRule(change) => change_priority_by_rule(change, details),
        Command::AddTags(add) => add_tags(add, details),
        Command::RemoveTags(remove) => remove_tags(remove, details),
        Command::AssignTeam(assign) => assign_team(assign, details, role),
        Command::TransferTeam(transfer) => transfer_team(transfer, details),
        Command::AssignAgent(assign) => assign_agent(assign, details, role),
        Command::UnassignAgent(unassign) => unassign_agent(unassign, details),
        Command::AddCollaborator(add) => {
            if details.collaborators.contains(&add.agent) {
                return Ok(vec![]);
            }
            if details.collaborators.len() >= COLLABORATORS_MAX {
                return Err(invalid(
                    "agent",
                    InputProblem::TooMany {
                        max: COLLABORATORS_MAX,
                    },
                ));
            }
            Ok(vec![Event::CollaboratorAdded(CollaboratorAdded {
                agent: add.agent,
                reason: None,
            })])
        }
        Command::RemoveCollaborator(remove) => {
            if !details.collaborators.contains(&remove.agent) {
                return Ok(vec![]);
            }
            Ok(vec![Event::CollaboratorRemoved(CollaboratorRemoved {
                agent: remove.agent,
            })])
        }
        Command::PostPublicReply(reply) => post_public_reply(reply, details),
        Command::PostCustomerMessage(message) => post_customer_message(message, details, ctx),
        Command::AddInternalNote(note) => add_internal_note(note),
        Command::AttachFile(attach) => attach_file(attach, details, role),
        Command::LinkTicket(link) => link_ticket(link, details),
        Command::MergeInto(merge) => merge_into(merge, details, ctx),
        Command::RecordMergedDuplicate(record) => record_merged_duplicate(record, details),
        Command::TransitionTicket(transition) => transition_ticket(transition, details, ctx),
        Command::ReopenTicket(reopen) => reopen_ticket(reopen, details, ctx),
        Command::RateSatisfaction(rate) => rate_satisfaction(rate, details),
        Command::ApplySla(apply) => apply_sla(apply, details),
        Command::RecordSlaWarning(warning) => record_sla_warning(warning, details, ctx),
        Command::RecordSlaBreach(breach) => record_sla_breach(breach, details, ctx),
        Command::RecomputeSla(recompute) => recompute_sla(recompute, details),
        Command::Escalate(escalate) => escalate_ticket(escalate, details, role),
        Command::SendSatisfactionSurvey(survey) => {
            check_token("rule_id", &survey.rule_id, IDENTIFIER_BYTES_MAX)?;
            let rated_or_asked = details.rated_resolution == Some(details.resolutions) || surveyed;
            let ends_a_resolution = matches!(
                details.category,
                StateCategory::Solved | StateCategory::Closed
            ) && details.resolutions > 0;
            if !ends_a_resolution {
                return Err(Rejection::NotSolved {
                    category: details.category,
                });
            }
            if rated_or_asked {
                return Ok(vec![]);
            }
            Ok(vec![Event::SatisfactionSurveySent(
                SatisfactionSurveySent {
                    resolution: details.resolutions,
                    rule_id: survey.rule_id.clone(),
                },
            )])
        }
        Command::FlagCustomerUpset(flag) => {
            check_token("rule_id", &flag.rule_id, IDENTIFIER_BYTES_MAX)?;
            check_text("evidence", &flag.evidence, REASON_BYTES_MAX)?;
            if details.customer_upset {
                return Ok(vec![]);
            }
            Ok(vec![Event::CustomerUpsetFlagged(CustomerUpsetFlagged {
                rule_id: flag.rule_id.clone(),
                pii: EvidencePii {
                    evidence: flag.evidence.clone(),
                },
            })])
        }
    }
}

/// Which roles may issue a command at all. Transitions are further limited by the blueprint;
/// customers are further limited to their own tickets.
pub fn allowed_roles(command: &Command) -> &'static [Role] {
    use Role::*;
    const EVERYONE: &[Role] = &[Customer, Agent, Supervisor, Admin, System, Integration];
    const STAFF: &[Role] = &[Agent, Supervisor, Admin];
    const STAFF_AND_SYSTEM: &[Role] = &[Agent, Supervisor, Admin, System];
    match command {
        Command::CreateTicket(_) | Command::AttachFile(_) | Command::TransitionTicket(_) => {
            EVERYONE
        }
        Command::UpdateFields(_)
        | Command::AddTags(_)
        | Command::RemoveTags(_)
        | Command::AssignTeam(_)
        | Command::TransferTeam(_)
        | Command::AssignAgent(_)
        | Command::UnassignAgent(_)
        | Command::PostPublicReply(_)
        | Command::AddInternalNote(_)
        | Command::LinkTicket(_)
        | Command::RecordMergedDuplicate(_)
        | Command::Escalate(_) => STAFF_AND_SYSTEM,
        Command::SetPriority(_)
        | Command::AddCollaborator(_)
        | Command::RemoveCollaborator(_)
        | Command::MergeInto(_) => STAFF,
        Command::ChangePriorityByRule(_)
        | Command::ApplySla(_)
        | Command::RecordSlaWarning(_)
        | Command::RecordSlaBreach(_)
        | Command::RecomputeSla(_)
        | Command::FlagCustomerUpset(_)
        | Command::SendSatisfactionSurvey(_) => &[System],
        Command::PostCustomerMessage(_) | Command::RateSatisfaction(_) => &[Customer, Integration],
        Command::ReopenTicket(_) => &[Customer, Agent, Supervisor, Admin, System],
    }
}

fn invalid(field: &str, problem: InputProblem) -> Rejection {
    Rejection::InvalidInput {
        field: field.to_owned(),
        problem,
    }
}

/// Free text: not blank, at most `max_bytes`.
fn check_text(field: &str, value: &str, max_bytes: usize) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        return Err(invalid(field, InputProblem::Empty));
    }
    check_length(field, value, max_bytes)
}

fn check_length(field: &str, value: &str, max_bytes: usize) -> Result<(), Rejection> {
    if value.len() > max_bytes {
        return Err(invalid(field, InputProblem::TooLong { max_bytes }));
    }
    Ok(())
}

fn check_optional_text(
    field: &str,
    value: Option<&String>,
    max_bytes: usize,
) -> Result<(), Rejection> {
    value.map_or(Ok(()), |value| check_text(field, value, max_bytes))
}

/// A token such as a tag, rule id or metric: no whitespace or control characters.
fn check_token(field: &str, value: &str, max_bytes: usize) -> Result<(), Rejection> {
    check_text(field, value, max_bytes)?;
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            InputProblem::Malformed {
                expected: "no whitespace or control characters".to_owned(),
            },
        ));
    }
    Ok(())
}

/// Field names and ticket types: lowercase identifiers, as blueprints name them.
fn check_name(field: &str, value: &str, max_bytes: usize) -> Result<(), Rejection> {
    check_length(field, value, max_bytes)?;
    if !crate::blueprint::is_name(value) {
        return Err(invalid(
            field,
            InputProblem::Malformed {
                expected: "lowercase letters, digits and `_`, starting with a letter".to_owned(),
            },
        ));
    }
    Ok(())
}

fn check_field_value(value: &FieldValue) -> Result<(), Rejection> {
    match value {
        FieldValue::Text(text) => check_length("fields", text, FIELD_TEXT_BYTES_MAX),
        FieldValue::Bool(_) | FieldValue::Integer(_) => Ok(()),
    }
}

fn check_tags(tags: &[String]) -> Result<BTreeSet<String>, Rejection> {
    if tags.len() > TAGS_PER_TICKET_MAX {
        return Err(invalid(
            "tags",
            InputProblem::TooMany {
                max: TAGS_PER_TICKET_MAX,
            },
        ));
    }
    for tag in tags {
        check_token("tags", tag, TAG_BYTES_MAX)?;
    }
    Ok(tags.iter().cloned().collect())
}

fn check_attachment(attachment: &AttachmentInput) -> Result<(), Rejection> {
    check_text(
        "attachment.name",
        &attachment.name,
        ATTACHMENT_NAME_BYTES_MAX,
    )?;
    check_text(
        "attachment.content_type",
        &attachment.content_type,
        CONTENT_TYPE_BYTES_MAX,
    )?;
    // The essence (`type/subtype`) must be a concrete type; parameters such as
    // `; charset=utf-8` are kept as given and ignored by matching.
    let essence = attachment
        .content_type
        .split(';')
        .next()
        .unwrap_or_default();
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"*/;\"()<>@,:[]?={}".contains(&b))
    };
    let well_formed = essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| token(kind) && token(subtype));
    if !well_formed || attachment.content_type.chars().any(char::is_control) {
        return Err(invalid(
            "attachment.content_type",
            InputProblem::Malformed {
                expected: "a content type such as image/png".to_owned(),
            },
        ));
    }
    if attachment.size_bytes > ATTACHMENT_SIZE_BYTES_MAX {
        return Err(invalid(
            "attachment.size_bytes",
            InputProblem::OutOfRange {
                min: 0,
                max: ATTACHMENT_SIZE_BYTES_MAX,
            },
        ));
    }
    let is_sha256 = attachment.sha256.len() == 64
        && attachment
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !is_sha256 {
        return Err(invalid(
            "attachment.sha256",
            InputProblem::Malformed {
                expected: "64 lowercase hex digits".to_owned(),
            },
        ));
    }
    Ok(())
}

/// Validates the attachments of a command and records the new ones; ids already on the ticket
/// are referenced again without a second `FileAttached`.
fn attach_all(
    attachments: &[AttachmentInput],
    details: Option<&TicketDetails>,
    visibility: Visibility,
    events: &mut Vec<Event>,
) -> Result<Vec<AttachmentId>, Rejection> {
    if attachments.len() > ATTACHMENTS_PER_COMMAND_MAX {
        return Err(invalid(
            "attachments",
            InputProblem::TooMany {
                max: ATTACHMENTS_PER_COMMAND_MAX,
            },
        ));
    }
    let mut ids = Vec::with_capacity(attachments.len());
    let existing = details.map_or(0, |details| details.attachments.len());
    let mut added = 0;
    for attachment in attachments {
        check_attachment(attachment)?;
        if ids.contains(&attachment.id) {
            return Err(invalid(
                "attachments",
                InputProblem::Duplicate {
                    value: attachment.id.to_string(),
                },
            ));
        }
        ids.push(attachment.id);
        let known = details.is_some_and(|details| {
            details
                .attachments
                .iter()
                .any(|summary| summary.id == attachment.id)
        });
        if known {
            continue;
        }
        added += 1;
        if existing + added > ATTACHMENTS_PER_TICKET_MAX {
            return Err(invalid(
                "attachments",
                InputProblem::TooMany {
                    max: ATTACHMENTS_PER_TICKET_MAX,
                },
            ));
        }
        events.push(Event::FileAttached(FileAttached {
            attachment: attachment.id,
            content_type: attachment.content_type.clone(),
            size_bytes: attachment.size_bytes,
            sha256: attachment.sha256.clone(),
            visibility,
            pii: FileNamePii {
                name: attachment.name.clone(),
            },
        }));
    }
    Ok(ids)
}

fn blueprint_of<'a>(
    details: &TicketDetails,
    ctx: &CommandContext<'a>,
) -> Result<&'a Blueprint, Rejection> {
    ctx.blueprints
        .get(&details.blueprint.id, details.blueprint.version)
        .ok_or_else(|| Rejection::BlueprintNotLoaded {
            blueprint: details.blueprint.clone(),
        })
}

fn create_ticket(
    create: &CreateTicket,
    ticket: &Ticket,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    if ticket.details.is_some() {
        return Err(Rejection::TicketAlreadyExists);
    }
    if ctx.actor.role == Role::Customer && !ctx.actor.id.is_customer(create.requester.id) {
        return Err(Rejection::NotOwnTicket);
    }
    check_text("subject", &create.subject, SUBJECT_BYTES_MAX)?;
    check_length("description", &create.description, BODY_BYTES_MAX)?;
    check_name("ticket_type", &create.ticket_type, TICKET_TYPE_BYTES_MAX)?;
    check_optional_text(
        "requester.name",
        create.requester.name.as_ref(),
        NAME_BYTES_MAX,
    )?;
    if let Some(email) = &create.requester.email {
        check_token("requester.email", email, EMAIL_BYTES_MAX)?;
        let well_formed = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
        if !well_formed {
            return Err(invalid(
                "requester.email",
                InputProblem::Malformed {
                    expected: "an email address".to_owned(),
                },
            ));
        }
    }
    let tags = check_tags(&create.tags)?;
    if create.fields.len() > CUSTOM_FIELDS_MAX {
        return Err(invalid(
            "fields",
            InputProblem::TooMany {
                max: CUSTOM_FIELDS_MAX,
            },
        ));
    }
    for (name, value) in &create.fields {
        check_name("fields", name, FIELD_NAME_BYTES_MAX)?;
        check_field_value(value)?;
    }
    let blueprint = ctx
        .blueprints
        .for_ticket_type(&create.ticket_type)
        .ok_or_else(|| Rejection::NoBlueprintForType {
            ticket_type: create.ticket_type.clone(),
        })?;
    let initial = blueprint
        .state(&blueprint.initial)
        .expect("a loaded blueprint's initial state exists");

    let mut events = Vec::with_capacity(1 + create.attachments.len());
    events.push(Event::TicketCreated(TicketCreated {
        ticket_id: create.ticket_id,
        number: create.number,
        channel: create.channel,
        requester: create.requester.id,
        ticket_type: create.ticket_type.clone(),
        priority: create.priority,
        tags: tags.into_iter().collect(),
        fields: create.fields.clone(),
        blueprint: blueprint.reference(),
        state: initial.name.clone(),
        category: initial.category,
        pii: TicketCreatedPii {
            subject: create.subject.clone(),
            description: create.description.clone(),
            requester_name: create.requester.name.clone(),
            requester_email: create.requester.email.clone(),
        },
    }));
    attach_all(&create.attachments, None, Visibility::Public, &mut events)?;
    Ok(events)
}

fn update_fields(update: &UpdateFields, details: &TicketDetails) -> Result<Vec<Event>, Rejection> {
    if let Some(subject) = &update.subject {
        check_text("subject", subject, SUBJECT_BYTES_MAX)?;
    }
    if let Some(description) = &update.description {
        check_length("description", description, BODY_BYTES_MAX)?;
    }
    if update.set.len() > CUSTOM_FIELDS_MAX || update.unset.len() > CUSTOM_FIELDS_MAX {
        return Err(invalid(
            "fields",
            InputProblem::TooMany {
                max: CUSTOM_FIELDS_MAX,
            },
        ));
    }
    for (name, value) in &update.set {
        check_name("set", name, FIELD_NAME_BYTES_MAX)?;
        check_field_value(value)?;
    }
    for name in &update.unset {
        check_name("unset", name, FIELD_NAME_BYTES_MAX)?;
        if update.set.contains_key(name) {
            return Err(invalid(
                "unset",
                InputProblem::Duplicate {
                    value: name.clone(),
                },
            ));
        }
    }
    let set: std::collections::BTreeMap<String, FieldValue> = update
        .set
        .iter()
        .filter(|(name, value)| details.fields.get(*name) != Some(*value))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let unset: BTreeSet<String> = update
        .unset
        .iter()
        .filter(|name| details.fields.contains_key(*name))
        .cloned()
        .collect();
    let added = set
        .keys()
        .filter(|name| !details.fields.contains_key(*name))
        .count();
    if details.fields.len() + added - unset.len() > CUSTOM_FIELDS_MAX {
        return Err(invalid(
            "set",
            InputProblem::TooMany {
                max: CUSTOM_FIELDS_MAX,
            },
        ));
    }
    let pii = FieldsUpdatedPii {
        subject: update
            .subject
            .as_ref()
            .filter(|subject| **subject != details.subject)
            .cloned(),
        description: update
            .description
            .as_ref()
            .filter(|description| **description != details.description)
            .cloned(),
    };
    if set.is_empty() && unset.is_empty() && pii.subject.is_none() && pii.description.is_none() {
        return Ok(vec![]);
    }
    Ok(vec![Event::TicketFieldsUpdated(TicketFieldsUpdated {
        set,
        unset: unset.into_iter().collect(),
        pii,
    })])
}

fn set_priority(set: &SetPriority, details: &TicketDetails) -> Result<Vec<Event>, Rejection> {
    check_text("reason", &set.reason, REASON_BYTES_MAX)?;
    if set.priority == details.priority {
        return Ok(vec![]);
    }
    Ok(vec![Event::PriorityChanged(PriorityChanged {
        from: details.priority,
        to: set.priority,
        pii: ReasonPii {
            reason: set.reason.clone(),
        },
    })])
}

fn change_priority_by_rule(
    change: &ChangePriorityByRule,
    details: &TicketDetails,
) -> Result<Vec<Event>, Rejection> {
    check_token("rule_id", &change.rule_id, IDENTIFIER_BYTES_MAX)?;
    check_text("evidence", &change.evidence, REASON_BYTES_MAX)?;
    if change.priority == details.priority {
        return Ok(vec![]);
    }
    Ok(vec![Event::PriorityChangedByRule(PriorityChangedByRule {
        from: details.priority,
        to: change.priority,
        rule_id: change.rule_id.clone(),
        pii: EvidencePii {
            evidence: change.evidence.clone(),
        },
    })])
}

fn add_tags(add: &AddTags, details: &TicketDetails) -> Result<Vec<Event>, Rejection> {
    let tags = check_tags(&add.tags)?;
    let new: Vec<String> = tags
        .into_iter()
        .filter(|tag| !details.tags.contains(tag))
        .collect();
    if new.is_empty() {
        return Ok(vec![]);
    }
    if details.tags.len() + new.len() > TAGS_PER_TICKET_MAX {
        return Err(invalid(
            "tags",
            InputProblem::TooMany {
                max: TAGS_PER_TICKET_MAX,
            },
        ));
    }
    Ok(vec![Event::TagsAdded(TagsAdded { tags: new })])
}

fn remove_tags(remove: &RemoveTags, details: &TicketDetails) -> Result<Vec<Event>, Rejection> {
    let tags = check_tags(&remove.tags)?;
    let present: Vec<String> = tags
        .into_iter()
        .filter(|tag| details.tags.contains(tag))
        .collect();
    if present.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![Event::TagsRemoved(TagsRemoved { tags: present })])
}

/// Automatic decisions must say why; people may.
fn check_reason(reason: Option<&String>, role: Role) -> Result<(), Rejection> {
    if role == Role::System && reason.is_none() {
        return Err(invalid("reason", InputProblem::Required));
    }
    check_optional_text("reason", reason, REASON_BYTES_MAX)
}

fn assign_team(
    assign: &AssignTeam,
    details: &TicketDetails,
    role: Role,
) -> Result<Vec<Event>, Rejection> {
    check_reason(assign.reason.as_ref(), role)?;
    if details.team == Some(assign.team) {
        return Ok(vec![]);
    }
    Ok(vec![Event::TeamAssigned(TeamAssigned {
        from: details.team,
        to: assign.team,
        reason: assign.reason.clone(),
    })])
}

fn transfer_team(
    transfer: &TransferTeam,
    details: &TicketDetails,
) -> Result<Vec<Event>, Rejection> {
    check_text("note", &transfer.note, REASON_BYTES_MAX)?;
    if details.team == Some(transfer.team) {
        return Ok(vec![]);
    }
    Ok(vec![Event::TeamTransferred(TeamTransferred {
        from: details.team,
        to: transfer.team,
        unassigned: details.assignee,
        pii: NotePii {
            note: transfer.note.clone(),
        },
    })])
}

fn assign_agent(
    assign: &AssignAgent,
    details: &TicketDetails,
    role: Role,
) -> Result<Vec<Event>, Rejection> {
    check_reason(assign.reason.as_ref(), role)?;
    if let Some(routing) = &assign.routing {
        if role != Role::System {
            return Err(invalid(
                "routing",
                InputProblem::Malformed {
                    expected: "no routing record: only the routing engine writes one".to_owned(),
                },
            ));
        }
        routing
            .check()
            .map_err(|(field, problem)| invalid(field, problem))?;
    }
    if details.assignee == Some(assign.agent) {
        return Ok(vec![]);
    }
    Ok(vec![Event::AgentAssigned(AgentAssigned {
        from: details.assignee,
        to: assign.agent,
        reason: assign.reason.clone(),
        routing: assign.routing.clone(),
    })])
}

fn unassign_agent(
    unassign: &UnassignAgent,
    details: &TicketDetails,
) -> Result<Vec<Event>, Rejection> {
    check_optional_text("reason", unassign.reason.as_ref(), REASON_BYTES_MAX)?;
    let Some(agent) = details.assignee else {
        return Ok(vec![]);
    };
    Ok(vec![Event::AgentUnassigned(AgentUnassigned {
        agent,
        reason: unassign.reason.clone(),
    })])
}

fn post_public_reply(
    reply: &PostPublicReply,
    details: &TicketDetails,
) -> Result<Vec<Event>, Rejection> {
    check_text("body", &reply.body, BODY_BYTES_MAX)?;
    let mut events = Vec::with_capacity(1 + reply.attachments.len());
    let attachments = attach_all(
        &reply.attachments,
        Some(details),
        Visibility::Public,
        &mut events,
    )?;
    events.push(Event::PublicReplyPosted(PublicReplyPosted {
        attachments,
        pii: BodyPii {
            body: reply.body.clone(),
        },
    }));
    Ok(events)
}

fn post_customer_message(
    message: &PostCustomerMessage,
    details: &TicketDetails,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    check_text("body", &message.body, BODY_BYTES_MAX)?;
    let mut events = Vec::with_capacity(2 + message.attachments.len());
    let attachments = attach_all(
        &message.attachments,
        Some(details),
        Visibility::Public,
        &mut events,
    )?;
    events.push(Event::CustomerMessageReceived(CustomerMessageReceived {
        attachments,
        pii: BodyPii {
            body: message.body.clone(),
        },
    }));
    // The customer answered or came back: the ticket needs work again.
    if matches!(
        details.category,
        StateCategory::Pending | StateCategory::Solved
    ) {
        events.push(reopened(details, ctx, ReopenCause::CustomerMessage, None)?);
    }
    Ok(events)
}

fn reopened(
    details: &TicketDetails,
    ctx: &CommandContext<'_>,
    cause: ReopenCause,
    reason: Option<String>,
) -> Result<Event, Rejection> {
    let blueprint = blueprint_of(details, ctx)?;
    let to = blueprint
        .state(&blueprint.reopen_to)
        .expect("a loaded blueprint's reopen_to state exists");
    Ok(Event::TicketReopened(TicketReopened {
        cause,
        from: details.state.clone(),
        from_category: details.category,
        to: to.name.clone(),
        to_category: to.category,
        pii: ReopenPii { reason },
    }))
}

fn add_internal_note(note: &AddInternalNote) -> Result<Vec<Event>, Rejection> {
    check_text("body", &note.body, BODY_BYTES_MAX)?;
    if note.mentions.len() > MENTIONS_PER_NOTE_MAX {
        return Err(invalid(
            "mentions",
            InputProblem::TooMany {
                max: MENTIONS_PER_NOTE_MAX,
            },
        ));
    }
    let mut mentions = Vec::with_capacity(note.mentions.len());
    for agent in &note.mentions {
        if mentions.contains(agent) {
            return Err(invalid(
                "mentions",
                InputProblem::Duplicate {
                    value: agent.to_string(),
                },
            ));
        }
        mentions.push(*agent);
    }
    Ok(vec![Event::InternalNoteAdded(InternalNoteAdded {
        mentions,
        pii: BodyPii {
            body: note.body.clone(),
        },
    })])
}

fn attach_file(
    attach: &AttachFile,
    details: &TicketDetails,
    role: Role,
) -> Result<Vec<Event>, Rejection> {
    // Customers cannot write what they could then not read.
    if role == Role::Customer && attach.visibility == Visibility::Internal {
        return Err(Rejection::InternalNotForCustomers);
    }
    let mut events = Vec::with_capacity(1);
    attach_all(
        std::slice::from_ref(&attach.attachment),
        Some(details),
        attach.visibility,
        &mut events,
    )?;
    Ok(events)
}

fn link_ticket(link: &LinkTicket, details: &TicketDetails) -> Result<Vec<Event>, Rejection> {
    if link.other == details.id {
        return Err(Rejection::LinkToSelf);
    }
    if details.links.contains(&(link.other, link.kind)) {
        return Ok(vec![]);
    }
    if details.links.len() >= LINKS_PER_TICKET_MAX {
        return Err(invalid(
            "other",
            InputProblem::TooMany {
                max: LINKS_PER_TICKET_MAX,
            },
        ));
    }
    Ok(vec![Event::TicketLinked(TicketLinked {
        other: link.other,
        kind: link.kind,
    })])
}

fn merge_into(
    merge: &MergeInto,
    details: &TicketDetails,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    if merge.survivor == details.id {
        return Err(Rejection::MergeIntoSelf);
    }
    check_optional_text("note", merge.note.as_ref(), REASON_BYTES_MAX)?;
    let blueprint = blueprint_of(details, ctx)?;
    Ok(vec![Event::TicketMergedInto(TicketMergedInto {
        survivor: merge.survivor,
        survivor_number: merge.survivor_number,
        from: details.state.clone(),
        to: blueprint.merged_to.clone(),
        pii: OptionalNotePii {
            note: merge.note.clone(),
        },
    })])
}

fn record_merged_duplicate(
    record: &RecordMergedDuplicate,
    details: &TicketDetails,
) -> Result<Vec<Event>, Rejection> {
    if record.duplicate == details.id {
        return Err(Rejection::MergeIntoSelf);
    }
    if details.merged_duplicates.contains(&record.duplicate) {
        return Ok(vec![]);
    }
    if details.merged_duplicates.len() >= MERGED_DUPLICATES_MAX {
        return Err(invalid(
            "duplicate",
            InputProblem::TooMany {
                max: MERGED_DUPLICATES_MAX,
            },
        ));
    }
    Ok(vec![Event::DuplicateMerged(DuplicateMerged {
        duplicate: record.duplicate,
        duplicate_number: record.duplicate_number,
    })])
}

/// Whether a requirement holds for the ticket as it is now.
pub fn requirement_met(requirement: &Requirement, details: &TicketDetails) -> bool {
    match requirement {
        Requirement::Assignee => details.assignee.is_some(),
        Requirement::FieldSet { field } => details.fields.contains_key(field),
        Requirement::Attachment { content_type } => details
            .attachments
            .iter()
            .any(|attachment| content_type_matches(content_type, &attachment.content_type)),
        Requirement::InternalNote => {
            details.last_internal_note_version > details.state_entered_version
        }
        Requirement::MinimumPriority { priority } => details.priority >= *priority,
        Requirement::PublicReply => {
            details.last_public_reply_version > details.last_customer_message_version
        }
        Requirement::FieldCondition { field, op, value } => details
            .fields
            .get(field)
            .is_some_and(|actual| op.holds(actual, value)),
    }
}

fn transition_ticket(
    command: &TransitionTicket,
    details: &TicketDetails,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    let blueprint = blueprint_of(details, ctx)?;
    let role = ctx.actor.role;
    let allowed = || blueprint.allowed_transitions(&details.state, role);
    let Some(transition) = blueprint.transition(&command.transition) else {
        return Err(Rejection::UnknownTransition {
            transition: command.transition.clone(),
            allowed: allowed(),
        });
    };
    if !transition.from.contains(&details.state) {
        return Err(Rejection::TransitionNotFromState {
            transition: transition.name.clone(),
            state: details.state.clone(),
            allowed: allowed(),
        });
    }
    if !transition.roles.contains(&role) {
        return Err(Rejection::TransitionRoleNotAllowed {
            transition: transition.name.clone(),
            role,
            allowed: allowed(),
        });
    }
    let unmet: Vec<Requirement> = transition
        .requires
        .iter()
        .filter(|requirement| !requirement_met(requirement, details))
        .cloned()
        .collect();
    if !unmet.is_empty() {
        return Err(Rejection::TransitionRequirementsUnmet {
            transition: transition.name.clone(),
            unmet,
            allowed: allowed(),
        });
    }
    let to = blueprint
        .state(&transition.to)
        .expect("a loaded blueprint's transition targets exist");
    Ok(vec![Event::TicketTransitioned(TicketTransitioned {
        transition: transition.name.clone(),
        from: details.state.clone(),
        from_category: details.category,
        to: to.name.clone(),
        to_category: to.category,
    })])
}

fn reopen_ticket(
    reopen: &ReopenTicket,
    details: &TicketDetails,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    check_text("reason", &reopen.reason, REASON_BYTES_MAX)?;
    match details.category {
        StateCategory::New | StateCategory::Open => Ok(vec![]),
        StateCategory::Pending | StateCategory::Solved => Ok(vec![reopened(
            details,
            ctx,
            ReopenCause::Requested,
            Some(reopen.reason.clone()),
        )?]),
        StateCategory::Closed => Err(Rejection::TicketClosed),
    }
}

fn rate_satisfaction(
    rate: &RateSatisfaction,
    details: &TicketDetails,
) -> Result<Vec<Event>, Rejection> {
    if !(CSAT_SCORE_MIN..=CSAT_SCORE_MAX).contains(&rate.score) {
        return Err(invalid(
            "score",
            InputProblem::OutOfRange {
                min: CSAT_SCORE_MIN.into(),
                max: CSAT_SCORE_MAX.into(),
            },
        ));
    }
    check_optional_text("comment", rate.comment.as_ref(), REASON_BYTES_MAX)?;
    let surveyed_and_closed = details.category == StateCategory::Closed
        && details.resolutions > 0
        && details.surveyed_resolution == Some(details.resolutions);
    if details.category != StateCategory::Solved && !surveyed_and_closed {
        return Err(Rejection::NotSolved {
            category: details.category,
        });
    }
    if details.rated_resolution == Some(details.resolutions) {
        return Err(Rejection::AlreadyRated {
            resolution: details.resolutions,
        });
    }
    Ok(vec![Event::SatisfactionRated(SatisfactionRated {
        score: rate.score,
        resolution: details.resolutions,
        pii: CommentPii {
            comment: rate.comment.clone(),
        },
    })])
}

fn apply_sla(apply: &ApplySla, details: &TicketDetails) -> Result<Vec<Event>, Rejection> {
    check_token("policy_id", &apply.policy_id, IDENTIFIER_BYTES_MAX)?;
    check_text("reason", &apply.reason, REASON_BYTES_MAX)?;
    if apply.targets.is_empty() {
        return Err(invalid("targets", InputProblem::Empty));
    }
    if apply.targets.len() > SLA_TARGETS_MAX {
        return Err(invalid(
            "targets",
            InputProblem::TooMany {
                max: SLA_TARGETS_MAX,
            },
        ));
    }
    let mut metrics = BTreeSet::new();
    for target in &apply.targets {
        check_token("targets.metric", &target.metric, IDENTIFIER_BYTES_MAX)?;
        if !metrics.insert(target.metric.as_str()) {
            return Err(invalid(
                "targets.metric",
                InputProblem::Duplicate {
                    value: target.metric.clone(),
                },
            ));
        }
    }
    let unchanged = apply.targets.iter().all(|target| {
        details
            .sla_clock(&apply.policy_id, &target.metric)
            .is_some_and(|clock| clock.due_at == target.due_at)
    });
    if unchanged {
        return Ok(vec![]);
    }
    let new_clocks = apply
        .targets
        .iter()
        .filter(|target| {
            details
                .sla_clock(&apply.policy_id, &target.metric)
                .is_none()
        })
        .count();
    if details.sla_clocks.len() + new_clocks > SLA_CLOCKS_MAX {
        return Err(invalid(
            "targets",
            InputProblem::TooMany {
                max: SLA_CLOCKS_MAX,
            },
        ));
    }
    Ok(vec![Event::SlaApplied(SlaApplied {
        policy_id: apply.policy_id.clone(),
        policy_version: apply.policy_version,
        targets: apply.targets.clone(),
        reason: apply.reason.clone(),
    })])
}

fn running_clock<'a>(
    details: &'a TicketDetails,
    policy_id: &str,
    metric: &str,
    due_at: jiff::Timestamp,
) -> Result<&'a crate::ticket::SlaClock, Rejection> {
    details
        .sla_clock(policy_id, metric)
        .filter(|clock| clock.due_at == due_at)
        .ok_or_else(|| Rejection::SlaNotApplied {
            policy_id: policy_id.to_owned(),
            metric: metric.to_owned(),
            due_at,
        })
}

fn record_sla_warning(
    warning: &RecordSlaWarning,
    details: &TicketDetails,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    let clock = running_clock(details, &warning.policy_id, &warning.metric, warning.due_at)?;
    check_escalations(&warning.escalations)?;
    if clock.warned || clock.breached {
        return Ok(vec![]);
    }
    let mut events = vec![Event::SlaWarningRaised(SlaWarningRaised {
        policy_id: warning.policy_id.clone(),
        metric: warning.metric.clone(),
        due_at: warning.due_at,
        observed_at: ctx.at,
    })];
    escalation_events(
        &warning.policy_id,
        &warning.metric,
        "warning",
        &warning.escalations,
        details,
        &mut events,
    );
    Ok(events)
}

fn record_sla_breach(
    breach: &RecordSlaBreach,
    details: &TicketDetails,
    ctx: &CommandContext<'_>,
) -> Result<Vec<Event>, Rejection> {
    let clock = running_clock(details, &breach.policy_id, &breach.metric, breach.due_at)?;
    check_escalations(&breach.escalations)?;
    if ctx.at < clock.due_at {
        return Err(Rejection::SlaNotDue {
            due_at: clock.due_at,
            at: ctx.at,
        });
    }
    // A breach is recorded once, however often the scheduler fires.
    if clock.breached {
        return Ok(vec![]);
    }
    let mut events = vec![Event::SlaBreached(SlaBreached {
        policy_id: breach.policy_id.clone(),
        metric: breach.metric.clone(),
        due_at: breach.due_at,
        observed_at: ctx.at,
    })];
    escalation_events(
        &breach.policy_id,
        &breach.metric,
        "breach",
        &breach.escalations,
        details,
        &mut events,
    );
    Ok(events)
}

fn check_escalations(escalations: &[SlaEscalation]) -> Result<(), Rejection> {
    if escalations.len() > SLA_ESCALATIONS_MAX {
        return Err(invalid(
            "escalations",
            InputProblem::TooMany {
                max: SLA_ESCALATIONS_MAX,
            },
        ));
    }
    for escalation in escalations {
        check_token("escalations.rule", &escalation.rule, IDENTIFIER_BYTES_MAX)?;
        if escalation.actions.len() > SLA_ESCALATION_ACTIONS_MAX {
            return Err(invalid(
                "escalations.actions",
                InputProblem::TooMany {
                    max: SLA_ESCALATION_ACTIONS_MAX,
                },
            ));
        }
        for action in &escalation.actions {
            if let EscalationAction::Notify { agents } = action {
                if agents.len() > ESCALATION_NOTIFY_MAX {
                    return Err(invalid(
                        "escalations.actions.agents",
                        InputProblem::TooMany {
                            max: ESCALATION_NOTIFY_MAX,
                        },
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The events of an SLA escalation's actions, each naming the policy and the rule; an action
/// that would change nothing (the priority is already as high, the team already owns the
/// ticket) records nothing.
fn escalation_events(
    policy_id: &str,
    metric: &str,
    trigger: &str,
    escalations: &[SlaEscalation],
    details: &TicketDetails,
    events: &mut Vec<Event>,
) {
    let mut priority = details.priority;
    let mut team = details.team;
    let mut collaborators = details.collaborators.clone();
    let mut level = details.escalation_level;
    for escalation in escalations {
        let rule_id = format!("sla:{policy_id}:{}", escalation.rule);
        let why = format!(
            "sla policy {policy_id} rule {}: {metric} {trigger}",
            escalation.rule
        );
        for action in &escalation.actions {
            match action {
                EscalationAction::RaisePriority { priority: to } if *to > priority => {
                    events.push(Event::PriorityChangedByRule(PriorityChangedByRule {
                        from: priority,
                        to: *to,
                        rule_id: rule_id.clone(),
                        pii: EvidencePii {
                            evidence: format!("{metric} {trigger}"),
                        },
                    }));
                    priority = *to;
                }
                EscalationAction::ReassignTeam { team: to } if team != Some(*to) => {
                    events.push(Event::TeamAssigned(TeamAssigned {
                        from: team,
                        to: *to,
                        reason: Some(why.clone()),
                    }));
                    team = Some(*to);
                }
                EscalationAction::AddCollaborator { agent }
                    if !collaborators.contains(agent)
                        && collaborators.len() < COLLABORATORS_MAX =>
                {
                    events.push(Event::CollaboratorAdded(CollaboratorAdded {
                        agent: *agent,
                        reason: Some(why.clone()),
                    }));
                    collaborators.insert(*agent);
                }
                EscalationAction::Notify { agents } => {
                    let to_level = level.saturating_add(1).min(ESCALATION_LEVEL_MAX);
                    events.push(Event::Escalated(Escalated {
                        from_level: level,
                        to_level,
                        rule_id: Some(rule_id.clone()),
                        reason: why.clone(),
                        notify: agents.clone(),
                    }));
                    level = to_level;
                }
                _ => {}
            }
        }
    }
}

fn recompute_sla(
    recompute: &RecomputeSla,
    details: &TicketDetails,
) -> Result<Vec<Event>, Rejection> {
    check_token("policy_id", &recompute.policy_id, IDENTIFIER_BYTES_MAX)?;
    check_token("metric", &recompute.metric, IDENTIFIER_BYTES_MAX)?;
    check_text("reason", &recompute.reason, REASON_BYTES_MAX)?;
    if recompute.elapsed_business_seconds < 0 {
        return Err(invalid(
            "elapsed_business_seconds",
            InputProblem::OutOfRange {
                min: 0,
                max: i64::MAX as u64,
            },
        ));
    }
    // One clock per metric: a policy that takes over replaces the other policy's clock.
    let current = details
        .sla_clocks
        .iter()
        .find(|clock| clock.metric == recompute.metric);
    if let Some(clock) = current {
        // A new cycle is recorded even when it falls due when the last one did: its warning
        // and breach are new.
        let same = clock.policy_id == recompute.policy_id && clock.due_at == recompute.due_at;
        if same && recompute.cause != RecomputeCause::NewCycle {
            return Ok(vec![]);
        }
    } else if details.sla_clocks.len() >= SLA_CLOCKS_MAX {
        return Err(invalid(
            "metric",
            InputProblem::TooMany {
                max: SLA_CLOCKS_MAX,
            },
        ));
    }
    Ok(vec![Event::SlaRecomputed(SlaRecomputed {
        policy_id: recompute.policy_id.clone(),
        policy_version: recompute.policy_version,
        metric: recompute.metric.clone(),
        from_policy_id: current.map(|clock| clock.policy_id.clone()),
        from_due_at: current.map(|clock| clock.due_at),
        to_due_at: recompute.due_at,
        elapsed_business_seconds: recompute.elapsed_business_seconds,
        cause: recompute.cause,
        reason: recompute.reason.clone(),
    })])
}

fn escalate_ticket(
    escalate: &Escalate,
    details: &TicketDetails,
    role: Role,
) -> Result<Vec<Event>, Rejection> {
    if !(1..=ESCALATION_LEVEL_MAX).contains(&escalate.level) {
        return Err(invalid(
            "level",
            InputProblem::OutOfRange {
                min: 1,
                max: ESCALATION_LEVEL_MAX.into(),
            },
        ));
    }
    check_text("reason", &escalate.reason, REASON_BYTES_MAX)?;
    match &escalate.rule_id {
        Some(rule_id) => check_token("rule_id", rule_id, IDENTIFIER_BYTES_MAX)?,
        None if role == Role::System => return Err(invalid("rule_id", InputProblem::Required)),
        None => {}
    }
    if escalate.notify.len() > ESCALATION_NOTIFY_MAX {
        return Err(invalid(
            "notify",
            InputProblem::TooMany {
                max: ESCALATION_NOTIFY_MAX,
            },
        ));
    }
    if escalate.level <= details.escalation_level {
        return Ok(vec![]);
    }
    Ok(vec![Event::Escalated(Escalated {
        from_level: details.escalation_level,
        to_level: escalate.level,
        rule_id: escalate.rule_id.clone(),
        reason: escalate.reason.clone(),
        notify: escalate.notify.clone(),
    })])
}
