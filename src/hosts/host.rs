//! One host of a site, as stored, and the names Cutover gives its files.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::php::host_settings::{pool_file, socket_file};

/// One host of a site, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// Row id.
    #[serde(skip)]
    pub id: i64,
    /// Row id of its site.
    #[serde(skip)]
    pub site_id: i64,
    /// Short name (`web1`), unique within the site.
    pub name: String,
    /// `user@address[:port]`, as typed.
    pub ssh: String,
    /// The user Cutover logs in as.
    #[serde(skip)]
    pub user: String,
    /// IP address or DNS name.
    #[serde(skip)]
    pub address: String,
    /// SSH port.
    #[serde(skip)]
    pub port: u16,
    /// The site's folder on that host (`…/<site>`): `releases/`, `shared/`, `current`.
    pub dir: String,
    /// Where the host's Apache reads VirtualHosts from (`cutover-<site>.conf` goes there).
    pub vhost_dir: String,
    /// Where the vhost's logs go on that host.
    pub log_dir: String,
    /// The host's configtest, as an argument list (run over SSH).
    pub configtest: Vec<String>,
    /// The host's graceful reload, as an argument list.
    pub reload: Vec<String>,
    /// Where the health check reaches this host's Apache, `http://address[:port]`.
    pub check_url: String,
    /// The pinned host key: `type base64`.
    #[serde(skip)]
    pub host_key: String,
    /// Its SHA-256 fingerprint, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// Whether an admin confirmed the fingerprint (no operation runs before).
    pub confirmed: bool,
    /// The release it serves, as last switched or checked.
    pub serving: Option<String>,
    /// When that was last checked (RFC 3339).
    pub checked_at: Option<String>,
    /// Why it disagrees with the records, if it does: shown, never hidden.
    pub drift: Option<String>,
    /// Its PHP-FPM, for PHP sites.
    pub php: super::php::HostPhp,
}

impl Host {
    /// `<dir>` as a path.
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(&self.dir)
    }
    /// `<dir>/releases/<id>`.
    pub fn release(&self, id: &str) -> String {
        format!("{}/releases/{id}", self.dir)
    }
    /// The host's vhost file for `site`.
    pub fn vhost_path(&self, site: &str) -> String {
        format!(
            "{}/{}",
            self.vhost_dir,
            crate::apache::system::vhost_file_name(site)
        )
    }
    /// The line `known_hosts` needs to pin this host's key.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "{} {}",
            known_host_name(&self.address, self.port),
            self.host_key
        )
    }
    /// The log folder as a path.
    pub fn log_dir(&self) -> &Path {
        Path::new(&self.log_dir)
    }
}

/// PHP-FPM's files of a site on this host.
impl Host {
    /// The site's pool file on this host.
    pub fn pool_path(&self, site: &str) -> String {
        format!("{}/{}", self.php.pool_dir, pool_file(site))
    }
    /// The site's pool socket on this host.
    pub fn php_socket(&self, site: &str) -> String {
        format!("{}/{}", self.php.socket_dir, socket_file(site))
    }
    /// The pool's temporary files and sessions, outside every release.
    pub fn php_state(&self) -> String {
        format!("{}/php-state", self.dir)
    }
}

/// How `known_hosts` names `address:port` (`[addr]:port` unless the port is 22).
pub fn known_host_name(address: &str, port: u16) -> String {
    let bare = address.trim_start_matches('[').trim_end_matches(']');
    match port {
        22 => bare.to_owned(),
        _ => format!("[{bare}]:{port}"),
    }
}

/// Writes the pinned key `line` to `known`, only when it changed and whole (renamed in):
/// several commands to a host run at once, and one reading the file while another
/// truncated it would find no key and refuse the host.
pub(crate) fn pin(known: &Path, line: &str) -> std::io::Result<()> {
    let line = format!("{line}\n");
    if std::fs::read_to_string(known).ok().as_deref() == Some(line.as_str()) {
        return Ok(());
    }
    // A temp file of its own, renamed over the old one. Not synced: it is written again
    // from the records before every command.
    let tmp = PathBuf::from(format!("{}.{}.tmp", known.display(), uuid::Uuid::new_v4()));
    std::fs::write(&tmp, &line)?;
    std::fs::rename(&tmp, known).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use crate::hosts::host::*;

    #[test]
    fn the_pinned_key_file_is_rewritten_only_when_the_key_changes() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("7-web1");
        let ino = || std::fs::metadata(&file).unwrap().ino();
        pin(&file, "10.0.0.5 ssh-ed25519 AAAAone").unwrap();
        let first = ino();
        pin(&file, "10.0.0.5 ssh-ed25519 AAAAone").unwrap();
        assert_eq!(ino(), first, "left as it was");
        pin(&file, "10.0.0.5 ssh-ed25519 AAAAtwo").unwrap();
        assert_ne!(ino(), first, "replaced whole");
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text, "10.0.0.5 ssh-ed25519 AAAAtwo\n");
    }

    #[test]
    fn known_hosts_names_follow_openssh() {
        assert_eq!(known_host_name("10.0.0.5", 22), "10.0.0.5");
        assert_eq!(known_host_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
        assert_eq!(known_host_name("[::1]", 2222), "[::1]:2222");
    }
}
