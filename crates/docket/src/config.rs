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
    #[serde(default)]
    pub projections: ProjectionsSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionsSection {
    /// The OS niceness (0 to 19) of the thread the read models fold on: when the cores are
    /// short, commands and the scheduler's fires run first and the read models catch up
    /// after (docs/projections.md).
    #[serde(default = "default_fold_nice")]
    pub fold_nice: Niceness,
}

impl Default for ProjectionsSection {
    fn default() -> ProjectionsSection {
        ProjectionsSection {
            fold_nice: default_fold_nice(),
        }
    }
}

fn default_fold_nice() -> Niceness {
    Niceness(projections::FOLD_NICE_DEFAULT)
}

/// A niceness, 0 (the default priority) to 19 (yields the most); checked when read.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(try_from = "i64")]
pub struct Niceness(pub i32);

impl TryFrom<i64> for Niceness {
    type Error = String;

    fn try_from(value: i64) -> Result<Niceness, String> {
        match i32::try_from(value) {
            Ok(nice @ 0..=19) => Ok(Niceness(nice)),
            _ => Err(format!(
                "a niceness is 0 (the default priority) to 19 (the lowest), not {value}"
            )),
        }
    }
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
        let (config, text) = match std::fs::read_to_string(path) {
            Ok(text) => (parse(path, &text)?, text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !named => {
                (Config::default(), String::new())
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
        check_transitions(&config.automation, &catalog, &text).map_err(|error| {
            anyhow::anyhow!("{}", error.display_in(&path.display().to_string(), &text))
        })?;
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
            // Serve passes the counters of the manager and the dispatcher it starts.
            trigger_stats: None,
            webhook_stats: None,
            routing_stats: None,
            fold_nice: Some(self.projections.fold_nice.0),
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

/// Every transition the automation section names must exist in a blueprint of the catalog, or
/// every use of it would be refused at run time; where the system role takes it (trigger
/// actions, time-based closes) some blueprint must let the system role take it.
fn check_transitions(
    section: &automation::AutomationSection,
    catalog: &domain::BlueprintCatalog,
    text: &str,
) -> Result<(), automation::ConfigError> {
    use automation::config::ActionConfig;
    // (key, name, where it is written, taken by the system role)
    let mut uses: Vec<(String, String, Option<std::ops::Range<usize>>, bool)> = Vec::new();
    for (i, trigger) in section.triggers.iter().enumerate() {
        for (j, action) in trigger.actions.get_ref().iter().enumerate() {
            if let ActionConfig::Transition(name) = action.get_ref() {
                let key = format!("automation.triggers[{i}].actions[{j}].transition");
                uses.push((key, name.clone(), Some(action.span()), true));
            }
        }
    }
    for (i, config) in section.macros.iter().enumerate() {
        if let Some(name) = &config.transition {
            let key = format!("automation.macros[{i}].transition");
            uses.push((key, name.get_ref().clone(), Some(name.span()), false));
        }
    }
    if let Some(timed) = &section.timed {
        // The values are not spanned one by one: find the line that sets the key, else the
        // table's.
        let span_of = |leaf: &str| {
            let start = timed.span().start.min(text.len());
            let mut offset = start;
            for line in text[start..].split_inclusive('\n') {
                let key = line.split('=').next().unwrap_or("").trim();
                if line.contains('=') && (key == leaf || key.ends_with(&format!(".{leaf}"))) {
                    return Some(offset..offset + line.len());
                }
                offset += line.len();
            }
            Some(timed.span())
        };
        let config = timed.get_ref();
        if config.close_pending_after_hours.is_some() {
            if let Some(name) = &config.close_pending_transition {
                let leaf = "close_pending_transition";
                uses.push((
                    format!("automation.timed.{leaf}"),
                    name.clone(),
                    span_of(leaf),
                    true,
                ));
            }
        }
        if config.close_solved_after_hours.is_some() {
            let (leaf, name) = match &config.close_solved_transition {
                Some(name) => ("close_solved_transition", name.clone()),
                None => ("close_solved_after_hours", "close".to_owned()),
            };
            let key = "automation.timed.close_solved_transition".to_owned();
            uses.push((key, name, span_of(leaf), true));
        }
    }
    for (key, name, span, by_system) in uses {
        let defined: Vec<&domain::Transition> = catalog
            .iter()
            .filter_map(|blueprint| blueprint.transition(&name))
            .collect();
        let message = if defined.is_empty() {
            let mut known: Vec<&str> = catalog
                .iter()
                .flat_map(|blueprint| blueprint.transitions.iter().map(|t| t.name.as_str()))
                .collect();
            known.sort_unstable();
            known.dedup();
            format!(
                "no blueprint has a transition {name:?}; known: {}",
                known.join(", ")
            )
        } else if by_system
            && !defined
                .iter()
                .any(|transition| transition.roles.contains(&domain::Role::System))
        {
            format!("the system role may not take transition {name:?} in any blueprint; automations act as the system")
        } else {
            continue;
        };
        return Err(automation::ConfigError { span, key, message });
    }
    Ok(())
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
            "[projections]\nfold_nice = 20\n",
            "[projections]\nfold_nice = 0\n",
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
            docket.toml:7: automation.macros[0].reply: unknown placeholder {{customer.nmae}} at byte 3; known: {{customer.name}}, {{customer.email}}, {{ticket.number}}, {{ticket.subject}}, {{agent.name}}
            docket.toml:2: fold_nice: a niceness is 0 (the default priority) to 19 (the lowest), not 20
            ok burst=2000"#]].assert_eq(&actual.join("\n"));
    }

    /// Loads `text` as a docket.toml through `Config::load` (with the shipped blueprints).
    fn load(text: &str) -> String {
        let dir = std::env::temp_dir().join(format!("docket-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("docket.toml");
        std::fs::write(&path, text).unwrap();
        let result = Config::load(&path, true);
        std::fs::remove_dir_all(&dir).unwrap();
        match result {
            Ok(_) => "ok".to_owned(),
            Err(error) => format!("{error:#}").replace(&path.display().to_string(), "docket.toml"),
        }
    }

    #[test]
    fn transition_names_in_automation_are_checked_against_the_blueprints() {
        // review-7 finding 6: a typo meant every due close (or firing) was refused forever.
        let cases = [
            // Known names, the system allowed where it acts: fine.
            "[automation.timed]\nclose_pending_after_hours = 168\nclose_pending_transition = \"expire\"\nclose_solved_after_hours = 48\n",
            "[[automation.macros]]\nid = \"m\"\ntitle = \"M\"\ntransition = \"resolve\"\n",
            // A typo in a trigger action, a macro, a timed rule; the default `close` is fine.
            "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = [\n  { add_tags = [\"x\"] },\n  { transition = \"clsoe\" },\n]\n",
            "[[automation.macros]]\nid = \"m\"\ntitle = \"M\"\nadd_tags = [\"m\"]\n\n[[automation.macros]]\nid = \"n\"\ntitle = \"N\"\ntransition = \"reslove\"\n",
            "[automation.timed]\nclose_pending_after_hours = 168\nclose_pending_transition = \"expier\"\n",
            "[automation.timed]\nclose_solved_after_hours = 48\nclose_solved_transition = \"closed\"\n",
            // Names that exist but the system role may not take, where the system acts.
            "[automation.timed]\nclose_pending_after_hours = 168\nclose_pending_transition = \"cancel\"\n",
            "[[automation.triggers]]\nid = \"t\"\non = [\"TicketCreated\"]\nactions = [{ transition = \"resolve\" }]\n",
        ];
        let actual: Vec<String> = cases.iter().map(|text| load(text)).collect();
        expect_test::expect![[r#"
            ok
            ok
            docket.toml:6: automation.triggers[0].actions[1].transition: no blueprint has a transition "clsoe"; known: approve, approve_large, ask_customer, cancel, close, confirm, expire, mark_refunded, reject, request_evidence, resolve, resume, resume_review, schedule_follow_up, start, start_review
            docket.toml:9: automation.macros[1].transition: no blueprint has a transition "reslove"; known: approve, approve_large, ask_customer, cancel, close, confirm, expire, mark_refunded, reject, request_evidence, resolve, resume, resume_review, schedule_follow_up, start, start_review
            docket.toml:3: automation.timed.close_pending_transition: no blueprint has a transition "expier"; known: approve, approve_large, ask_customer, cancel, close, confirm, expire, mark_refunded, reject, request_evidence, resolve, resume, resume_review, schedule_follow_up, start, start_review
            docket.toml:3: automation.timed.close_solved_transition: no blueprint has a transition "closed"; known: approve, approve_large, ask_customer, cancel, close, confirm, expire, mark_refunded, reject, request_evidence, resolve, resume, resume_review, schedule_follow_up, start, start_review
            docket.toml:3: automation.timed.close_pending_transition: the system role may not take transition "cancel" in any blueprint; automations act as the system
            docket.toml:4: automation.triggers[0].actions[0].transition: the system role may not take transition "resolve" in any blueprint; automations act as the system"#]].assert_eq(&actual.join("\n"));
    }
}
