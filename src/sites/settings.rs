//! A site's validated settings and its switch mode.

use serde::{Deserialize, Serialize};

use super::config::SiteConfig;

/// How going live switches Apache to a release (see the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchMode {
    /// Every request is served from the live release's own folder (`releases/<id>`), chosen
    /// once at its start from the site's live-release map; going live replaces the map, and
    /// reloads Apache only when the site's configuration itself changed.
    Pinned,
    /// DocumentRoot is `current`, a symlink renamed atomically over the old one.
    Symlink,
}

impl SwitchMode {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchMode::Pinned => "pinned",
            SwitchMode::Symlink => "symlink",
        }
    }
}

impl std::str::FromStr for SwitchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pinned" => Ok(SwitchMode::Pinned),
            "symlink" => Ok(SwitchMode::Symlink),
            _ => Err("The switch mode is pinned (recommended) or symlink.".into()),
        }
    }
}

/// The editable settings of a site, all validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// RFC 1123 host name.
    pub server_name: String,
    /// More host names (a leading `*.` allowed).
    pub aliases: Vec<String>,
    /// Usable releases kept on disk (1–100).
    pub keep_releases: u32,
    /// How going live switches.
    #[serde(rename = "switch")]
    pub switch_mode: SwitchMode,
    /// Path requested through Apache after a switch; 2xx means healthy.
    pub health_path: String,
    /// Relative folders shared by every release (symlinked into each).
    pub shared_paths: Vec<String>,
    /// Symlink mode: reload Apache on every switch.
    pub reload_always: bool,
    /// How it is served: runtime, index, PHP, Options, `.htaccess`, directives, maintenance.
    #[serde(flatten)]
    pub config: SiteConfig,
}

impl Settings {
    /// Every host name the site answers to: its server name, then its aliases.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![self.server_name.clone()];
        names.extend(self.aliases.iter().cloned());
        names
    }
}
