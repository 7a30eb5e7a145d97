//! Reply and note templates with `{{placeholder}}` slots, parsed once when the configuration is
//! loaded (so an unknown placeholder is a configuration error) and rendered per ticket (so a
//! value the ticket does not have is a precise error, never an empty hole in a customer reply).

use std::fmt;

/// Longest template, in bytes.
pub const TEMPLATE_BYTES_MAX: usize = 16 * 1024;
/// Most placeholders in one template.
pub const TEMPLATE_PLACEHOLDERS_MAX: usize = 64;

/// A value a template can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placeholder {
    CustomerName,
    CustomerEmail,
    TicketNumber,
    TicketSubject,
    AgentName,
}

impl Placeholder {
    pub const ALL: [Placeholder; 5] = [
        Placeholder::CustomerName,
        Placeholder::CustomerEmail,
        Placeholder::TicketNumber,
        Placeholder::TicketSubject,
        Placeholder::AgentName,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Placeholder::CustomerName => "customer.name",
            Placeholder::CustomerEmail => "customer.email",
            Placeholder::TicketNumber => "ticket.number",
            Placeholder::TicketSubject => "ticket.subject",
            Placeholder::AgentName => "agent.name",
        }
    }

    fn parse(name: &str) -> Option<Placeholder> {
        Placeholder::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{{}}}}}", self.name())
    }
}

/// Why a template does not parse or render.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unknown placeholder {{{{{name}}}}} at byte {offset}; known: {known}")]
    UnknownPlaceholder {
        name: String,
        offset: usize,
        known: String,
    },
    #[error("`{{{{` at byte {offset} is not closed by `}}}}`")]
    Unclosed { offset: usize },
    #[error("template is {bytes} bytes; the most is {max}")]
    TooLong { bytes: usize, max: usize },
    #[error("template has more than {max} placeholders")]
    TooManyPlaceholders { max: usize },
    #[error("placeholder {placeholder} has no value for this ticket: {why}")]
    Missing {
        placeholder: Placeholder,
        why: &'static str,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(Placeholder),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The values a template may use, looked up by the shell for one ticket and one actor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateValues {
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub ticket_number: Option<u64>,
    pub ticket_subject: Option<String>,
    pub agent_name: Option<String>,
}

impl Template {
    /// Parses `text`: `{{ name }}` is a placeholder (spaces inside are allowed), everything else
    /// is literal.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if text.len() > TEMPLATE_BYTES_MAX {
            return Err(TemplateError::TooLong {
                bytes: text.len(),
                max: TEMPLATE_BYTES_MAX,
            });
        }
        let mut parts = Vec::new();
        let mut slots = 0;
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let inner_start = open + 2;
            let Some(close) = rest[inner_start..].find("}}") else {
                return Err(TemplateError::Unclosed {
                    offset: offset + open,
                });
            };
            let name = rest[inner_start..inner_start + close].trim();
            let placeholder =
                Placeholder::parse(name).ok_or_else(|| TemplateError::UnknownPlaceholder {
                    name: name.to_owned(),
                    offset: offset + open,
                    known: Placeholder::ALL
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            slots += 1;
            if slots > TEMPLATE_PLACEHOLDERS_MAX {
                return Err(TemplateError::TooManyPlaceholders {
                    max: TEMPLATE_PLACEHOLDERS_MAX,
                });
            }
            parts.push(Part::Slot(placeholder));
            let consumed = inner_start + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The placeholders this template uses, in order of appearance.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Slot(placeholder) => Some(*placeholder),
            Part::Text(_) => None,
        })
    }

    /// Fills the slots; a slot whose value is unknown is an error naming it.
    pub fn render(&self, values: &TemplateValues) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Slot(placeholder) => {
                    let missing = |why| TemplateError::Missing {
                        placeholder: *placeholder,
                        why,
                    };
                    match placeholder {
                        Placeholder::CustomerName => out.push_str(
                            values
                                .customer_name
                                .as_deref()
                                .ok_or_else(|| missing("the customer has no name on record"))?,
                        ),
                        Placeholder::CustomerEmail => out.push_str(
                            values
                                .customer_email
                                .as_deref()
                                .ok_or_else(|| missing("the customer has no email on record"))?,
                        ),
                        Placeholder::TicketNumber => {
                            let number = values
                                .ticket_number
                                .ok_or_else(|| missing("the ticket has no number"))?;
                            out.push('#');
                            out.push_str(&number.to_string());
                        }
                        Placeholder::TicketSubject => out.push_str(
                            values
                                .ticket_subject
                                .as_deref()
                                .ok_or_else(|| missing("the ticket has no subject"))?,
                        ),
                        Placeholder::AgentName => out.push_str(
                            values
                                .agent_name
                                .as_deref()
                                .ok_or_else(|| missing("the acting agent has no name on record"))?,
                        ),
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expect: expect_test::Expect) {
        let values = TemplateValues {
            customer_name: Some("李雷".to_owned()),
            customer_email: None,
            ticket_number: Some(10042),
            ticket_subject: Some("Refund".to_owned()),
            agent_name: Some("Ada".to_owned()),
        };
        let actual = match Template::parse(text) {
            Ok(template) => match template.render(&values) {
                Ok(text) => format!("ok: {text}"),
                Err(error) => format!("render error: {error}"),
            },
            Err(error) => format!("parse error: {error}"),
        };
        expect.assert_eq(&actual);
    }

    #[test]
    fn templates() {
        check(
            "Hi {{customer.name}}, ticket {{ ticket.number }} ({{ticket.subject}}) — {{agent.name}}",
            expect_test::expect!["ok: Hi 李雷, ticket #10042 (Refund) — Ada"],
        );
        check(
            "no slots at all",
            expect_test::expect!["ok: no slots at all"],
        );
        check("", expect_test::expect!["ok: "]);
        check(
            "Dear {{customer.nmae}}",
            expect_test::expect!["parse error: unknown placeholder {{customer.nmae}} at byte 5; known: {{customer.name}}, {{customer.email}}, {{ticket.number}}, {{ticket.subject}}, {{agent.name}}"],
        );
        check(
            "Dear {{customer.name",
            expect_test::expect!["parse error: `{{` at byte 5 is not closed by `}}`"],
        );
        check(
            "Mail: {{customer.email}}",
            expect_test::expect!["render error: placeholder {{customer.email}} has no value for this ticket: the customer has no email on record"],
        );
        check(
            "single { braces } stay",
            expect_test::expect!["ok: single { braces } stay"],
        );
    }

    #[test]
    fn limits_are_checked_at_the_bound() {
        let at_max = "a".repeat(TEMPLATE_BYTES_MAX);
        assert!(Template::parse(&at_max).is_ok());
        let over = "a".repeat(TEMPLATE_BYTES_MAX + 1);
        assert!(matches!(
            Template::parse(&over),
            Err(TemplateError::TooLong { .. })
        ));
        let slots = "{{ticket.number}}".repeat(TEMPLATE_PLACEHOLDERS_MAX);
        assert!(Template::parse(&slots).is_ok());
        let more = "{{ticket.number}}".repeat(TEMPLATE_PLACEHOLDERS_MAX + 1);
        assert_eq!(
            Template::parse(&more),
            Err(TemplateError::TooManyPlaceholders {
                max: TEMPLATE_PLACEHOLDERS_MAX
            })
        );
    }
}
