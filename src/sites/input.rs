//! Raw site settings as they arrive (form, JSON, CLI), and their validation.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::config::{self, AllowOverride, PhpConfig, Runtime, SiteConfig};
use super::settings::{Settings, SwitchMode};
use super::{suffix, validate};
use crate::error::code::{self, Code};
use crate::error::{AppError, AppResult};

/// Every field a site's settings have in JSON (the contract's v1 and v2 names). A body
/// naming anything else is refused, naming it: a misspelt field must never be dropped.
pub const FIELDS: [&str; 19] = [
    "server_name",
    "aliases",
    "keep_releases",
    "switch",
    "health_path",
    "shared_paths",
    "reload_always",
    "runtime",
    "directory_index",
    "php",
    "options",
    "allow_override",
    "directives",
    "maintenance",
    "tls",
    "steps",
    "step_timeout_seconds",
    "rollback_runs_steps",
    "php_in_shared",
];

/// Raw PHP settings: values as JSON strings, numbers or booleans.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhpInput {
    /// php.ini name → value.
    #[serde(default)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

/// Raw input for site settings (from a form, JSON, or the CLI).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// Required.
    pub server_name: Option<String>,
    /// Optional.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Default 5.
    pub keep_releases: Option<u32>,
    /// Default pinned.
    #[serde(rename = "switch")]
    pub switch_mode: Option<String>,
    /// Default `/`.
    pub health_path: Option<String>,
    /// Default none.
    #[serde(default)]
    pub shared_paths: Vec<String>,
    /// Default false.
    #[serde(default)]
    pub reload_always: bool,
    /// Default `static`.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Default by runtime.
    #[serde(default)]
    pub directory_index: Option<Vec<String>>,
    /// Default none.
    #[serde(default)]
    pub php: Option<PhpInput>,
    /// Default none.
    #[serde(default)]
    pub options: Vec<String>,
    /// Default `"none"`.
    #[serde(default)]
    pub allow_override: Option<AllowOverride>,
    /// Default empty.
    #[serde(default)]
    pub directives: String,
    /// Default false.
    #[serde(default)]
    pub maintenance: bool,
    /// Default null (no HTTPS).
    #[serde(default)]
    pub tls: Option<serde_json::Value>,
    /// Default none.
    #[serde(default)]
    pub steps: Option<crate::steps::Steps>,
    /// Default 300.
    #[serde(default)]
    pub step_timeout_seconds: Option<u64>,
    /// Default true.
    #[serde(default)]
    pub rollback_runs_steps: Option<bool>,
    /// Default none.
    #[serde(default)]
    pub php_in_shared: Vec<String>,
}

/// Settings from a JSON object: every unknown field is named at once (with the known name it
/// resembles), and a field of the wrong type is named with what it should be.
pub fn from_json(object: serde_json::Map<String, serde_json::Value>) -> AppResult<SettingsInput> {
    let unknown: Vec<String> = object
        .keys()
        .filter(|k| !FIELDS.contains(&k.as_str()))
        .map(|k| match FIELDS.iter().find(|f| resembles(k, f)) {
            Some(f) => format!("{} (did you mean {f}?)", crate::vocab::clip(k)),
            None => crate::vocab::clip(k),
        })
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::invalid(
            code::UNKNOWN_FIELD,
            format!(
                "Unknown field{}: {}. Nothing was changed. The fields of a site are: {}.",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                FIELDS.join(", ")
            ),
        ));
    }
    serde_path_to_error::deserialize(serde_json::Value::Object(object)).map_err(|e| {
        let field = e.path().to_string();
        AppError::invalid(
            code::BAD_JSON,
            format!("{field}: {}. Nothing was changed.", e.inner()),
        )
    })
}

/// A likely misspelling: same letters give or take a plural `s`, `-` for `_`, or case.
fn resembles(typed: &str, known: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let (t, k) = (norm(typed), norm(known));
    t == k || format!("{t}s") == k || t == format!("{k}s")
}

/// A host name as people paste it: `https://Shop.Example.org/` means `shop.example.org`.
/// Only this wrapping is removed; what is left must still pass the strict check.
fn host_as_typed(raw: &str) -> String {
    let s = raw.trim();
    let s = ["https://", "http://"]
        .iter()
        .find_map(|p| {
            s.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &s[p.len()..])
        })
        .unwrap_or(s);
    s.strip_suffix('/').unwrap_or(s).to_ascii_lowercase()
}

fn invalid(code: Code, message: String) -> AppError {
    AppError::invalid(code, message)
}

impl SettingsInput {
    /// Checks every field against its allow-list. Every problem is reported at once (the
    /// code is the first one's), so a form needs one correction, not one per field.
    pub fn validate(self, site_dir: &std::path::Path) -> AppResult<Settings> {
        let mut problems: Vec<(Code, String)> = Vec::new();
        let mut check = |code: Code, result: Result<(), String>| {
            if let Err(m) = result {
                problems.push((code, m));
            }
        };
        let server_name = host_as_typed(self.server_name.as_deref().unwrap_or_default());
        check(
            code::INVALID_SERVER_NAME,
            validate::server_name(&server_name),
        );
        let mut aliases = Vec::new();
        for a in self.aliases.iter().map(|a| host_as_typed(a)) {
            if a.is_empty() {
                continue;
            }
            check(
                code::INVALID_ALIAS,
                validate::alias(&a).and_then(|()| suffix::check_wildcard(&a)),
            );
            if a != server_name && !aliases.contains(&a) {
                aliases.push(a);
            }
        }
        if aliases.len() > 20 {
            check(
                code::INVALID_ALIAS,
                Err("A site can have at most 20 aliases.".into()),
            );
        }
        let keep_releases = self.keep_releases.unwrap_or(5);
        if !(1..=100).contains(&keep_releases) {
            let m = "Releases to keep is a number from 1 to 100.";
            check(code::INVALID_KEEP, Err(m.into()));
        }
        let switch_mode = match self.switch_mode.as_deref().map(str::trim) {
            None | Some("") => SwitchMode::Pinned,
            Some(s) => s.parse().unwrap_or_else(|m| {
                check(code::INVALID_SWITCH, Err(m));
                SwitchMode::Pinned
            }),
        };
        let health_path = self
            .health_path
            .as_ref()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        check(
            code::INVALID_HEALTH_PATH,
            validate::health_path(&health_path),
        );
        let mut shared_paths = Vec::new();
        for p in self.shared_paths.iter().map(|p| p.trim()) {
            if p.is_empty() {
                continue;
            }
            check(code::INVALID_SHARED_PATH, validate::shared_path(p));
            if !shared_paths.iter().any(|q: &String| q == p) {
                shared_paths.push(p.to_owned());
            }
        }
        if shared_paths.len() > 20 {
            let m = "A site can have at most 20 shared paths.";
            check(code::INVALID_SHARED_PATH, Err(m.into()));
        }
        // One shared path inside another would make two links fight over the same folder.
        let nested = shared_paths.iter().find(|a| {
            let inside = format!("{a}/");
            shared_paths.iter().any(|b| b.starts_with(&inside))
        });
        if let Some(a) = nested {
            let m =
                format!("The shared path {a} contains another shared path; keep only one of them.");
            check(code::INVALID_SHARED_PATH, Err(m));
        }
        let config = self.serving(site_dir, &mut check);
        check(
            code::INVALID_SHARED_PATH,
            config::check_php_in_shared(&config, &shared_paths),
        );
        if let Some((code, _)) = problems.first() {
            let all: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
            return Err(invalid(*code, all.join(" ")));
        }
        Ok(Settings {
            server_name,
            aliases,
            keep_releases,
            switch_mode,
            health_path,
            shared_paths,
            reload_always: self.reload_always,
            config,
        })
    }

    /// The v2 fields (how the site is served), each problem passed to `check`.
    fn serving(
        &self,
        site_dir: &std::path::Path,
        check: &mut impl FnMut(Code, Result<(), String>),
    ) -> SiteConfig {
        let steps = self.steps.clone().unwrap_or_default();
        check(
            code::INVALID_STEPS,
            steps.check(crate::steps::search_path()),
        );
        let step_timeout_seconds = self
            .step_timeout_seconds
            .unwrap_or(config::DEFAULT_STEP_TIMEOUT);
        if !(1..=config::MAX_STEP_TIMEOUT).contains(&step_timeout_seconds) {
            let m = format!(
                "step_timeout_seconds: a step may run from 1 to {} seconds.",
                config::MAX_STEP_TIMEOUT
            );
            check(code::INVALID_STEPS, Err(m));
        }
        let runtime = match self.runtime.as_deref().map(str::trim) {
            None | Some("") => Runtime::Static,
            Some(r) => r.parse().unwrap_or_else(|m| {
                check(code::INVALID_RUNTIME, Err(m));
                Runtime::Static
            }),
        };
        let directory_index = match &self.directory_index {
            Some(list) => {
                let list: Vec<String> = list.iter().map(|n| n.trim().to_owned()).collect();
                check(code::INVALID_DIRECTORY_INDEX, config::check_index(&list));
                list
            }
            None => runtime.default_index(),
        };
        let mut options: Vec<String> = Vec::new();
        for o in self.options.iter().map(|o| o.trim()) {
            if !o.is_empty() && !options.iter().any(|p| p == o) {
                options.push(o.to_owned());
            }
        }
        check(code::INVALID_OPTIONS, config::check_options(&options));
        let allow_override = self.allow_override.clone().unwrap_or_default();
        check(code::INVALID_ALLOW_OVERRIDE, allow_override.check());
        let php = match &self.php {
            Some(p) => php_settings(&p.settings).unwrap_or_else(|m| {
                check(code::INVALID_PHP_SETTING, Err(m));
                PhpConfig::default()
            }),
            None => PhpConfig::default(),
        };
        if runtime == Runtime::Static && !php.settings.is_empty() {
            let m = "php: PHP settings only apply to a site whose runtime is \"php\".";
            check(code::INVALID_PHP_SETTING, Err(m.into()));
        }
        let directives = self.directives.replace("\r\n", "\n");
        check(
            code::INVALID_DIRECTIVES,
            config::directives_ok(&directives, site_dir),
        );
        let tls = match self.tls.clone().filter(|v| !v.is_null()) {
            None => None,
            Some(v) => match serde_path_to_error::deserialize::<_, super::tls::Tls>(v) {
                Ok(t) => {
                    check(code::INVALID_TLS, t.check_paths());
                    Some(t)
                }
                Err(e) => {
                    let at = e.path().to_string();
                    let m = format!(
                        "tls{}{at}: {}.",
                        if at == "." { "" } else { "." },
                        e.inner()
                    );
                    check(code::INVALID_TLS, Err(m.replace("tls..", "tls.")));
                    None
                }
            },
        };
        SiteConfig {
            tls,
            runtime,
            directory_index,
            php,
            options,
            allow_override,
            directives,
            maintenance: self.maintenance,
            steps,
            step_timeout_seconds,
            rollback_runs_steps: self.rollback_runs_steps.unwrap_or(true),
            php_in_shared: self
                .php_in_shared
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }
}

/// The site's PHP settings, allow-listed.
fn php_settings(raw: &BTreeMap<String, serde_json::Value>) -> Result<PhpConfig, String> {
    Ok(PhpConfig {
        settings: crate::php::settings::parse(raw)?,
    })
}

#[cfg(test)]
mod tests {
    use crate::sites::input::host_as_typed;

    #[test]
    fn pasted_addresses_become_host_names_and_nothing_else_is_let_through() {
        assert_eq!(
            host_as_typed(" https://Shop.Example.org/ "),
            "shop.example.org"
        );
        assert_eq!(host_as_typed("HTTP://shop.test"), "shop.test");
        assert_eq!(host_as_typed("shop.test"), "shop.test");
        // Paths, ports and other schemes stay, and the strict check refuses them.
        for kept in [
            "https://shop.test/about",
            "shop.test:8080",
            "ftp://shop.test",
        ] {
            let host = host_as_typed(kept);
            assert!(
                crate::sites::validate::server_name(&host).is_err(),
                "{host}"
            );
        }
    }
}
