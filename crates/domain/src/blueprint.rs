//! Blueprints: versioned state machines, loaded from TOML, that say which states a ticket goes
//! through, who may move it along which transition, and what must be true first.
//!
//! A blueprint is data, not code. Loading validates it completely and reports each problem with
//! the file and line it comes from, so a broken blueprint never reaches a running decider. A
//! ticket records the blueprint id and version it follows, and the catalog keeps every version,
//! so a new version never changes the rules for tickets already following an older one.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::context::Role;
use crate::ids::{FieldValue, Priority};
use crate::limits::{
    BLUEPRINT_SOURCE_BYTES_MAX, BLUEPRINT_STATES_MAX, BLUEPRINT_TRANSITIONS_MAX,
    IDENTIFIER_BYTES_MAX, TRANSITION_REQUIREMENTS_MAX,
};

/// The blueprint that tickets of an unlisted type follow.
pub const DEFAULT_BLUEPRINT_ID: &str = "general";

/// The blueprints shipped with Docket, by file name.
pub const BUILTIN_BLUEPRINTS: &[(&str, &str)] = &[
    ("general.toml", include_str!("../blueprints/general.toml")),
    ("refund.toml", include_str!("../blueprints/refund.toml")),
];

/// What a state means to everything outside the blueprint: SLA clocks pause in `Pending`,
/// `Solved` counts as a resolution, `Closed` is terminal.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum StateCategory {
    New,
    Open,
    Pending,
    Solved,
    Closed,
}

impl StateCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            StateCategory::New => "new",
            StateCategory::Open => "open",
            StateCategory::Pending => "pending",
            StateCategory::Solved => "solved",
            StateCategory::Closed => "closed",
        }
    }
}

impl fmt::Display for StateCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which blueprint, in which version, a ticket follows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlueprintRef {
    pub id: String,
    pub version: u32,
}

impl fmt::Display for BlueprintRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.id, self.version)
    }
}

/// How a field condition compares the ticket's value with the blueprint's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Eq => "==",
            Comparison::Ne => "!=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }

    /// Whether `actual <op> expected` holds. Values of different kinds never compare, and
    /// booleans only compare for (in)equality.
    pub fn holds(self, actual: &FieldValue, expected: &FieldValue) -> bool {
        let ordering = match (actual, expected) {
            (FieldValue::Integer(a), FieldValue::Integer(b)) => a.cmp(b),
            (FieldValue::Text(a), FieldValue::Text(b)) => a.cmp(b),
            (FieldValue::Bool(a), FieldValue::Bool(b)) => {
                return match self {
                    Comparison::Eq => a == b,
                    Comparison::Ne => a != b,
                    _ => false,
                }
            }
            _ => return false,
        };
        match self {
            Comparison::Eq => ordering.is_eq(),
            Comparison::Ne => ordering.is_ne(),
            Comparison::Lt => ordering.is_lt(),
            Comparison::Le => ordering.is_le(),
            Comparison::Gt => ordering.is_gt(),
            Comparison::Ge => ordering.is_ge(),
        }
    }
}

/// Something that must be true before a transition may be taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requirement {
    /// The ticket has an assigned agent. Implied for every transition into a solved state.
    Assignee,
    /// A custom field is set.
    FieldSet { field: String },
    /// An attachment whose content type matches the pattern (`image/*`, `application/pdf`).
    Attachment { content_type: String },
    /// An internal note was added since the ticket entered its current state.
    InternalNote,
    /// The ticket's priority is at least this.
    MinimumPriority { priority: Priority },
    /// A public reply was posted after the customer's last message (the description counts).
    PublicReply,
    /// A custom field compares with a value; an unset field fails every comparison.
    FieldCondition {
        field: String,
        op: Comparison,
        value: FieldValue,
    },
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requirement::Assignee => f.write_str("an assigned agent"),
            Requirement::FieldSet { field } => write!(f, "field `{field}` set"),
            Requirement::Attachment { content_type } => {
                write!(f, "an attachment of type {content_type}")
            }
            Requirement::InternalNote => f.write_str("an internal note in the current state"),
            Requirement::MinimumPriority { priority } => {
                write!(f, "priority {priority} or higher")
            }
            Requirement::PublicReply => {
                f.write_str("a public reply since the customer's last message")
            }
            Requirement::FieldCondition { field, op, value } => {
                write!(f, "field `{field}` {} {value}", op.symbol())
            }
        }
    }
}

/// A state of a blueprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub name: String,
    pub label: String,
    pub category: StateCategory,
}

/// A named move from any of `from` to `to`, for `roles`, once `requires` all hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub name: String,
    pub label: String,
    pub from: Vec<String>,
    pub to: String,
    pub roles: Vec<Role>,
    pub requires: Vec<Requirement>,
}

/// A transition that the actor could take from the ticket's current state (its requirements
/// may still be unmet); listed in rejections so that clients can offer the right buttons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AllowedTransition {
    pub name: String,
    pub to: String,
}

/// A loaded and validated blueprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blueprint {
    pub id: String,
    pub version: u32,
    pub name: String,
    /// Ticket types that follow this blueprint; the default blueprint takes the rest.
    pub ticket_types: Vec<String>,
    /// The state of a new ticket; its category is `new`.
    pub initial: String,
    /// Where `ReopenTicket` and a customer message on a pending or solved ticket lead; its
    /// category is `open`.
    pub reopen_to: String,
    /// Where a merged duplicate goes: the first state of category `closed`.
    pub merged_to: String,
    pub states: Vec<State>,
    pub transitions: Vec<Transition>,
    /// The file it was loaded from and the lines of its `version` and `ticket_types`, for
    /// catalog errors.
    pub file: String,
    pub version_line: usize,
    pub ticket_types_line: usize,
}

impl Blueprint {
    pub fn reference(&self) -> BlueprintRef {
        BlueprintRef {
            id: self.id.clone(),
            version: self.version,
        }
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.iter().find(|state| state.name == name)
    }

    pub fn transition(&self, name: &str) -> Option<&Transition> {
        self.transitions
            .iter()
            .find(|transition| transition.name == name)
    }

    /// The transitions `role` may take from `state`, requirements aside, in blueprint order.
    pub fn allowed_transitions(&self, state: &str, role: Role) -> Vec<AllowedTransition> {
        self.transitions
            .iter()
            .filter(|transition| {
                transition.from.iter().any(|from| from == state) && transition.roles.contains(&role)
            })
            .map(|transition| AllowedTransition {
                name: transition.name.clone(),
                to: transition.to.clone(),
            })
            .collect()
    }

    /// Parses and validates a blueprint. `file` only names the source in errors.
    pub fn from_toml(file: &str, source: &str) -> Result<Blueprint, BlueprintError> {
        let error = |span: Option<std::ops::Range<usize>>, kind: BlueprintErrorKind| {
            let (line, column) = line_column(source, span.map_or(0, |span| span.start));
            BlueprintError {
                file: file.to_owned(),
                line,
                column,
                kind,
            }
        };
        if source.len() > BLUEPRINT_SOURCE_BYTES_MAX {
            return Err(error(
                None,
                BlueprintErrorKind::TooLarge {
                    bytes: source.len(),
                    max: BLUEPRINT_SOURCE_BYTES_MAX,
                },
            ));
        }
        let raw: RawBlueprint = toml::from_str(source).map_err(|toml_error| {
            error(
                toml_error.span(),
                BlueprintErrorKind::Syntax(toml_error.message().trim().to_owned()),
            )
        })?;
        validate(raw, file, source).map_err(|(span, kind)| error(Some(span), kind))
    }
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    (line, column)
}

/// A blueprint that failed to load, with where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {kind}")]
pub struct BlueprintError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub kind: BlueprintErrorKind,
}

/// What is wrong with a blueprint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlueprintErrorKind {
    #[error("{0}")]
    Syntax(String),
    #[error("blueprint is {bytes} bytes, over the {max} byte limit")]
    TooLarge { bytes: usize, max: usize },
    #[error("more than {max} {what}")]
    TooMany { what: &'static str, max: usize },
    #[error("`{0}` is not a valid name (lowercase letters, digits and `_`, starting with a letter, at most 128 bytes)")]
    BadName(String),
    #[error("state `{0}` is defined twice")]
    DuplicateState(String),
    #[error("transition `{0}` is defined twice")]
    DuplicateTransition(String),
    #[error("{context} names unknown state `{state}`")]
    UnknownState { state: String, context: String },
    #[error("initial state `{state}` has category {category}, expected new")]
    InitialNotNew {
        state: String,
        category: StateCategory,
    },
    #[error("reopen_to state `{state}` has category {category}, expected open")]
    ReopenNotOpen {
        state: String,
        category: StateCategory,
    },
    #[error("no state has category closed, so tickets could never end")]
    NoClosedState,
    #[error("state `{0}` cannot be reached from the initial state")]
    UnreachableState(String),
    #[error("transition `{transition}` leaves closed state `{state}`; closed is terminal")]
    TransitionOutOfClosed { transition: String, state: String },
    #[error("state `{0}` has no transition out and is not closed")]
    DeadEnd(String),
    #[error("transition `{0}` allows no role")]
    NoRoles(String),
    #[error("transition `{0}` starts from no state")]
    NoFromStates(String),
    #[error("condition on `{field}` compares a yes/no value with `{op}`, which can never hold; use eq or ne")]
    OrderingOnBool { field: String, op: String },
    #[error("transition `{0}` allows the same role twice")]
    DuplicateRole(String),
    #[error("`{0}` is not a content type pattern such as `image/*` or `application/pdf`")]
    BadContentTypePattern(String),
    #[error("ticket type `{ticket_type}` already follows blueprint `{owner}`")]
    TicketTypeClaimed { ticket_type: String, owner: String },
    #[error("blueprint `{id}` version {version} is loaded twice")]
    DuplicateVersion { id: String, version: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlueprint {
    id: Spanned<String>,
    version: Spanned<u32>,
    name: String,
    #[serde(default)]
    ticket_types: Vec<Spanned<String>>,
    initial: Spanned<String>,
    reopen_to: Spanned<String>,
    states: Vec<RawState>,
    #[serde(default)]
    transitions: Vec<RawTransition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    name: Spanned<String>,
    label: String,
    category: StateCategory,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransition {
    name: Spanned<String>,
    #[serde(default)]
    label: Option<String>,
    from: Vec<Spanned<String>>,
    to: Spanned<String>,
    roles: Spanned<Vec<Role>>,
    #[serde(default)]
    requires: RawRequires,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    #[serde(default)]
    assignee: bool,
    #[serde(default)]
    fields: Vec<Spanned<String>>,
    #[serde(default)]
    attachment: Option<Spanned<String>>,
    #[serde(default)]
    internal_note: bool,
    #[serde(default)]
    min_priority: Option<Priority>,
    #[serde(default)]
    public_reply: bool,
    #[serde(default)]
    conditions: Vec<RawCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    field: Spanned<String>,
    op: Comparison,
    value: FieldValue,
}

type Invalid = (std::ops::Range<usize>, BlueprintErrorKind);

/// Names are identifiers: they appear in URLs, events and commands.
pub(crate) fn is_name(name: &str) -> bool {
    name.len() <= IDENTIFIER_BYTES_MAX
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A content type pattern is `type/subtype`, `type/*` or `*/*`, in lowercase.
pub(crate) fn is_content_type_pattern(pattern: &str) -> bool {
    let Some((kind, subtype)) = pattern.split_once('/') else {
        return false;
    };
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$&-^_.+".contains(&b))
    };
    match (kind, subtype) {
        ("*", "*") => true,
        ("*", _) => false,
        (kind, "*") => token(kind),
        (kind, subtype) => token(kind) && token(subtype),
    }
}

/// Whether a content type such as `image/png` matches a pattern such as `image/*`.
/// Content types compare case-insensitively and parameters (`; charset=…`) are ignored.
pub fn content_type_matches(pattern: &str, content_type: &str) -> bool {
    let content_type = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = content_type.split_once('/') else {
        return false;
    };
    let Some((want_kind, want_subtype)) = pattern.split_once('/') else {
        return false;
    };
    (want_kind == "*" || want_kind.eq_ignore_ascii_case(kind))
        && (want_subtype == "*" || want_subtype.eq_ignore_ascii_case(subtype))
}

fn validate(raw: RawBlueprint, file: &str, source: &str) -> Result<Blueprint, Invalid> {
    let name_check = |name: &Spanned<String>| -> Result<(), Invalid> {
        if is_name(name.get_ref()) {
            Ok(())
        } else {
            Err((
                name.span(),
                BlueprintErrorKind::BadName(name.get_ref().clone()),
            ))
        }
    };
    name_check(&raw.id)?;
    for ticket_type in &raw.ticket_types {
        name_check(ticket_type)?;
    }
    if raw.states.len() > BLUEPRINT_STATES_MAX {
        return Err((
            raw.states[BLUEPRINT_STATES_MAX].name.span(),
            BlueprintErrorKind::TooMany {
                what: "states",
                max: BLUEPRINT_STATES_MAX,
            },
        ));
    }
    if raw.transitions.len() > BLUEPRINT_TRANSITIONS_MAX {
        return Err((
            raw.transitions[BLUEPRINT_TRANSITIONS_MAX].name.span(),
            BlueprintErrorKind::TooMany {
                what: "transitions",
                max: BLUEPRINT_TRANSITIONS_MAX,
            },
        ));
    }

    let mut categories: BTreeMap<&str, StateCategory> = BTreeMap::new();
    for state in &raw.states {
        name_check(&state.name)?;
        if categories
            .insert(state.name.get_ref(), state.category)
            .is_some()
        {
            return Err((
                state.name.span(),
                BlueprintErrorKind::DuplicateState(state.name.get_ref().clone()),
            ));
        }
    }
    let known = |state: &Spanned<String>, context: String| -> Result<StateCategory, Invalid> {
        categories.get(state.get_ref().as_str()).copied().ok_or((
            state.span(),
            BlueprintErrorKind::UnknownState {
                state: state.get_ref().clone(),
                context,
            },
        ))
    };

    let initial_category = known(&raw.initial, "initial".to_owned())?;
    if initial_category != StateCategory::New {
        return Err((
            raw.initial.span(),
            BlueprintErrorKind::InitialNotNew {
                state: raw.initial.get_ref().clone(),
                category: initial_category,
            },
        ));
    }
    let reopen_category = known(&raw.reopen_to, "reopen_to".to_owned())?;
    if reopen_category != StateCategory::Open {
        return Err((
            raw.reopen_to.span(),
            BlueprintErrorKind::ReopenNotOpen {
                state: raw.reopen_to.get_ref().clone(),
                category: reopen_category,
            },
        ));
    }
    let Some(merged_to) = raw
        .states
        .iter()
        .find(|state| state.category == StateCategory::Closed)
    else {
        return Err((raw.id.span(), BlueprintErrorKind::NoClosedState));
    };
    let merged_to = merged_to.name.get_ref().clone();

    let mut transition_names = BTreeSet::new();
    let mut transitions = Vec::with_capacity(raw.transitions.len());
    for transition in &raw.transitions {
        let name = transition.name.get_ref();
        name_check(&transition.name)?;
        if !transition_names.insert(name.as_str()) {
            return Err((
                transition.name.span(),
                BlueprintErrorKind::DuplicateTransition(name.clone()),
            ));
        }
        if transition.from.is_empty() {
            return Err((
                transition.name.span(),
                BlueprintErrorKind::NoFromStates(name.clone()),
            ));
        }
        for from in &transition.from {
            let category = known(from, format!("transition `{name}` from"))?;
            if category == StateCategory::Closed {
                return Err((
                    from.span(),
                    BlueprintErrorKind::TransitionOutOfClosed {
                        transition: name.clone(),
                        state: from.get_ref().clone(),
                    },
                ));
            }
        }
        let to_category = known(&transition.to, format!("transition `{name}` to"))?;
        let roles = transition.roles.get_ref();
        if roles.is_empty() {
            return Err((
                transition.roles.span(),
                BlueprintErrorKind::NoRoles(name.clone()),
            ));
        }
        if roles.iter().collect::<BTreeSet<_>>().len() != roles.len() {
            return Err((
                transition.roles.span(),
                BlueprintErrorKind::DuplicateRole(name.clone()),
            ));
        }

        let requires = &transition.requires;
        let mut requirements = Vec::new();
        // Solving without an owner is never allowed, whatever the file says.
        if requires.assignee || to_category == StateCategory::Solved {
            requirements.push(Requirement::Assignee);
        }
        for field in &requires.fields {
            name_check(field)?;
            requirements.push(Requirement::FieldSet {
                field: field.get_ref().clone(),
            });
        }
        if let Some(pattern) = &requires.attachment {
            if !is_content_type_pattern(pattern.get_ref()) {
                return Err((
                    pattern.span(),
                    BlueprintErrorKind::BadContentTypePattern(pattern.get_ref().clone()),
                ));
            }
            requirements.push(Requirement::Attachment {
                content_type: pattern.get_ref().clone(),
            });
        }
        if requires.internal_note {
            requirements.push(Requirement::InternalNote);
        }
        if let Some(priority) = requires.min_priority {
            requirements.push(Requirement::MinimumPriority { priority });
        }
        if requires.public_reply {
            requirements.push(Requirement::PublicReply);
        }
        for condition in &requires.conditions {
            name_check(&condition.field)?;
            if matches!(condition.value, FieldValue::Bool(_))
                && !matches!(condition.op, Comparison::Eq | Comparison::Ne)
            {
                return Err((
                    condition.field.span(),
                    BlueprintErrorKind::OrderingOnBool {
                        field: condition.field.get_ref().clone(),
                        op: condition.op.symbol().to_owned(),
                    },
                ));
            }
            requirements.push(Requirement::FieldCondition {
                field: condition.field.get_ref().clone(),
                op: condition.op,
                value: condition.value.clone(),
            });
        }
        if requirements.len() > TRANSITION_REQUIREMENTS_MAX {
            return Err((
                transition.name.span(),
                BlueprintErrorKind::TooMany {
                    what: "requirements on one transition",
                    max: TRANSITION_REQUIREMENTS_MAX,
                },
            ));
        }

        transitions.push(Transition {
            name: name.clone(),
            label: transition.label.clone().unwrap_or_else(|| name.clone()),
            from: transition
                .from
                .iter()
                .map(|from| from.get_ref().clone())
                .collect(),
            to: transition.to.get_ref().clone(),
            roles: roles.clone(),
            requires: requirements,
        });
    }

    // Reachability follows transitions and the reopen edge out of pending and solved states.
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut queue = VecDeque::from([raw.initial.get_ref().as_str()]);
    while let Some(state) = queue.pop_front() {
        if !reached.insert(state) {
            continue;
        }
        for transition in &transitions {
            if transition.from.iter().any(|from| from == state) {
                queue.push_back(&transition.to);
            }
        }
        if matches!(
            categories[state],
            StateCategory::Pending | StateCategory::Solved
        ) {
            queue.push_back(raw.reopen_to.get_ref());
        }
    }
    for state in &raw.states {
        let name = state.name.get_ref();
        if !reached.contains(name.as_str()) {
            return Err((
                state.name.span(),
                BlueprintErrorKind::UnreachableState(name.clone()),
            ));
        }
        let has_way_out = transitions
            .iter()
            .any(|transition| transition.from.contains(name));
        if state.category != StateCategory::Closed && !has_way_out {
            return Err((state.name.span(), BlueprintErrorKind::DeadEnd(name.clone())));
        }
    }

    Ok(Blueprint {
        id: raw.id.get_ref().clone(),
        version: *raw.version.get_ref(),
        name: raw.name,
        ticket_types: raw
            .ticket_types
            .iter()
            .map(|ticket_type| ticket_type.get_ref().clone())
            .collect(),
        initial: raw.initial.get_ref().clone(),
        reopen_to: raw.reopen_to.get_ref().clone(),
        merged_to,
        states: raw
            .states
            .iter()
            .map(|state| State {
                name: state.name.get_ref().clone(),
                label: state.label.clone(),
                category: state.category,
            })
            .collect(),
        transitions,
        file: file.to_owned(),
        version_line: line_column(source, raw.version.span().start).0,
        ticket_types_line: raw.ticket_types.first().map_or(1, |ticket_type| {
            line_column(source, ticket_type.span().start).0
        }),
    })
}

/// Every loaded version of every blueprint.
#[derive(Clone, Debug, Default)]
pub struct BlueprintCatalog {
    blueprints: Vec<Blueprint>,
}

impl BlueprintCatalog {
    /// The blueprints shipped in `crates/domain/blueprints/`.
    pub fn builtin() -> BlueprintCatalog {
        // The shipped files are part of the build and tested; failing here is a bug.
        BlueprintCatalog::load(BUILTIN_BLUEPRINTS).expect("shipped blueprints are valid")
    }

    /// Loads `(file name, source)` pairs into one catalog.
    pub fn load(files: &[(&str, &str)]) -> Result<BlueprintCatalog, BlueprintError> {
        let mut catalog = BlueprintCatalog::default();
        for (file, source) in files {
            catalog.insert(Blueprint::from_toml(file, source)?)?;
        }
        Ok(catalog)
    }

    /// Adds a validated blueprint version; an id and version pair is loaded at most once, and a
    /// ticket type belongs to one blueprint id. Private, so that only `Blueprint::from_toml`
    /// output (validated) ever reaches a catalog and `decide` can rely on it.
    fn insert(&mut self, blueprint: Blueprint) -> Result<(), BlueprintError> {
        if self.get(&blueprint.id, blueprint.version).is_some() {
            return Err(BlueprintError {
                file: blueprint.file.clone(),
                line: blueprint.version_line,
                column: 1,
                kind: BlueprintErrorKind::DuplicateVersion {
                    id: blueprint.id,
                    version: blueprint.version,
                },
            });
        }
        let claimed = self.blueprints.iter().find_map(|loaded| {
            let shared = loaded.id != blueprint.id;
            shared
                .then(|| {
                    blueprint
                        .ticket_types
                        .iter()
                        .find(|ticket_type| loaded.ticket_types.contains(ticket_type))
                        .map(|ticket_type| (ticket_type.clone(), loaded.id.clone()))
                })
                .flatten()
        });
        if let Some((ticket_type, owner)) = claimed {
            return Err(BlueprintError {
                file: blueprint.file.clone(),
                line: blueprint.ticket_types_line,
                column: 1,
                kind: BlueprintErrorKind::TicketTypeClaimed { ticket_type, owner },
            });
        }
        self.blueprints.push(blueprint);
        Ok(())
    }

    pub fn get(&self, id: &str, version: u32) -> Option<&Blueprint> {
        self.blueprints
            .iter()
            .find(|blueprint| blueprint.id == id && blueprint.version == version)
    }

    /// The newest version of a blueprint.
    pub fn latest(&self, id: &str) -> Option<&Blueprint> {
        self.blueprints
            .iter()
            .filter(|blueprint| blueprint.id == id)
            .max_by_key(|blueprint| blueprint.version)
    }

    /// The blueprint a new ticket of `ticket_type` follows: the newest version of the
    /// blueprint that lists the type, else the newest version of the default blueprint.
    pub fn for_ticket_type(&self, ticket_type: &str) -> Option<&Blueprint> {
        self.blueprints
            .iter()
            .filter(|blueprint| {
                blueprint
                    .ticket_types
                    .iter()
                    .any(|listed| listed == ticket_type)
            })
            .max_by_key(|blueprint| blueprint.version)
            .or_else(|| self.latest(DEFAULT_BLUEPRINT_ID))
    }

    /// Every loaded blueprint version, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &Blueprint> {
        self.blueprints.iter()
    }
}
