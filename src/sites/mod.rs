//! Sites: their settings (validated at the edge), their folders, and the per-site lock.

pub mod lock;
pub mod store;
pub mod suffix;
pub mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::code::{self, Code};
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
    /// Symlink mode: reload Apache on every switch (PHP opcode caches need it).
    pub reload_always: bool,
}

impl Settings {
    /// Every host name the site answers to: its server name, then its aliases.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec![self.server_name.clone()];
        names.extend(self.aliases.iter().cloned());
        names
    }
}

/// Raw input for site settings (from a form, JSON, or the CLI).
#[derive(Debug, Clone, Default, Deserialize)]
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
    pub fn validate(self) -> AppResult<Settings> {
        let mut problems: Vec<(Code, String)> = Vec::new();
        let mut check = |code: Code, result: Result<(), String>| {
            if let Err(m) = result {
                problems.push((code, m));
            }
        };
        let server_name = host_as_typed(&self.server_name.unwrap_or_default());
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
        })
    }
}

/// A validated site name (it becomes a folder name and a vhost file name).
pub fn parse_name(raw: &str) -> AppResult<String> {
    let name = raw.trim().to_owned();
    validate::site_name(&name).map_err(|m| invalid(code::INVALID_SITE_NAME, m))?;
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

#[cfg(test)]
mod tests {
    use super::host_as_typed;

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
