//! `[php]`: the host's PHP-FPM in system mode (see `system.rs`). Kept apart so the
//! configuration depends on nothing else of the PHP module.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A pool file's name for `site` in a system PHP-FPM's pool folder (here or on a host).
pub fn pool_file(site: &str) -> String {
    format!("cutover-{site}.conf")
}

/// The name of `site`'s pool socket in a system PHP-FPM's socket folder.
pub fn socket_file(site: &str) -> String {
    format!("cutover-{site}.sock")
}

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
