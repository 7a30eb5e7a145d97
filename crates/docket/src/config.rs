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

    pub fn api_config(&self) -> api::ApiConfig {
        api::ApiConfig {
            rate_limit: api::RateLimit {
                burst: self.api.rate_limit_burst,
                per_second: self.api.rate_limit_per_second,
            },
            read_wait_max: Duration::from_millis(self.api.read_wait_max_ms),
            automation: self.compiled_automation.clone(),
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
    if config.api.rate_limit_burst == 0 || config.api.rate_limit_per_second == 0 {
        bail!(
            "{}: api.rate_limit_burst and api.rate_limit_per_second must be at least 1",
            path.display()
        );
    }
    let automation = config.automation.compile().map_err(|error| {
        anyhow::anyhow!("{}", error.display_in(&path.display().to_string(), text))
    })?;
    config.compiled_automation = Arc::new(automation);
    Ok(config)
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

    #[test]
    fn errors_name_the_file_line_and_field() {
        let cases = [
            "",
            "[api]\nrate_limit_burst = 50\n",
            "[api]\nrate_limit_burst = 50\nrate_limt_per_second = 3\n",
            "[api]\nrate_limit_burst = \"many\"\n",
            "[api]\nrate_limit_burst = 0\n",
            "[api\n",
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
            docket.toml:7: automation.macros[0].reply: unknown placeholder {{customer.nmae}} at byte 3; known: {{customer.name}}, {{customer.email}}, {{ticket.number}}, {{ticket.subject}}, {{agent.name}}"#]].assert_eq(&actual.join("\n"));
    }
}
