//! Macros: named bundles of actions an agent applies as one command. A macro expands into domain
//! commands (reply, note, tags, priority, transition, in that order), which `sequence` decides
//! as one atomic batch: either every event is appended in one append, or nothing is.

use std::collections::BTreeMap;

use domain::{
    AddInternalNote, AddTags, ChangePriorityByRule, Command, PostPublicReply, Priority, RemoveTags,
    SetPriority, TransitionTicket,
};

use crate::template::{Template, TemplateError, TemplateValues};

/// Most macros in one configuration.
pub const MACROS_MAX: usize = 1_000;

/// A compiled macro.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Macro {
    pub id: String,
    pub title: String,
    pub reply: Option<Template>,
    pub note: Option<Template>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    pub priority: Option<Priority>,
    /// A transition of the ticket's blueprint, e.g. `resolve`.
    pub transition: Option<String>,
}

/// Who applies a macro: an agent (priority is a `SetPriority` with the macro as reason) or a
/// trigger (the system may only change priority by rule, so it names the trigger and evidence).
#[derive(Clone, Copy, Debug)]
pub enum AppliedBy<'a> {
    Agent,
    Trigger { rule_id: &'a str, evidence: &'a str },
}

/// The macros of a configuration, by id.
#[derive(Clone, Debug, Default)]
pub struct Macros {
    by_id: BTreeMap<String, Macro>,
}

/// Why a macro cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MacroError {
    #[error("no macro {id:?}; known macros: {known}")]
    Unknown { id: String, known: String },
    #[error("macro {id:?}: {error}")]
    Template { id: String, error: TemplateError },
}

impl Macros {
    pub(crate) fn new(macros: Vec<Macro>) -> Macros {
        Macros {
            by_id: macros
                .into_iter()
                .map(|macro_| (macro_.id.clone(), macro_))
                .collect(),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Macro> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Macro> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The commands macro `id` stands for on a ticket with these template values.
    pub fn expand(
        &self,
        id: &str,
        values: &TemplateValues,
        by: AppliedBy<'_>,
    ) -> Result<Vec<Command>, MacroError> {
        let macro_ = self.get(id).ok_or_else(|| MacroError::Unknown {
            id: id.to_owned(),
            known: if self.by_id.is_empty() {
                "none configured".to_owned()
            } else {
                self.by_id.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })?;
        macro_.expand(values, by)
    }
}

impl Macro {
    /// The commands this macro stands for, in a fixed order: reply, note, tags added, tags
    /// removed, priority, transition (last, because a transition may require the reply).
    pub fn expand(
        &self,
        values: &TemplateValues,
        by: AppliedBy<'_>,
    ) -> Result<Vec<Command>, MacroError> {
        let render = |template: &Template| {
            template
                .render(values)
                .map_err(|error| MacroError::Template {
                    id: self.id.clone(),
                    error,
                })
        };
        let mut commands = Vec::new();
        if let Some(reply) = &self.reply {
            commands.push(Command::PostPublicReply(PostPublicReply {
                body: render(reply)?,
                attachments: Vec::new(),
            }));
        }
        if let Some(note) = &self.note {
            commands.push(Command::AddInternalNote(AddInternalNote {
                body: render(note)?,
                mentions: Vec::new(),
            }));
        }
        if !self.add_tags.is_empty() {
            commands.push(Command::AddTags(AddTags {
                tags: self.add_tags.clone(),
            }));
        }
        if !self.remove_tags.is_empty() {
            commands.push(Command::RemoveTags(RemoveTags {
                tags: self.remove_tags.clone(),
            }));
        }
        if let Some(priority) = self.priority {
            commands.push(match by {
                AppliedBy::Agent => Command::SetPriority(SetPriority {
                    priority,
                    reason: format!("macro {}", self.id),
                }),
                AppliedBy::Trigger { rule_id, evidence } => {
                    Command::ChangePriorityByRule(ChangePriorityByRule {
                        priority,
                        rule_id: rule_id.to_owned(),
                        evidence: evidence.to_owned(),
                    })
                }
            });
        }
        if let Some(transition) = &self.transition {
            commands.push(Command::TransitionTicket(TransitionTicket {
                transition: transition.clone(),
            }));
        }
        Ok(commands)
    }
}
