//! Settings: embedded defaults → TOML file → `CUTOVER_*` environment (the contract's order).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything the console can be told; see README's configuration reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Console HTTP address.
    pub listen: String,
    /// SQLite database, uploads in progress, managed Apache files.
    pub data_dir: PathBuf,
    /// Where sites live; `<data_dir>/sites` when unset.
    pub sites_root: Option<PathBuf>,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (e.g. the host's Apache).
    pub trusted_proxies: Vec<IpAddr>,
    /// Sessions and log-in behaviour.
    pub session: SessionSettings,
    /// How Apache is driven.
    pub apache: ApacheSettings,
    /// Upload and archive limits.
    pub uploads: UploadSettings,
    /// Audit log anchoring.
    pub audit: AuditSettings,
    /// Who runs the sites' deploy steps, and how.
    pub steps: crate::steps::StepSettings,
    /// System mode: the host's PHP-FPM.
    pub php: crate::php::host_settings::PhpSettings,
    /// Sites on several hosts: how the console reaches them.
    pub hosts: HostsSettings,
}

/// `[hosts]`: the console's SSH client for sites served by several hosts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostsSettings {
    /// Every remote operation (connecting included) must answer within this; a host that
    /// does not is treated as down.
    pub timeout_seconds: u64,
}

impl Default for HostsSettings {
    fn default() -> Self {
        Self {
            timeout_seconds: 20,
        }
    }
}

/// `[audit]`: where the console anchors the audit log outside its database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// A file outside the data folder to which checkpoints (`ID:HASH`) are appended.
    pub checkpoint_file: Option<PathBuf>,
    /// Also hand each checkpoint to the system log through `logger` (when installed).
    pub syslog: bool,
    /// How often the head is checked and, when it moved, written out.
    pub checkpoint_interval_seconds: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            checkpoint_file: None,
            syslog: true,
            checkpoint_interval_seconds: 3600,
        }
    }
}

/// `[uploads]`: limits on what an upload may be and unpack to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSettings {
    /// Largest archive accepted, in bytes (enforced while streaming).
    pub max_bytes: u64,
    /// Largest total unpacked size.
    pub max_unpacked_bytes: u64,
    /// Largest single file in an archive.
    pub max_file_bytes: u64,
    /// Most files and folders in an archive.
    pub max_entries: u64,
    /// Highest unpacked/archive size ratio (decompression bombs), past 64 MiB unpacked.
    pub max_ratio: u64,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            max_bytes: 2 << 30,
            max_unpacked_bytes: 8 << 30,
            max_file_bytes: 2 << 30,
            max_entries: 100_000,
            max_ratio: 200,
        }
    }
}

/// Session time-outs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle_timeout_minutes: u64,
    /// A session ends this long after log-in, used or not.
    pub absolute_timeout_hours: u64,
    /// `auto` (Secure when reached over HTTPS), `always` or `never`.
    pub secure_cookie: SecureCookie,
}

/// When the session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecureCookie {
    /// Whenever the request came over HTTPS (directly or through a trusted proxy).
    Auto,
    /// Always, e.g. when a proxy that is not listed terminates TLS.
    Always,
    /// Never (plain-HTTP test set-ups).
    Never,
}

/// `[apache]`: managed (private instance) or system (host's Apache).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApacheSettings {
    /// `managed` or `system`.
    pub mode: ApacheMode,
    /// Managed mode: where the private Apache listens.
    pub listen: String,
    /// Managed mode: the apache2 binary.
    pub binary: PathBuf,
    /// System mode: where `<site>.conf` is written.
    pub vhost_dir: Option<PathBuf>,
    /// System mode: configtest command as an argument list.
    pub configtest: Vec<String>,
    /// System mode: graceful reload command as an argument list.
    pub reload: Vec<String>,
    /// System mode: lists the machine's VirtualHosts (names served elsewhere are warned about).
    pub vhosts_command: Vec<String>,
    /// System mode: where the health check reaches the host's Apache.
    pub check_url: String,
    /// System mode: where per-site access and error logs are written.
    pub log_dir: PathBuf,
    /// Seconds the health check may take before the release is rolled back.
    pub health_timeout_seconds: u64,
    /// Managed mode: where the private Apache serves HTTPS sites (listened on once a site
    /// has HTTPS).
    pub tls_listen: String,
    /// System mode: where the health check reaches the host's Apache over HTTPS.
    pub tls_check_addr: String,
    /// System mode: the `<VirtualHost>` address of HTTPS sites.
    pub tls_vhost_address: String,
}

/// Who runs Apache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApacheMode {
    /// Cutover runs its own private Apache.
    Managed,
    /// Cutover drives the host's Apache through configured commands.
    System,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./cutover-data"),
            sites_root: None,
            trusted_proxies: vec![],
            session: SessionSettings::default(),
            apache: ApacheSettings::default(),
            uploads: UploadSettings::default(),
            audit: AuditSettings::default(),
            steps: crate::steps::StepSettings::default(),
            hosts: HostsSettings::default(),
            php: crate::php::host_settings::PhpSettings::default(),
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: 30,
            absolute_timeout_hours: 12,
            secure_cookie: SecureCookie::Auto,
        }
    }
}

impl Default for ApacheSettings {
    fn default() -> Self {
        Self {
            mode: ApacheMode::Managed,
            listen: "127.0.0.1:8081".into(),
            binary: PathBuf::from("/usr/sbin/apache2"),
            vhost_dir: None,
            configtest: vec!["apachectl".into(), "configtest".into()],
            reload: vec!["apachectl".into(), "graceful".into()],
            vhosts_command: vec!["apache2ctl".into(), "-S".into()],
            check_url: "http://127.0.0.1:80".into(),
            log_dir: PathBuf::from("/var/log/apache2"),
            tls_listen: "127.0.0.1:8443".into(),
            tls_check_addr: "127.0.0.1:443".into(),
            tls_vhost_address: "*:443".into(),
            health_timeout_seconds: 10,
        }
    }
}

impl Settings {
    /// Loads defaults, then the TOML file (if given), then `CUTOVER_*` variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.is_file(),
                "configuration file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        // `CUTOVER_APACHE__MODE` reaches `apache.mode`; CUTOVER_CONFIG names the file, not a key.
        // Only variables naming a setting: others (CUTOVER_CONFIG, test switches) are not ours to refuse.
        const SECTIONS: [&str; 11] = [
            "audit",
            "php",
            "steps",
            "hosts",
            "listen",
            "data_dir",
            "sites_root",
            "trusted_proxies",
            "session",
            "apache",
            "uploads",
        ];
        let env = Env::prefixed("CUTOVER_")
            .filter(|key| {
                let key = key.as_str().to_ascii_lowercase();
                SECTIONS
                    .iter()
                    .any(|s| key == *s || key.starts_with(&format!("{s}__")))
            })
            .split("__");
        let settings: Settings = figment
            .merge(env)
            .extract()
            .map_err(|e| anyhow::Error::new(e).context("invalid configuration"))?;
        settings.validate()?;
        settings.steps.validate()?;
        crate::steps::set_search_path(&settings.steps.path);
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.listen.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!(
                "listen = {:?} is not an address like 127.0.0.1:8080",
                self.listen
            )
        })?;
        anyhow::ensure!(
            self.session.idle_timeout_minutes > 0,
            "session.idle_timeout_minutes must be at least 1"
        );
        anyhow::ensure!(
            self.session.absolute_timeout_hours > 0,
            "session.absolute_timeout_hours must be at least 1"
        );
        anyhow::ensure!(
            self.audit.checkpoint_interval_seconds > 0,
            "audit.checkpoint_interval_seconds must be at least 1"
        );
        if let Some(file) = &self.audit.checkpoint_file {
            // Whoever can rewrite the database can rewrite anything beside it.
            let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            anyhow::ensure!(
                !abs(file).starts_with(abs(&self.data_dir)),
                "audit.checkpoint_file must be outside the data folder {}",
                self.data_dir.display()
            );
        }
        Ok(())
    }

    /// The SSH client of sites served by several hosts (`<data>/ssh`).
    pub fn ssh(&self) -> crate::hosts::Ssh {
        let timeout = std::time::Duration::from_secs(self.hosts.timeout_seconds.clamp(1, 600));
        crate::hosts::Ssh::new(self.data_dir.join("ssh"), timeout)
    }

    /// The runner of the sites' deploy steps.
    pub fn step_runner(&self, pool: &sqlx::SqlitePool) -> crate::steps::runner::Runner {
        crate::steps::runner::Runner {
            pool: pool.clone(),
            settings: self.steps.clone(),
            home_root: self.data_dir.join("steps"),
        }
    }

    /// The sites folder, `<data_dir>/sites` unless set.
    pub fn sites_root(&self) -> PathBuf {
        self.sites_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("sites"))
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("cutover.db")
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error.
mod tests {
    use crate::config::*;

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::default();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.apache.mode, ApacheMode::Managed);
        assert_eq!(s.apache.listen, "127.0.0.1:8081");
        assert_eq!(s.sites_root(), PathBuf::from("./cutover-data/sites"));
        assert_eq!(s.session.idle_timeout_minutes, 30);
        assert_eq!(s.session.absolute_timeout_hours, 12);
    }

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"\n[apache]\nmode = \"system\"\n",
            )?;
            jail.set_env("CUTOVER_LISTEN", "127.0.0.1:9001");
            let s = Settings::load(Some(Path::new("c.toml"))).expect("loads");
            assert_eq!(s.listen, "127.0.0.1:9001");
            assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
            assert_eq!(s.apache.mode, ApacheMode::System);
            Ok(())
        });
    }

    #[test]
    fn other_cutover_variables_are_not_settings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CUTOVER_FAULT", "after_switch:pause");
            jail.set_env("CUTOVER_CONFIG", "/nowhere.toml");
            jail.set_env("CUTOVER_APACHE__MODE", "system");
            let s = Settings::load(None).expect("loads");
            assert_eq!(s.apache.mode, ApacheMode::System);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_addresses_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "lisen = \"x\"\n")?;
            assert!(Settings::load(Some(Path::new("c.toml"))).is_err());
            jail.create_file("d.toml", "listen = \"nowhere\"\n")?;
            assert!(Settings::load(Some(Path::new("d.toml"))).is_err());
            Ok(())
        });
    }
}
