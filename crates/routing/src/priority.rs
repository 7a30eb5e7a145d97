//! Automatic priority: the configured rules (phrases, customer tier, channel, ticket type) and
//! the sentiment detector, evaluated on a ticket's text when it is created and on each customer
//! message. A rule only ever raises a priority, and what matched is kept as evidence for the
//! event (`PriorityChangedByRule`, `CustomerUpsetFlagged`).

use domain::{Channel, Priority};
use uuid::Uuid;

use crate::config::{channel_name, KeywordRule, PriorityConfig};
use crate::sentiment;

/// Longest evidence recorded, in characters: enough to quote the phrase and its context.
pub const EVIDENCE_CHARS_MAX: usize = 200;

/// What the rules ask of one ticket, not yet carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// `(priority, rule_id, evidence)`.
    pub priority: Option<(Priority, String, String)>,
    /// `(rule_id, evidence)`: flag the customer upset.
    pub upset: Option<(String, String)>,
    /// The event whose text (or whose ticket) matched: the commands' ids derive from it.
    pub cause: Uuid,
}

impl Proposal {
    pub fn is_empty(&self) -> bool {
        self.priority.is_none() && self.upset.is_none()
    }

    /// An earlier proposal still pending, joined with a later one: the higher priority, the
    /// first upset evidence, the later cause.
    pub fn merge(self, later: Proposal) -> Proposal {
        let priority = match (self.priority, later.priority) {
            (Some(earlier), Some(later)) if later.0 > earlier.0 => Some(later),
            (Some(earlier), _) => Some(earlier),
            (None, later) => later,
        };
        Proposal {
            priority,
            upset: self.upset.or(later.upset),
            cause: later.cause,
        }
    }
}

/// What the rules know of a ticket besides its text.
#[derive(Clone, Copy, Debug)]
pub struct TicketFacts<'a> {
    pub tier: Option<&'a str>,
    pub channel: Channel,
    pub ticket_type: &'a str,
}

/// The configured rules, prepared for matching.
#[derive(Clone, Debug)]
pub struct PriorityRules {
    config: PriorityConfig,
    /// Phrases lowercased once.
    keywords: Vec<KeywordRule>,
}

impl PriorityRules {
    pub fn new(config: &PriorityConfig) -> PriorityRules {
        let keywords = config
            .keywords
            .iter()
            .map(|rule| KeywordRule {
                rule_id: rule.rule_id.clone(),
                priority: rule.priority,
                phrases: rule
                    .phrases
                    .iter()
                    .map(|phrase| phrase.to_lowercase())
                    .collect(),
            })
            .collect();
        PriorityRules {
            config: config.clone(),
            keywords,
        }
    }

    /// The highest priority any rule asks for on this text and ticket, and whether the
    /// customer is upset; `None` when no rule matches.
    ///
    /// `facts` are given when the ticket is created: tier, channel and type rules apply once,
    /// so that a person who lowers the priority is not overruled by the next customer message.
    pub fn evaluate(
        &self,
        text: &str,
        facts: Option<TicketFacts<'_>>,
        cause: Uuid,
    ) -> Option<Proposal> {
        if !self.config.enabled {
            return None;
        }
        let lower = text.to_lowercase();
        let mut best: Option<(Priority, String, String)> = None;
        let mut offer = |priority: Priority, rule_id: String, evidence: String| {
            if best
                .as_ref()
                .is_none_or(|(current, _, _)| priority > *current)
            {
                best = Some((priority, rule_id, evidence));
            }
        };
        for rule in &self.keywords {
            if let Some(phrase) = rule
                .phrases
                .iter()
                .find(|phrase| lower.contains(phrase.as_str()))
            {
                offer(
                    rule.priority,
                    rule.rule_id.clone(),
                    format!("text contains {:?}", clip(phrase)),
                );
            }
        }
        let tier = facts.and_then(|facts| facts.tier);
        if let Some((tier, priority)) = tier.and_then(|tier| self.config.tiers.get_key_value(tier))
        {
            offer(
                *priority,
                format!("tier.{tier}"),
                format!("customer tier {tier}"),
            );
        }
        let channel = facts.map(|facts| channel_name(facts.channel));
        if let Some((channel, priority)) =
            channel.and_then(|channel| self.config.channels.get_key_value(channel))
        {
            offer(
                *priority,
                format!("channel.{channel}"),
                format!("channel {channel}"),
            );
        }
        let ticket_type = facts.map(|facts| facts.ticket_type);
        if let Some((ticket_type, priority)) =
            ticket_type.and_then(|ticket_type| self.config.types.get_key_value(ticket_type))
        {
            offer(
                *priority,
                format!("type.{ticket_type}"),
                format!("ticket type {ticket_type}"),
            );
        }
        let mut upset = None;
        if self.config.sentiment {
            if let Some(found) = sentiment::detect(text) {
                let evidence = format!(
                    "negative sentiment score {}: {}",
                    found.score,
                    clip(&found.evidence.join(" / "))
                );
                offer(
                    self.config.sentiment_priority,
                    sentiment::RULE_ID.to_owned(),
                    evidence.clone(),
                );
                upset = Some((sentiment::RULE_ID.to_owned(), evidence));
            }
        }
        let proposal = Proposal {
            priority: best,
            upset,
            cause,
        };
        (!proposal.is_empty()).then_some(proposal)
    }
}

fn clip(text: &str) -> String {
    text.chars().take(EVIDENCE_CHARS_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, tier: Option<&str>, channel: Channel, ticket_type: &str) -> String {
        let mut config = PriorityConfig::default();
        config.channels.insert("phone".to_owned(), Priority::High);
        config.types.insert("outage".to_owned(), Priority::Urgent);
        let rules = PriorityRules::new(&config);
        let facts = TicketFacts {
            tier,
            channel,
            ticket_type,
        };
        match rules.evaluate(text, Some(facts), Uuid::nil()) {
            None => "none".to_owned(),
            Some(proposal) => format!("{:?} upset={:?}", proposal.priority, proposal.upset),
        }
    }

    #[test]
    fn rules_raise_to_the_highest_match() {
        let cases = [
            ("订单什么时候发货？", None, Channel::Web, "question"),
            (
                "系统崩溃了，所有门店无法收银",
                None,
                Channel::Web,
                "question",
            ),
            (
                "The whole SYSTEM DOWN since 9am",
                None,
                Channel::Email,
                "question",
            ),
            (
                "Payment failed three times",
                None,
                Channel::Email,
                "question",
            ),
            ("想咨询一下发票", Some("vip"), Channel::Web, "question"),
            ("Where is my parcel?", None, Channel::Phone, "question"),
            ("Where is my parcel?", None, Channel::Web, "outage"),
            ("太差劲了，再也不买了！", None, Channel::Web, "question"),
            (
                "This is the worst service ever, cancel my account",
                Some("vip"),
                Channel::Web,
                "question",
            ),
        ];
        let actual: Vec<String> = cases
            .iter()
            .map(|(text, tier, channel, ticket_type)| {
                format!("{text} => {}", check(text, *tier, *channel, ticket_type))
            })
            .collect();
        expect_test::expect![[r#"
            订单什么时候发货？ => none
            系统崩溃了，所有门店无法收银 => Some((Urgent, "keyword.outage", "text contains \"系统崩溃\"")) upset=None
            The whole SYSTEM DOWN since 9am => Some((Urgent, "keyword.outage", "text contains \"system down\"")) upset=None
            Payment failed three times => Some((Urgent, "keyword.payment", "text contains \"payment failed\"")) upset=None
            想咨询一下发票 => Some((High, "tier.vip", "customer tier vip")) upset=None
            Where is my parcel? => Some((High, "channel.phone", "channel phone")) upset=None
            Where is my parcel? => Some((Urgent, "type.outage", "ticket type outage")) upset=None
            太差劲了，再也不买了！ => Some((High, "sentiment.upset", "negative sentiment score 6: 再也不买 / 太差劲")) upset=Some(("sentiment.upset", "negative sentiment score 6: 再也不买 / 太差劲"))
            This is the worst service ever, cancel my account => Some((High, "tier.vip", "customer tier vip")) upset=Some(("sentiment.upset", "negative sentiment score 6: cancel my account / worst"))"#]].assert_eq(&actual.join("\n"));
    }
}
