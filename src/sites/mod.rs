//! Sites: their settings (validated at the edge), their folders, and the per-site lock.

pub mod config;
pub mod input;
pub mod lock;
mod settings;
pub mod store;
pub mod suffix;
pub mod tls;
pub mod validate;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use config::{render_directives, Runtime, SiteConfig};
pub use input::{from_json, SettingsInput, FIELDS};
pub use settings::{Settings, SwitchMode};

use crate::error::code;
use crate::error::{AppError, AppResult};

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
