//! System mode: the host's PHP-FPM (Debian's `php8.2-fpm` service). Cutover writes one pool
//! file per PHP site, `cutover-<site>.conf`, into the configured pool folder, and runs the
//! configured test and reload commands (argument lists, never a shell), as it does for the
//! host's Apache. The service itself is the system's: Cutover never starts or stops it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[php]` of the configuration (system mode only; managed mode needs nothing).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhpSettings {
    /// Where the pool files go, e.g. `/etc/php/8.2/fpm/pool.d`; unset: PHP sites cannot go
    /// live in system mode (and say so).
    pub pool_dir: Option<PathBuf>,
    /// Where the pools' sockets are made (`cutover-<site>.sock`).
    pub socket_dir: PathBuf,
    /// Checks the whole PHP-FPM configuration, the new pool included.
    pub test: Vec<String>,
    /// Graceful reload of the host's PHP-FPM.
    pub reload: Vec<String>,
}

impl Default for PhpSettings {
    fn default() -> Self {
        Self {
            pool_dir: None,
            socket_dir: PathBuf::from("/run/php"),
            test: vec!["php-fpm8.2".into(), "-t".into()],
            reload: vec!["systemctl".into(), "reload".into(), "php8.2-fpm".into()],
        }
    }
}

/// The host's PHP-FPM as configured.
#[derive(Debug, Clone)]
pub struct SystemFpm {
    /// Pool folder.
    pub pool_dir: PathBuf,
    /// Socket folder.
    pub socket_dir: PathBuf,
    /// Test command.
    pub test: Vec<String>,
    /// Reload command.
    pub reload: Vec<String>,
}

/// A pool file's name for `site`.
pub fn pool_file(site: &str) -> String {
    format!("cutover-{site}.conf")
}

impl SystemFpm {
    /// `site`'s pool file.
    pub fn pool_path(&self, site: &str) -> PathBuf {
        self.pool_dir.join(pool_file(site))
    }

    /// `site`'s socket.
    pub fn socket(&self, site: &str) -> PathBuf {
        self.socket_dir.join(format!("cutover-{site}.sock"))
    }

    /// The sites with a pool file of ours (other pool files are the host's own).
    pub fn pools(&self) -> Vec<String> {
        std::fs::read_dir(&self.pool_dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                let site = name.strip_prefix("cutover-")?.strip_suffix(".conf")?;
                Some(site.to_owned())
            })
            .collect()
    }

    /// Runs a configured command from a blocking thread (the caller's).
    pub fn run(&self, argv: &[String]) -> anyhow::Result<crate::apache::CommandOutput> {
        tokio::runtime::Handle::current().block_on(crate::apache::run_command(argv))
    }
}
