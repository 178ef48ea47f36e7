//! The system's own Apache: Cutover only writes vhost files and runs configured commands.
//!
//! The stock Debian config only parses with /etc/apache2/envvars sourced, which
//! `apachectl` does, so the commands are configurable argument lists (default
//! `apachectl configtest` / `apachectl graceful`), never a shell line.

use std::path::PathBuf;

use super::command::{run_command, CommandOutput};
use super::validate;

/// The system Apache: where vhost files go and how to check and reload it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemApache {
    /// Folder Apache includes vhosts from (e.g. /etc/apache2/sites-enabled).
    pub vhost_dir: PathBuf,
    /// Configtest command as program + arguments (e.g. ["apachectl", "configtest"]).
    pub configtest: Vec<String>,
    /// Graceful reload command as program + arguments (e.g. ["apachectl", "graceful"]).
    pub reload: Vec<String>,
    /// Lists the machine's VirtualHosts (e.g. ["apache2ctl", "-S"]): names served elsewhere.
    pub vhosts: Vec<String>,
}

impl SystemApache {
    /// The usual Debian setup: sites-enabled, `apachectl configtest`, `apachectl graceful`.
    pub fn debian_default() -> Self {
        SystemApache {
            vhost_dir: PathBuf::from("/etc/apache2/sites-enabled"),
            configtest: vec!["apachectl".into(), "configtest".into()],
            reload: vec!["apachectl".into(), "graceful".into()],
            vhosts: vec!["apache2ctl".into(), "-S".into()],
        }
    }

    /// The vhost file of `site`: `<vhost_dir>/cutover-<site>.conf`; refuses invalid slugs.
    ///
    /// The prefix keeps our files apart from the administrator's own (a hand-written
    /// `shop.conf` is never overwritten) and sorts them after Debian's `000-default.conf`,
    /// which stays the default host.
    pub fn vhost_path(&self, site: &str) -> Result<PathBuf, String> {
        validate::site_name(site)?;
        Ok(self.vhost_dir.join(vhost_file_name(site)))
    }

    /// Runs the configured configtest command; `ok` is false if it exits non-zero.
    pub async fn configtest(&self) -> anyhow::Result<CommandOutput> {
        run_command(&self.configtest).await
    }

    /// Runs the configured reload command; `ok` is false if it exits non-zero.
    pub async fn reload(&self) -> anyhow::Result<CommandOutput> {
        run_command(&self.reload).await
    }

    /// Warnings for each of `names` of `site` that another VirtualHost on the machine already
    /// answers to (or that the check could not be done); never an error.
    pub async fn served_elsewhere(&self, site: &str, names: &[String]) -> Vec<String> {
        let own = self.vhost_path(site).unwrap_or_default();
        super::served::check(&self.vhosts, names, &own.display().to_string()).await
    }
}

/// `cutover-<site>.conf`: the name of a site's vhost file in any vhost folder (a validated slug).
pub fn vhost_file_name(site: &str) -> String {
    format!("cutover-{site}.conf")
}

#[cfg(test)]
mod tests {
    use crate::apache::system::*;

    fn sys(configtest: &[&str], reload: &[&str]) -> SystemApache {
        SystemApache {
            vhost_dir: PathBuf::from("/etc/apache2/sites-enabled"),
            configtest: configtest.iter().map(|s| s.to_string()).collect(),
            reload: reload.iter().map(|s| s.to_string()).collect(),
            vhosts: vec![],
        }
    }

    #[tokio::test]
    async fn commands_report_success_failure_and_words() {
        let s = sys(&["true"], &["false"]);
        assert!(s.configtest().await.unwrap().ok);
        assert!(!s.reload().await.unwrap().ok);
        let s = sys(
            &["sh", "-c", "echo broken >&2; exit 1"],
            &["echo", "Syntax OK"],
        );
        let out = s.configtest().await.unwrap();
        assert!(!out.ok);
        assert_eq!(out.output, "broken");
        assert_eq!(s.reload().await.unwrap().output, "Syntax OK");
    }

    #[tokio::test]
    async fn arguments_are_not_interpreted_by_a_shell() {
        let s = sys(
            &["echo", "a; touch /tmp/cutover-should-not-exist", "$(id)"],
            &["true"],
        );
        let out = s.configtest().await.unwrap();
        assert_eq!(out.output, "a; touch /tmp/cutover-should-not-exist $(id)");
    }

    #[tokio::test]
    async fn empty_or_missing_commands_are_errors() {
        let s = sys(&[], &["/nonexistent/apachectl"]);
        let e = s.configtest().await.unwrap_err();
        assert!(format!("{e:#}").contains("no command"), "{e:#}");
        assert!(s.reload().await.is_err());
    }

    #[test]
    fn vhost_path_is_prefixed_and_validated() {
        let s = SystemApache::debian_default();
        assert_eq!(
            s.vhost_path("shop").unwrap(),
            PathBuf::from("/etc/apache2/sites-enabled/cutover-shop.conf")
        );
        assert!(s.vhost_path("../etc/passwd").is_err());
        assert!(s.vhost_path("").is_err());
    }
}
