//! How a site is served beyond its names (the contract's v2 fields): its runtime, index
//! files, PHP settings, Apache `Options`, what an uploaded `.htaccess` may change, its extra
//! directives and maintenance mode. Stored as one JSON column; every value is validated here,
//! and again where it is rendered.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What runs the site's files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Files are sent as they are; `.php` files are never sent (403).
    #[default]
    Static,
    /// `.php` files run through the site's own PHP-FPM pool.
    Php,
}

impl Runtime {
    /// Stored and API form.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Static => "static",
            Runtime::Php => "php",
        }
    }

    /// `DirectoryIndex` when the site sets none.
    pub fn default_index(self) -> Vec<String> {
        match self {
            Runtime::Static => vec!["index.html".into()],
            Runtime::Php => vec!["index.php".into(), "index.html".into()],
        }
    }
}

impl std::str::FromStr for Runtime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "static" => Ok(Runtime::Static),
            "php" => Ok(Runtime::Php),
            _ => Err(format!(
                "runtime: \"{}\" is not a runtime; it is \"static\" (files as they are) or \"php\" (PHP through PHP-FPM).",
                s.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// The `Options` a site may turn on: none of them runs a program.
pub const OPTIONS: [&str; 4] = [
    "Indexes",
    "MultiViews",
    "FollowSymLinks",
    "SymLinksIfOwnerMatch",
];

/// The `AllowOverride` classes a site may give its `.htaccess` files.
pub const OVERRIDE_CLASSES: [&str; 5] = ["AuthConfig", "FileInfo", "Indexes", "Limit", "Options"];

/// What an uploaded `.htaccess` may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AllowOverride {
    /// `"none"` or `"all"`.
    Word(OverrideWord),
    /// Apache's override classes, `Options=…` limited to [`OPTIONS`].
    Classes(Vec<String>),
}

/// The one-word forms of [`AllowOverride`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideWord {
    /// Apache does not even read `.htaccess` files.
    None,
    /// Every class; `Options` still limited to those that run no program.
    All,
}

impl Default for AllowOverride {
    fn default() -> Self {
        AllowOverride::Word(OverrideWord::None)
    }
}

impl AllowOverride {
    /// The arguments of Apache's `AllowOverride` line.
    ///
    /// `all` is not Apache's `All`: that would let a `.htaccess` turn on `ExecCGI` or
    /// `Includes`. It is every class, with `Options=` listing only what runs no program.
    pub fn apache_args(&self) -> String {
        let options = format!("Options={}", OPTIONS.join(","));
        match self {
            AllowOverride::Word(OverrideWord::None) => "None".into(),
            AllowOverride::Word(OverrideWord::All) => {
                format!("AuthConfig FileInfo Indexes Limit {options}")
            }
            AllowOverride::Classes(c) => c
                .iter()
                .map(|c| {
                    if c == "Options" {
                        options.clone()
                    } else {
                        c.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Checks the classes, or says which one is wrong and why.
    pub fn check(&self) -> Result<(), String> {
        let AllowOverride::Classes(classes) = self else {
            return Ok(());
        };
        if classes.is_empty() {
            return Err(
                "allow_override: an empty list allows nothing; send \"none\" for that.".into(),
            );
        }
        for c in classes {
            if let Some(list) = c.strip_prefix("Options=") {
                for o in list.split(',') {
                    if !OPTIONS.contains(&o) {
                        return Err(format!(
                            "allow_override: Options={list} names {}, which a .htaccess may not turn on; the options allowed are {}.",
                            crate::vocab::clip(o), OPTIONS.join(", ")
                        ));
                    }
                }
            } else if !OVERRIDE_CLASSES.contains(&c.as_str()) {
                return Err(format!(
                    "allow_override: {} is not an override class; use \"none\", \"all\", or a list of {} (Options=Indexes,… to limit options).",
                    crate::vocab::clip(c),
                    OVERRIDE_CLASSES.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// PHP settings of the site's pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhpConfig {
    /// php.ini names → values (what `php_value`/`php_flag` did), allow-listed.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// The v2 settings of a site, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SiteConfig {
    /// Static files or PHP.
    pub runtime: Runtime,
    /// Apache `DirectoryIndex`.
    pub directory_index: Vec<String>,
    /// The PHP pool's settings.
    pub php: PhpConfig,
    /// Apache `Options` on the release tree, from [`OPTIONS`].
    pub options: Vec<String>,
    /// What an uploaded `.htaccess` may change.
    pub allow_override: AllowOverride,
    /// Extra directives, as typed (checked line by line; rendered from the parsed form).
    pub directives: String,
    /// Every request answers 503 with `Retry-After`.
    pub maintenance: bool,
    /// HTTPS, when set.
    pub tls: Option<super::tls::Tls>,
    /// The site's own commands around going live.
    pub steps: crate::steps::Steps,
    /// Time limit of one step.
    pub step_timeout_seconds: u64,
    /// A rollback runs the switch steps of the release it goes back to.
    pub rollback_runs_steps: bool,
    /// Shared folders whose `.php` files PHP may run (a PHP site's plugin folder, say); in
    /// every other shared folder they are refused.
    pub php_in_shared: Vec<String>,
}

/// A step's time limit unless the site says otherwise (five minutes).
pub const DEFAULT_STEP_TIMEOUT: u64 = 300;
/// The longest a site may let one step run (an hour).
pub const MAX_STEP_TIMEOUT: u64 = 3600;

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            runtime: Runtime::Static,
            directory_index: Runtime::Static.default_index(),
            php: PhpConfig::default(),
            options: Vec::new(),
            allow_override: AllowOverride::default(),
            directives: String::new(),
            maintenance: false,
            tls: None,
            steps: crate::steps::Steps::default(),
            step_timeout_seconds: DEFAULT_STEP_TIMEOUT,
            rollback_runs_steps: true,
            php_in_shared: Vec::new(),
        }
    }
}

/// PHP may run only in the site's own shared folders, and only on a PHP site.
pub fn check_php_in_shared(config: &SiteConfig, shared_paths: &[String]) -> Result<(), String> {
    if let Some(p) = config
        .php_in_shared
        .iter()
        .find(|p| !shared_paths.contains(p))
    {
        let p = crate::vocab::clip(p);
        return Err(format!(
            "php_in_shared: {p} is not one of the site's shared paths."
        ));
    }
    if config.runtime != Runtime::Php && !config.php_in_shared.is_empty() {
        return Err("php_in_shared: PHP runs only on a site whose runtime is \"php\".".into());
    }
    Ok(())
}

/// Checks an index file list: plain file names only, at most ten.
pub fn check_index(names: &[String]) -> Result<(), String> {
    if names.is_empty() || names.len() > 10 {
        return Err(
            "directory_index: give from one to ten file names, e.g. [\"index.html\"].".into(),
        );
    }
    for n in names {
        let plain = !n.is_empty()
            && n.len() <= 100
            && !n.starts_with('.')
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return Err(format!(
                "directory_index: {} is not a plain file name (letters, digits, dot, hyphen, underscore; not starting with a dot).",
                crate::vocab::clip(n)
            ));
        }
    }
    Ok(())
}

/// Checks the `Options` list; the `+`/`-` forms get Apache's own reason.
pub fn check_options(options: &[String]) -> Result<(), String> {
    for o in options {
        if o.starts_with(['+', '-']) {
            return Err(format!(
                "options: {} uses the +/- form. Apache 2.4 refuses an Options line that mixes +/- options with plain ones, \
                 so Cutover takes plain names only: list every option the site needs, e.g. [\"Indexes\", \"FollowSymLinks\"].",
                crate::vocab::clip(o)
            ));
        }
        if !OPTIONS.contains(&o.as_str()) {
            return Err(format!(
                "options: {} is not an option a site may turn on; the options allowed are {} (nothing that runs programs, such as ExecCGI or Includes).",
                crate::vocab::clip(o),
                OPTIONS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks a site's extra directives line by line.
pub(crate) fn directives_ok(text: &str, site_dir: &Path) -> Result<(), String> {
    render_directives(text, site_dir).map(drop)
}

/// A site's extra directives, checked line by line and re-rendered for its vhost.
/// (the vhost's lines, the redirects for the site folder's `<Directory>`).
pub fn render_directives(text: &str, site_dir: &Path) -> Result<(String, String), String> {
    crate::apache::directives::Directives::parse(text, site_dir)
        .map(|d| (d.render_rest("    "), d.render_redirects("        ")))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::sites::config::*;

    #[test]
    fn all_allows_every_class_but_no_option_that_runs_a_program() {
        let all = AllowOverride::Word(OverrideWord::All).apache_args();
        assert!(!all.contains("All") && !all.contains("ExecCGI") && !all.contains("Includes"));
        assert!(all.contains("FileInfo") && all.contains("Options=Indexes"));
        let bad = AllowOverride::Classes(vec!["Options=ExecCGI".into()]);
        assert!(bad.check().unwrap_err().contains("ExecCGI"));
        assert!(AllowOverride::Classes(vec!["Nonfatal=All".into()])
            .check()
            .is_err());
        let ok = AllowOverride::Classes(vec!["AuthConfig".into(), "Options=Indexes".into()]);
        assert_eq!(ok.apache_args(), "AuthConfig Options=Indexes");
        assert_eq!(
            serde_json::to_value(AllowOverride::default()).unwrap(),
            "none"
        );
    }

    #[test]
    fn mixed_option_forms_are_refused_with_apache_s_reason() {
        let e = check_options(&["+Indexes".into()]).unwrap_err();
        assert!(e.contains("mixes +/-"), "{e}");
        assert!(check_options(&["ExecCGI".into()]).is_err());
        assert!(check_options(&["Indexes".into(), "MultiViews".into()]).is_ok());
    }

    #[test]
    fn index_names_are_plain_file_names() {
        for bad in ["../x", ".htaccess", "a b", "index.php\nInclude", ""] {
            assert!(check_index(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(check_index(&["index.php".into(), "index.html".into()]).is_ok());
    }
}
