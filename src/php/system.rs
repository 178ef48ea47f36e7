//! System mode: the host's PHP-FPM (Debian's `php8.2-fpm` service). Cutover writes one pool
//! file per PHP site, `cutover-<site>.conf`, into the configured pool folder, and runs the
//! configured test and reload commands (argument lists, never a shell), as it does for the
//! host's Apache. The service itself is the system's: Cutover never starts or stops it.

use std::path::PathBuf;

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

pub use super::host_settings::{pool_file, socket_file};

impl SystemFpm {
    /// `site`'s pool file.
    pub fn pool_path(&self, site: &str) -> PathBuf {
        self.pool_dir.join(pool_file(site))
    }

    /// `site`'s socket.
    pub fn socket(&self, site: &str) -> PathBuf {
        self.socket_dir.join(socket_file(site))
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
