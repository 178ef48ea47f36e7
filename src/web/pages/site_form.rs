//! The site form: its fields as typed, and the settings input they stand for.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::sites::config::{AllowOverride, OverrideWord};
use crate::sites::input::PhpInput;
use crate::sites::{Settings, SettingsInput, Site};

/// The site form's fields (text as typed, so a refused form is shown back as it was).
/// A field the form does not have is refused (naming it), never dropped.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteForm {
    /// Checked by the guard before the handler runs.
    #[serde(default, rename = "csrf_token")]
    pub(crate) _csrf_token: String,
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) server_name: String,
    #[serde(default)]
    pub(crate) aliases: String,
    #[serde(default)]
    pub(crate) keep_releases: String,
    #[serde(default)]
    pub(crate) switch: String,
    #[serde(default)]
    pub(crate) health_path: String,
    #[serde(default)]
    pub(crate) shared_paths: String,
    #[serde(default)]
    pub(crate) reload_always: Option<String>,
    #[serde(default)]
    pub(crate) runtime: String,
    /// Index files, space- or line-separated; blank = the runtime's default.
    #[serde(default)]
    pub(crate) directory_index: String,
    /// Options, space- or line-separated.
    #[serde(default)]
    pub(crate) options: String,
    /// `none`, `all`, or override classes separated by spaces.
    #[serde(default)]
    pub(crate) allow_override: String,
    #[serde(default)]
    pub(crate) directives: String,
    /// `name = value` lines.
    #[serde(default)]
    pub(crate) php_settings: String,
    /// Commands, one per line (words split as a shell would, or a JSON array).
    #[serde(default)]
    pub(crate) steps_after_unpack: String,
    #[serde(default)]
    pub(crate) steps_before_switch: String,
    #[serde(default)]
    pub(crate) steps_after_switch: String,
    /// Seconds; blank = the default.
    #[serde(default)]
    pub(crate) step_timeout_seconds: String,
    /// `skip`: a rollback does not run the switch steps; anything else: it does.
    #[serde(default)]
    pub(crate) rollback_steps: String,
    /// Shared folders where PHP may run, one per line.
    #[serde(default)]
    pub(crate) php_in_shared: String,
}

impl SiteForm {
    pub(crate) fn from_site(site: &Site) -> Self {
        let s = &site.settings;
        Self {
            name: site.name.clone(),
            server_name: s.server_name.clone(),
            aliases: s.aliases.join("\n"),
            keep_releases: s.keep_releases.to_string(),
            switch: s.switch_mode.as_str().into(),
            health_path: s.health_path.clone(),
            shared_paths: s.shared_paths.join("\n"),
            reload_always: s.reload_always.then(|| "on".into()),
            runtime: s.config.runtime.as_str().into(),
            directory_index: s.config.directory_index.join(" "),
            options: s.config.options.join(" "),
            allow_override: match &s.config.allow_override {
                AllowOverride::Classes(c) => c.join(" "),
                word => serde_json::to_value(word)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            },
            directives: s.config.directives.clone(),
            php_settings: s
                .config
                .php
                .settings
                .iter()
                .map(|(k, v)| format!("{k} = {v}\n"))
                .collect(),
            steps_after_unpack: step_lines(&s.config.steps.after_unpack),
            steps_before_switch: step_lines(&s.config.steps.before_switch),
            steps_after_switch: step_lines(&s.config.steps.after_switch),
            step_timeout_seconds: s.config.step_timeout_seconds.to_string(),
            rollback_steps: match s.config.rollback_runs_steps {
                true => "run".into(),
                false => "skip".into(),
            },
            php_in_shared: s.config.php_in_shared.join("\n"),
            _csrf_token: String::new(),
        }
    }

    /// The input the form stands for; settings it does not show (maintenance) are kept from
    /// `current`.
    pub(crate) fn input(&self, current: Option<&Settings>) -> AppResult<SettingsInput> {
        let keep = match self.keep_releases.trim() {
            "" => None,
            k => Some(k.parse().map_err(|_| {
                AppError::invalid(
                    code::INVALID_KEEP,
                    "Releases to keep is a number from 1 to 100.",
                )
            })?),
        };
        let lines = |s: &str| {
            s.split(['\n', ',', ' '])
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect()
        };
        Ok(SettingsInput {
            server_name: Some(self.server_name.clone()),
            aliases: lines(&self.aliases),
            keep_releases: keep,
            switch_mode: Some(self.switch.clone()),
            health_path: Some(self.health_path.clone()),
            shared_paths: lines(&self.shared_paths),
            reload_always: self.reload_always.is_some(),
            runtime: Some(self.runtime.clone()),
            directory_index: Some(words(&self.directory_index)).filter(|l| !l.is_empty()),
            options: words(&self.options),
            allow_override: Some(match self.allow_override.trim() {
                "" | "none" => AllowOverride::Word(OverrideWord::None),
                "all" => AllowOverride::Word(OverrideWord::All),
                list => AllowOverride::Classes(words(list)),
            }),
            directives: self.directives.clone(),
            php: Some(PhpInput {
                settings: php_lines(&self.php_settings)?,
            }),
            maintenance: current.is_some_and(|c| c.config.maintenance),
            // HTTPS is set through the API and the CLI; the form keeps it as it is.
            tls: current
                .and_then(|c| c.config.tls.as_ref())
                .and_then(|t| serde_json::to_value(t).ok()),
            steps: Some(crate::steps::Steps {
                after_unpack: commands("Build steps", &self.steps_after_unpack)?,
                before_switch: commands("Steps before the switch", &self.steps_before_switch)?,
                after_switch: commands("Steps after the switch", &self.steps_after_switch)?,
            }),
            step_timeout_seconds: match self.step_timeout_seconds.trim() {
                "" => None,
                t => Some(t.parse().map_err(|_| {
                    AppError::invalid(
                        code::INVALID_STEPS,
                        "Time limit of a step: a number of seconds, e.g. 300.",
                    )
                })?),
            },
            rollback_runs_steps: Some(self.rollback_steps.trim() != "skip"),
            php_in_shared: lines(&self.php_in_shared),
        })
    }
}

/// Commands as form lines.
fn step_lines(commands: &[Vec<String>]) -> String {
    commands
        .iter()
        .map(|c| crate::steps::show_line(c) + "\n")
        .collect()
}

/// One command per non-blank line of a step field named `what`.
fn commands(what: &str, text: &str) -> AppResult<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let command = crate::steps::parse_line(line).map_err(|m| {
            AppError::invalid(code::INVALID_STEPS, format!("{what}, line {}: {m}", n + 1))
        })?;
        out.push(command);
    }
    Ok(out)
}

/// Words separated by spaces, commas or lines.
fn words(s: &str) -> Vec<String> {
    s.split(['\n', ',', ' ', '\r', '\t'])
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `name = value` lines (blank lines and `;` comments skipped).
fn php_lines(text: &str) -> AppResult<BTreeMap<String, serde_json::Value>> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            let m = format!(
                "PHP settings, line {}: write one setting per line as name = value.",
                n + 1
            );
            return Err(AppError::invalid(code::INVALID_PHP_SETTING, m));
        };
        out.insert(
            k.trim().to_owned(),
            serde_json::Value::String(v.trim().to_owned()),
        );
    }
    Ok(out)
}
