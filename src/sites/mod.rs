//! Sites: their settings (validated at the edge), their folders, and the per-site lock.

pub mod config;
pub mod input;
pub mod lock;
pub mod store;
pub mod suffix;
pub mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use config::{Runtime, SiteConfig};
pub use input::{from_json, SettingsInput, FIELDS};

use crate::error::code;
use crate::error::{AppError, AppResult};

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

/// Checks a site's extra directives line by line.
fn directives_ok(text: &str, site_dir: &Path) -> Result<(), String> {
    render_directives(text, site_dir).map(drop)
}

/// A site's extra directives, checked line by line and re-rendered for its vhost.
pub fn render_directives(text: &str, _site_dir: &Path) -> Result<String, String> {
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    Err("directives: extra directives are not available in this version yet.".into())
}

/// The settings after a PATCH: `patch`'s fields over the current ones. Unknown fields are
/// refused, naming them. A site whose runtime changes and whose index files were the old
/// runtime's default gets the new runtime's default.
pub fn merge_patch(
    current: &Settings,
    patch: serde_json::Map<String, serde_json::Value>,
) -> AppResult<serde_json::Map<String, serde_json::Value>> {
    // Checked on the patch alone, so the message names only what the request sent.
    from_json(
        patch
            .clone()
            .into_iter()
            .filter(|(k, _)| !FIELDS.contains(&k.as_str()))
            .collect(),
    )?;
    let serde_json::Value::Object(mut merged) =
        serde_json::to_value(current).map_err(anyhow::Error::from)?
    else {
        unreachable!("settings serialise as an object")
    };
    let default_index = current.config.directory_index == current.config.runtime.default_index();
    if patch.contains_key("runtime") && !patch.contains_key("directory_index") && default_index {
        merged.remove("directory_index");
    }
    merged.extend(patch);
    Ok(merged)
}

/// A validated site name (it becomes a folder name and a vhost file name).
pub fn parse_name(raw: &str) -> AppResult<String> {
    let name = raw.trim().to_owned();
    validate::site_name(&name).map_err(|m| AppError::invalid(code::INVALID_SITE_NAME, m))?;
    Ok(name)
}

/// A site as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// Row id.
    #[serde(skip)]
    pub id: i64,
    /// Slug.
    pub name: String,
    /// Its settings.
    #[serde(flatten)]
    pub settings: Settings,
    /// The live release, if any.
    pub active_release: Option<String>,
    /// What start-up found on disk that disagrees with the records (a banner), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// Where a site's files are.
#[derive(Debug, Clone)]
pub struct SitePaths {
    /// `<sites_root>/<site>`.
    pub dir: PathBuf,
}

impl SitePaths {
    /// Paths of site `name` under `sites_root`.
    pub fn new(sites_root: &Path, name: &str) -> Self {
        Self {
            dir: sites_root.join(name),
        }
    }
    /// `releases/`.
    pub fn releases(&self) -> PathBuf {
        self.dir.join("releases")
    }
    /// `releases/<id>`.
    pub fn release(&self, id: &str) -> PathBuf {
        self.releases().join(id)
    }
    /// `shared/`.
    pub fn shared(&self) -> PathBuf {
        self.dir.join("shared")
    }
    /// `current`.
    pub fn current(&self) -> PathBuf {
        self.dir.join("current")
    }
    /// `live.map`: the release a pinned site's requests are rewritten into.
    pub fn live_map(&self) -> PathBuf {
        self.dir.join(crate::apache::livemap::FILE_NAME)
    }

    /// Creates `releases/`, `shared/` and each shared folder (0755: Apache's workers read them).
    pub fn create(&self, shared_paths: &[String]) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true).mode(0o755);
        builder.create(self.releases())?;
        builder.create(self.shared())?;
        for p in shared_paths {
            builder.create(self.shared().join(p))?;
        }
        Ok(())
    }
}
