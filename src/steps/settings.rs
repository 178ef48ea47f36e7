//! `[steps]`: who runs the site's commands, where their programs are found, how much of their
//! output is kept.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The steps' PATH unless `[steps] path` says otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who runs steps under a root console unless `[steps] user` says otherwise: the user Apache's
/// and PHP-FPM's workers run as (`apache::WORKER_USER`), which reads the releases already.
pub const DEFAULT_USER: &str = "www-data";

/// `[steps]` of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepSettings {
    /// Who runs the steps when the console runs as root (never root itself); unset: the
    /// user PHP-FPM pools and Apache's workers run as (`www-data`). A console that is not
    /// root runs them as itself.
    pub user: Option<String>,
    /// The steps' PATH, also where a program named without a `/` must be found at save time.
    pub path: String,
    /// Output kept per step (its beginning and its end; the middle is cut and counted).
    pub max_output_bytes: usize,
}

impl Default for StepSettings {
    fn default() -> Self {
        Self {
            user: None,
            path: DEFAULT_PATH.into(),
            max_output_bytes: 64 * 1024,
        }
    }
}

impl StepSettings {
    /// Checks the values once, at start-up.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.path.split(':').all(|d| d.starts_with('/')),
            "steps.path must list absolute folders separated by `:`"
        );
        anyhow::ensure!(
            (1024..=16 * 1024 * 1024).contains(&self.max_output_bytes),
            "steps.max_output_bytes must be from 1024 to 16777216"
        );
        if let Some(u) = &self.user {
            anyhow::ensure!(
                u != "root" && nix::unistd::User::from_name(u).ok().flatten().is_some(),
                "steps.user = {u:?} is not a user of this machine other than root"
            );
        }
        Ok(())
    }

    /// The user a step runs as when the console is root; `None`: as the console itself.
    pub fn run_as(&self) -> Option<String> {
        nix::unistd::geteuid()
            .is_root()
            .then(|| self.user.clone().unwrap_or_else(|| DEFAULT_USER.to_owned()))
    }
}

/// The steps' PATH of this process, set once from the configuration. Site settings are checked
/// in several places (API, form, CLI) that do not carry the configuration, and a program's
/// presence is checked against the same PATH the steps will run with.
static SEARCH_PATH: OnceLock<String> = OnceLock::new();

/// Sets the steps' PATH (first call wins; later calls with another value are ignored).
pub fn set_search_path(path: &str) {
    let _ = SEARCH_PATH.set(path.to_owned());
}

/// The steps' PATH: the configured one, or [`DEFAULT_PATH`].
pub fn search_path() -> &'static str {
    SEARCH_PATH
        .get()
        .map(String::as_str)
        .unwrap_or(DEFAULT_PATH)
}
