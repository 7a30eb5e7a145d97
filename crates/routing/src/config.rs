//! The `[routing]` section of `docket.toml`: per-team strategy and narrowing, the VIP tiers,
//! the hand-back policy and the priority rules. Every field has a shipped default, so an
//! operator writes only what differs. Parsing (with file:line:key errors) is the binary's job;
//! this module owns the shapes and the defaults.

use std::collections::BTreeMap;

use domain::{Channel, Presence, Priority, RoutingStrategy};

/// Phrases in one keyword rule.
pub const RULE_PHRASES_MAX: usize = 200;
/// Keyword rules.
pub const KEYWORD_RULES_MAX: usize = 100;
use serde::Deserialize;

/// The whole routing configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Whether the routing process manager runs at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Customer tiers that count as VIP (for the VIP group and the tier priority rule).
    #[serde(default = "default_vip_tiers")]
    pub vip_tiers: Vec<String>,
    /// Per team, by team name or team id. Teams not listed route by the defaults.
    #[serde(default)]
    pub teams: BTreeMap<String, TeamConfig>,
    #[serde(default)]
    pub priority: PriorityConfig,
}

impl Default for RoutingConfig {
    fn default() -> RoutingConfig {
        RoutingConfig {
            enabled: true,
            vip_tiers: default_vip_tiers(),
            teams: BTreeMap::new(),
            priority: PriorityConfig::default(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_vip_tiers() -> Vec<String> {
    vec!["vip".to_owned()]
}

/// How one team routes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    #[serde(default)]
    pub strategy: RoutingStrategy,
    /// Skills a ticket of a type needs, e.g. `refund = ["billing"]`.
    #[serde(default)]
    pub skills_by_type: BTreeMap<String, Vec<String>>,
    /// Skills a ticket with a tag needs, e.g. `api = ["developer"]`.
    #[serde(default)]
    pub skills_by_tag: BTreeMap<String, Vec<String>>,
    /// Narrow to agents who speak the ticket's detected language (when any member does).
    #[serde(default)]
    pub route_by_language: bool,
    /// A team (name or id) whose members take this team's VIP tickets first.
    #[serde(default)]
    pub vip_group: Option<String>,
    /// Presences that hand an agent's open tickets of this team back to routing.
    #[serde(default = "default_hand_back_on")]
    pub hand_back_on: Vec<Presence>,
}

impl Default for TeamConfig {
    fn default() -> TeamConfig {
        TeamConfig {
            strategy: RoutingStrategy::RoundRobin,
            skills_by_type: BTreeMap::new(),
            skills_by_tag: BTreeMap::new(),
            route_by_language: false,
            vip_group: None,
            hand_back_on: default_hand_back_on(),
        }
    }
}

/// An agent on vacation will not answer for days; one who is offline may be back in minutes,
/// so by default only vacation hands tickets back.
fn default_hand_back_on() -> Vec<Presence> {
    vec![Presence::Vacation]
}

/// Automatic priority: keyword and phrase rules, customer tier, channel, type, sentiment. The
/// highest priority any rule asks for wins; a rule never lowers a priority.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Phrase rules; the shipped ones (`default_keyword_rules`) when left out.
    #[serde(default = "default_keyword_rules")]
    pub keywords: Vec<KeywordRule>,
    /// Minimum priority per customer tier; VIP is at least high by default.
    #[serde(default = "default_tiers")]
    pub tiers: BTreeMap<String, Priority>,
    /// Minimum priority per channel (`email`, `web`, `chat`, `phone`, `social`, `app`, `api`).
    #[serde(default)]
    pub channels: BTreeMap<String, Priority>,
    /// Minimum priority per ticket type.
    #[serde(default)]
    pub types: BTreeMap<String, Priority>,
    /// Detect strongly negative or angry messages, flag the customer upset and raise the
    /// priority to `sentiment_priority`.
    #[serde(default = "yes")]
    pub sentiment: bool,
    #[serde(default = "default_sentiment_priority")]
    pub sentiment_priority: Priority,
}

impl Default for PriorityConfig {
    fn default() -> PriorityConfig {
        PriorityConfig {
            enabled: true,
            keywords: default_keyword_rules(),
            tiers: default_tiers(),
            channels: BTreeMap::new(),
            types: BTreeMap::new(),
            sentiment: true,
            sentiment_priority: default_sentiment_priority(),
        }
    }
}

fn default_tiers() -> BTreeMap<String, Priority> {
    BTreeMap::from([("vip".to_owned(), Priority::High)])
}

fn default_sentiment_priority() -> Priority {
    Priority::High
}

/// Any of `phrases` in the subject, description or a customer message (case-insensitive)
/// raises the priority to at least `priority`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordRule {
    pub rule_id: String,
    pub priority: Priority,
    pub phrases: Vec<String>,
}

/// The shipped phrase rules: outages and payment failures are urgent.
pub fn default_keyword_rules() -> Vec<KeywordRule> {
    let rule = |rule_id: &str, priority, phrases: &[&str]| KeywordRule {
        rule_id: rule_id.to_owned(),
        priority,
        phrases: phrases.iter().map(|phrase| (*phrase).to_owned()).collect(),
    };
    vec![
        rule(
            "keyword.outage",
            Priority::Urgent,
            &[
                "系统崩溃",
                "系统宕机",
                "服务器宕机",
                "无法登录",
                "全部瘫痪",
                "system down",
                "site is down",
                "outage",
                "service unavailable",
                "cannot log in",
                "can't log in",
                "data loss",
            ],
        ),
        rule(
            "keyword.payment",
            Priority::Urgent,
            &[
                "无法支付",
                "支付失败",
                "扣款失败",
                "重复扣款",
                "payment failed",
                "cannot pay",
                "can't pay",
                "charged twice",
                "double charged",
            ],
        ),
        rule(
            "keyword.security",
            Priority::Urgent,
            &[
                "账号被盗",
                "被盗刷",
                "account hacked",
                "account was hacked",
                "unauthorized charge",
                "data breach",
            ],
        ),
    ]
}

/// The channel's name as configuration and JSON spell it.
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Web => "web",
        Channel::Chat => "chat",
        Channel::Phone => "phone",
        Channel::Social => "social",
        Channel::App => "app",
        Channel::Api => "api",
    }
}

const CHANNELS: &[&str] = &["email", "web", "chat", "phone", "social", "app", "api"];

impl RoutingConfig {
    /// What serde cannot check: `(key, problem)` of the first bad value, the key spelt as in
    /// the file, with the index of an array element (`routing.priority.channels.fax`,
    /// `routing.priority.keywords[1].rule_id`).
    pub fn check(&self) -> Result<(), (String, String)> {
        for (team, config) in &self.teams {
            if config
                .vip_group
                .as_deref()
                .is_some_and(|group| group.trim().is_empty())
            {
                return Err((
                    format!("routing.teams.{team}.vip_group"),
                    "names no team".to_owned(),
                ));
            }
            let skills = [
                ("skills_by_type", &config.skills_by_type),
                ("skills_by_tag", &config.skills_by_tag),
            ]
            .into_iter()
            .flat_map(|(map, skills)| skills.iter().map(move |(key, skills)| (map, key, skills)))
            .flat_map(|(map, key, skills)| skills.iter().map(move |skill| (map, key, skill)));
            for (map, key, skill) in skills {
                let well_formed = !skill.is_empty()
                    && skill.len() <= domain::SKILL_BYTES_MAX
                    && skill.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    });
                if !well_formed {
                    return Err((
                        format!("routing.teams.{team}.{map}.{key}"),
                        format!(
                            "{skill:?} is not a skill (lowercase ascii letters, digits, `_`, `-`)"
                        ),
                    ));
                }
            }
        }
        let priority = &self.priority;
        if priority.keywords.len() > KEYWORD_RULES_MAX {
            return Err((
                "routing.priority.keywords".to_owned(),
                format!("more than {KEYWORD_RULES_MAX} rules"),
            ));
        }
        for (index, rule) in priority.keywords.iter().enumerate() {
            // The id goes into every `PriorityChangedByRule` the rule causes, and the decider
            // refuses one it would not take as a token: such a rule would match and be refused
            // every round.
            if rule.rule_id.is_empty()
                || rule
                    .rule_id
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err((
                    format!("routing.priority.keywords[{index}].rule_id"),
                    format!(
                        "{:?} must be a word without spaces or control characters",
                        rule.rule_id
                    ),
                ));
            }
            if rule.rule_id.len() > domain::limits::IDENTIFIER_BYTES_MAX {
                return Err((
                    format!("routing.priority.keywords[{index}].rule_id"),
                    format!(
                        "{:?} is longer than {} bytes",
                        rule.rule_id,
                        domain::limits::IDENTIFIER_BYTES_MAX
                    ),
                ));
            }
            if rule.phrases.is_empty() || rule.phrases.len() > RULE_PHRASES_MAX {
                return Err((
                    format!("routing.priority.keywords[{index}].phrases"),
                    format!("must list 1 to {RULE_PHRASES_MAX} phrases"),
                ));
            }
            if rule.phrases.iter().any(|phrase| phrase.trim().is_empty()) {
                return Err((
                    format!("routing.priority.keywords[{index}].phrases"),
                    "a phrase is empty".to_owned(),
                ));
            }
        }
        if let Some(channel) = priority
            .channels
            .keys()
            .find(|channel| !CHANNELS.contains(&channel.as_str()))
        {
            return Err((
                format!("routing.priority.channels.{channel}"),
                format!("no such channel; channels are {}", CHANNELS.join(", ")),
            ));
        }
        Ok(())
    }
}

/// Shipped example of the section, kept parseable by a test.
pub const EXAMPLE: &str = r#"
[routing]
vip_tiers = ["vip", "enterprise"]

[routing.teams.Billing]
strategy = "least_loaded"
skills_by_type = { refund = ["billing"] }
skills_by_tag = { invoice = ["billing"] }
route_by_language = true
vip_group = "Key accounts"
hand_back_on = ["vacation", "offline"]

[routing.priority]
tiers = { vip = "high", enterprise = "high" }
channels = { phone = "high" }
types = { outage = "urgent" }
sentiment_priority = "high"

[[routing.priority.keywords]]
rule_id = "keyword.outage"
priority = "urgent"
phrases = ["系统崩溃", "system down"]
"#;
