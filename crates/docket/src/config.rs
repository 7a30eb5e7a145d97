//! `docket.toml`: the operator's configuration. Optional: without it Docket runs on shipped
//! defaults. A bad file is an error that names the file, the line and the field.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The default configuration file, looked up in the working directory.
pub const DEFAULT_CONFIG: &str = "docket.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub blueprints: BlueprintsSection,
    /// Team routing, priority rules and sentiment (`routing::config`).
    #[serde(default)]
    pub routing: routing::RoutingConfig,
    /// SLA policies and calendars; the shipped defaults when absent (see docs/sla.md).
    #[serde(default)]
    pub sla: Option<sla_scheduler::SlaConfig>,
    /// Triggers, macros and time-based rules, as written.
    #[serde(default)]
    pub automation: automation::AutomationSection,
    /// `automation`, compiled and checked when the file is parsed.
    #[serde(skip)]
    pub compiled_automation: Arc<automation::Automation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Requests a token may make in a burst.
    #[serde(default = "default_burst")]
    pub rate_limit_burst: u64,
    /// Requests per second a token may sustain.
    #[serde(default = "default_per_second")]
    pub rate_limit_per_second: u64,
    /// The longest a read with `?min_position=` waits, in milliseconds.
    #[serde(default = "default_read_wait")]
    pub read_wait_max_ms: u64,
}

impl Default for ApiSection {
    fn default() -> ApiSection {
        ApiSection {
            rate_limit_burst: default_burst(),
            rate_limit_per_second: default_per_second(),
            read_wait_max_ms: default_read_wait(),
        }
    }
}

fn default_burst() -> u64 {
    api::RateLimit::default().burst
}
fn default_per_second() -> u64 {
    api::RateLimit::default().per_second
}
fn default_read_wait() -> u64 {
    5_000
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlueprintsSection {
    /// Extra blueprint files (TOML), relative to the configuration file; loaded beside the
    /// shipped ones.
    #[serde(default)]
    pub files: Vec<PathBuf>,
}

impl Config {
    /// Loads `path`; a missing default file means defaults, a missing named file is an error.
    pub fn load(path: &Path, named: bool) -> anyhow::Result<(Config, domain::BlueprintCatalog)> {
        let config = match std::fs::read_to_string(path) {
            Ok(text) => parse(path, &text)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !named => {
                Config::default()
            }
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut sources = domain::BUILTIN_BLUEPRINTS
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect::<Vec<_>>();
        for file in &config.blueprints.files {
            let full = base.join(file);
            let text = std::fs::read_to_string(&full).with_context(|| {
                format!(
                    "{}: blueprints.files: reading {}",
                    path.display(),
                    full.display()
                )
            })?;
            sources.push((full.display().to_string(), text));
        }
        let borrowed: Vec<(&str, &str)> = sources
            .iter()
            .map(|(name, text)| (name.as_str(), text.as_str()))
            .collect();
        let catalog = domain::BlueprintCatalog::load(&borrowed)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        Ok((config, catalog))
    }

    /// The SLA policies in force: the `[sla]` section, or the shipped defaults.
    pub fn sla_policies(&self) -> sla_scheduler::Policies {
        // Checked when the file was parsed; the shipped defaults are checked by a test.
        let config = self
            .sla
            .clone()
            .unwrap_or_else(sla_scheduler::SlaConfig::shipped);
        sla_scheduler::Policies::compile(&config).expect("SLA policies were checked at load")
    }

    pub fn api_config(&self) -> api::ApiConfig {
        api::ApiConfig {
            rate_limit: api::RateLimit {
                burst: self.api.rate_limit_burst,
                per_second: self.api.rate_limit_per_second,
            },
            read_wait_max: Duration::from_millis(self.api.read_wait_max_ms),
            automation: self.compiled_automation.clone(),
            // From the environment, never from the file: serve sets it.
            webhook_signing_key: None,
            directory_follows_log: true,
        }
    }
}

fn parse(path: &Path, text: &str) -> anyhow::Result<Config> {
    let mut config: Config = toml::from_str(text).map_err(|error| {
        // toml names unknown fields itself; for a bad value, name the key on the offending line.
        let (location, key) = error
            .span()
            .map(|span| {
                let start = span.start.min(text.len());
                let line = text[..start].matches('\n').count() + 1;
                let line_text = text.lines().nth(line - 1).unwrap_or("");
                let key = line_text
                    .split_once('=')
                    .map(|(key, _)| key.trim())
                    .filter(|key| !key.is_empty());
                (
                    format!(":{line}"),
                    key.map(|key| format!("{key}: ")).unwrap_or_default(),
                )
            })
            .unwrap_or_default();
        anyhow::anyhow!("{}{location}: {key}{}", path.display(), error.message())
    })?;
    if let Some(sla) = &config.sla {
        sla_scheduler::Policies::compile(sla).map_err(|error| {
            let line = line_of_path(text, &error.path)
                .map(|line| format!(":{line}"))
                .unwrap_or_default();
            anyhow::anyhow!("{}{line}: {error}", path.display())
        })?;
    }
    if config.api.rate_limit_burst == 0 || config.api.rate_limit_per_second == 0 {
        bail!(
            "{}: api.rate_limit_burst and api.rate_limit_per_second must be at least 1",
            path.display()
        );
    }
    if let Err((key, problem)) = config.routing.check() {
        let line = line_of_key(text, &key)
            .map(|line| format!(":{line}"))
            .unwrap_or_default();
        bail!("{}{line}: {key}: {problem}", path.display());
    }
    let automation = config.automation.compile().map_err(|error| {
        anyhow::anyhow!("{}", error.display_in(&path.display().to_string(), text))
    })?;
    config.compiled_automation = Arc::new(automation);
    Ok(config)
}

/// The line (from 1) where the key `path` names is written, found in the parsed document (so
/// inline tables, dotted keys and repeated `[[…]]` blocks are told apart): `path` is dotted,
/// with `[n]` after an array's name for its element (`routing.priority.keywords[1].rule_id`).
/// A key containing a dot is not found, and gets no line.
fn line_of_key(text: &str, path: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = document.get_ref();
    let mut span = None;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let (name, index) = match part.split_once('[') {
            Some((name, index)) => (
                name,
                Some(index.trim_end_matches(']').parse::<usize>().ok()?),
            ),
            None => (part, None),
        };
        let (key, value) = table
            .iter()
            .find(|(key, _)| key.get_ref().as_ref() == name)?;
        span = Some(key.span().start);
        let mut value = value.get_ref();
        if let Some(index) = index {
            let DeValue::Array(array) = value else {
                return None;
            };
            let element = array.get(index)?;
            span = Some(element.span().start);
            value = element.get_ref();
        }
        if parts.peek().is_none() {
            break;
        }
        let DeValue::Table(inner) = value else {
            return None;
        };
        table = inner;
    }
    let offset = span?;
    Some(text.get(..offset)?.matches('\n').count() + 1)
}

/// The line where the key a policy error names is written: `sla.policies[1].calendar` is the
/// `calendar` key after the second `[[sla.policies]]` header (or the header itself).
fn line_of_path(text: &str, path: &str) -> Option<usize> {
    let mut parts = path.split('.').skip(1).peekable();
    let mut line = 0;
    let lines: Vec<&str> = text.lines().collect();
    while let Some(part) = parts.next() {
        let (name, index) = match part.split_once('[') {
            Some((name, index)) => (name, index.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let found = match index {
            Some(index) => {
                let header = format!("sla.{name}]]");
                lines
                    .iter()
                    .enumerate()
                    .skip(line)
                    .filter(|(_, text)| {
                        let text = text.trim();
                        text.starts_with("[[") && text.ends_with(&header)
                    })
                    .nth(index)
                    .map(|(n, _)| n)
            }
            None => lines.iter().enumerate().skip(line).find_map(|(n, text)| {
                let text = text.trim();
                let key = text.split('=').next().unwrap_or("").trim();
                (key == name || text.trim_matches(['[', ']']).ends_with(name)).then_some(n)
            }),
        };
        match found {
            Some(n) => line = n,
            None => return (line > 0).then_some(line + 1),
        }
        if parts.peek().is_none() {
            return Some(line + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> String {
        match parse(Path::new("docket.toml"), text) {
            Ok(config) => format!("ok burst={}", config.api.rate_limit_burst),
            Err(error) => format!("{error:#}"),
        }
    }

    /// Review #7 finding 7: routing errors guessed the line from the key's last segment, so a
    /// second team's `vip_group`, the second `[[routing.priority.keywords]]` block or a value in
    /// an inline table pointed at the wrong line or none.
    #[test]
    fn routing_errors_point_at_the_line_of_the_key() {
        let cases = [
            "[routing.teams.Support]\nvip_group = \"Key\"\n[routing.teams.Billing]\nvip_group = \" \"\n",
            "[[routing.priority.keywords]]\nrule_id = \"a\"\npriority = \"urgent\"\nphrases = [\"x\"]\n\n[[routing.priority.keywords]]\nrule_id = \"b c\"\npriority = \"urgent\"\nphrases = [\"y\"]\n",
            "[[routing.priority.keywords]]\nrule_id = \"a\"\npriority = \"urgent\"\nphrases = [\"x\"]\n\n[[routing.priority.keywords]]\nrule_id = \"b\"\npriority = \"urgent\"\nphrases = [\" \"]\n",
            "[routing.teams]\nSupport = {}\nBilling = { vip_group = \" \" }\n",
            "[routing.teams.Billing]\nroute_by_language = true\nskills_by_type = { refund = [\"Bad Skill\"] }\n",
        ];
        let actual: Vec<String> = cases.iter().map(|text| check(text)).collect();
        expect_test::expect![[r#"
            docket.toml:4: routing.teams.Billing.vip_group: names no team
            docket.toml:7: routing.priority.keywords[1].rule_id: "b c" must be a word without spaces or control characters
            docket.toml:9: routing.priority.keywords[1].phrases: a phrase is empty
            docket.toml:3: routing.teams.Billing.vip_group: names no team
            docket.toml:3: routing.teams.Billing.skills_by_type.refund: "Bad Skill" is not a skill (lowercase ascii letters, digits, `_`, `-`)"#]].assert_eq(&actual.join("\n"));
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let cases = [
            "",
            "[api]\nrate_limit_burst = 50\n",
            "[api]\nrate_limit_burst = 50\nrate_limt_per_second = 3\n",
            "[api]\nrate_limit_burst = \"many\"\n",
            "[api]\nrate_limit_burst = 0\n",
            "[api\n",
            "[routing.teams.Billing]\nstrategy = \"fastest\"\n",
            "[routing.priority.channels]\nfax = \"urgent\"\n",
            "[routing.priority]\nsentiment_priority = \"critical\"\n",
            "[routing.teams.Billing]\nhand_back_on = [\"asleep\"]\n",
            routing::config::EXAMPLE,
            "[sla]\nversion = 1\n[[sla.policies]]\nid = \"p\"\ncalendar = \"office\"\ntargets.first_response = \"2h\"\n",
            "[sla]\nversion = 1\n[[sla.policies]]\nid = \"p\"\ntargets.first_response = \"2 days\"\n",
            "[sla]\nversion = 1\n[[sla.policies]]\nid = \"p\"\ntargets.first_response = \"2h\"\n[[sla.policies]]\nid = \"q\"\ntargets.resolution = \"2h\"\n",
            "[api]\nrate_limit_burst = 5\n\n[[automation.macros]]\nid = \"m\"\ntitle = \"M\"\nreply = \"Hi {{customer.nmae}}\"\n",
        ];
        let actual: Vec<String> = cases.iter().map(|text| check(text)).collect();
        expect_test::expect![[r#"
            ok burst=2000
            ok burst=50
            docket.toml:3: rate_limt_per_second: unknown field `rate_limt_per_second`, expected one of `rate_limit_burst`, `rate_limit_per_second`, `read_wait_max_ms`
            docket.toml:2: rate_limit_burst: invalid type: string "many", expected u64
            docket.toml: api.rate_limit_burst and api.rate_limit_per_second must be at least 1
            docket.toml:1: unclosed table, expected `]`
            docket.toml:2: strategy: unknown variant `fastest`, expected `round_robin` or `least_loaded`
            docket.toml:2: routing.priority.channels.fax: no such channel; channels are email, web, chat, phone, social, app, api
            docket.toml:2: sentiment_priority: unknown variant `critical`, expected one of `low`, `normal`, `high`, `urgent`
            docket.toml:2: hand_back_on: unknown variant `asleep`, expected one of `online`, `away`, `offline`, `vacation`
            ok burst=2000
            docket.toml:5: sla.policies[0].calendar: unknown calendar "office" (define it under [sla.calendars.office] or use "24x7")
            docket.toml:5: targets.first_response: "2 days" is not a duration such as "2h", "90m" or "1h30m"
            docket.toml:6: sla.policies[1]: unreachable: policy "p" before it has no conditions and matches every ticket
            docket.toml:7: automation.macros[0].reply: unknown placeholder {{customer.nmae}} at byte 3; known: {{customer.name}}, {{customer.email}}, {{ticket.number}}, {{ticket.subject}}, {{agent.name}}"#]].assert_eq(&actual.join("\n"));
    }
}
