//! A PHP site on several hosts: each host gets the site's pool as this machine would (the
//! same settings and limits), with the host's folders, socket and workers' user, in the host's
//! PHP-FPM pool folder. The pool is written and tested (`php.test`) before the vhosts, and the
//! host's PHP-FPM is reloaded where it changed before any host switches; a refusal anywhere
//! puts every old pool back and nothing switches.

use std::path::PathBuf;
use std::time::Instant;

use futures_util::future::join_all;

use super::fleet::Ready;
use super::live::Steps;
use super::report::{fail, Failure};
use super::runner::GoLive;
use crate::error::code;
use crate::hosts::{remote, Host};
use crate::php::pool::{render, PoolSpec};
use crate::sites::{Runtime, Site};

impl GoLive {
    /// `site`'s pool as `host` needs it; `None` for a site that is not PHP.
    pub(crate) fn pool_for(&self, site: &Site, host: &Host) -> Result<Option<String>, String> {
        if site.settings.config.runtime != Runtime::Php {
            return Ok(None);
        }
        let (dir, socket) = (host.dir(), PathBuf::from(host.php_socket(&site.name)));
        let state = PathBuf::from(host.php_state());
        render(&PoolSpec {
            site: &site.name,
            site_dir: &dir,
            socket: &socket,
            state_dir: &state,
            log_dir: host.log_dir(),
            user: Some(&host.php.user),
            listen_owner: Some(&host.php.user),
            settings: &site.settings.config.php.settings,
        })
        .map(Some)
    }

    /// The socket of `site`'s pool, here or on `host` (`None`: not a PHP site, or no PHP-FPM).
    pub(crate) fn socket_for(&self, site: &Site, host: Option<&Host>) -> Option<PathBuf> {
        match host {
            None => self.php_socket(site),
            Some(h) => (site.settings.config.runtime == Runtime::Php)
                .then(|| PathBuf::from(h.php_socket(&site.name))),
        }
    }

    /// Removes the site's pool from `host` (a host taken off the site) and reloads its
    /// PHP-FPM; nothing when the host has no pool of the site.
    pub(crate) async fn pool_off(&self, site: &Site, host: &Host) -> Result<(), String> {
        if self.pool_on(site, host).await?.is_none() {
            return Ok(());
        }
        remote::remove_file(&self.ssh, host, &host.pool_path(&site.name)).await?;
        match remote::command(&self.ssh, host, &host.php.reload).await {
            (true, _) => Ok(()),
            (false, words) => Err(format!("PHP-FPM did not reload: {words}")),
        }
    }

    /// The pool file that is on `host` now (`None`: none, or not a PHP site).
    pub(crate) async fn pool_on(&self, site: &Site, host: &Host) -> Result<Option<String>, String> {
        if site.settings.config.runtime != Runtime::Php {
            return Ok(None);
        }
        remote::read_file(&self.ssh, host, &host.pool_path(&site.name)).await
    }

    /// Writes the candidate pool on `r`'s host where it differs and has the host's PHP-FPM
    /// test it: `Err` in PHP-FPM's words.
    pub(crate) async fn host_pool(&self, site: &Site, r: &Ready<'_>) -> Result<(), String> {
        let (true, Some(pool)) = (pool_changes(r), r.pool.as_deref()) else {
            return Ok(());
        };
        remote::prepare_php(&self.ssh, r.host).await?;
        remote::write_file(&self.ssh, r.host, &r.host.pool_path(&site.name), pool).await?;
        match remote::command(&self.ssh, r.host, &r.host.php.test).await {
            (true, _) => Ok(()),
            (false, words) => Err(words),
        }
    }

    /// Puts the old pool back on every host whose pool differs (or removes a new one), and
    /// reloads PHP-FPM there when it was reloaded with the new one (never otherwise: a
    /// configuration someone else broke would stop the host's PHP-FPM at a reload).
    pub(crate) async fn restore_pools(&self, site: &Site, all: &[Ready<'_>], reload: bool) {
        join_all(all.iter().filter(|r| pool_changes(r)).map(|r| async move {
            let path = r.host.pool_path(&site.name);
            let _ = match &r.old_pool {
                Some(old) => remote::write_file(&self.ssh, r.host, &path, old).await,
                None => remote::remove_file(&self.ssh, r.host, &path).await,
            };
            if reload {
                let _ = remote::command(&self.ssh, r.host, &r.host.php.reload).await;
            }
        }))
        .await;
    }

    /// Reloads PHP-FPM on every host whose pool changed, each until the site's socket is
    /// back; one failure puts every old pool and vhost back, and nothing switches.
    pub(crate) async fn fleet_php_reload(
        &self,
        site: &Site,
        all: &[Ready<'_>],
        changed: &[bool],
        steps: &mut Steps,
    ) -> Result<(), Failure> {
        let t = Instant::now();
        let todo: Vec<&Ready> = all.iter().filter(|r| pool_changes(r)).collect();
        let done = join_all(
            todo.iter()
                .map(|r| remote::reload_php(&self.ssh, r.host, &site.name)),
        )
        .await;
        let mut refused = None;
        for (r, result) in todo.iter().zip(done) {
            let (ok, words) = match result {
                Ok(()) => (true, "the new pool is serving".to_owned()),
                Err(why) => (false, why),
            };
            steps.push(
                &format!("{}: PHP-FPM reload", r.host.name),
                t,
                ok,
                words.clone(),
            );
            refused = refused.or((!ok).then_some(words));
        }
        let Some(why) = refused else {
            return Ok(());
        };
        self.restore_configs(site, all, changed, true).await;
        Err(fail(
            code::PHP_REFUSED,
            format!("{why}. Nothing was switched on any host."),
            false,
        ))
    }
}

/// Whether the candidate pool differs from the one on the host.
fn pool_changes(r: &Ready) -> bool {
    r.pool.is_some() && r.pool != r.old_pool
}
