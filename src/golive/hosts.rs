//! Adding, confirming and removing a site's hosts, and keeping their releases in step with
//! this machine's: a new release staged on every host, deleted ones removed from them.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use super::runner::GoLive;
use super::switch::Who;
use crate::audit::{self, Event, Outcome};
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::hosts::{remote, stage, store as hosts, Host, HostInput};
use crate::releases::store as releases;
use crate::sites::{lock, store as sites, SitePaths};

/// How long adding or confirming a host waits for a switch of the site to end.
const PATIENCE: Duration = Duration::from_secs(30);

/// What adding or confirming a host did.
#[derive(Debug, serde::Serialize)]
pub struct Added {
    /// The host as stored.
    #[serde(flatten)]
    pub host: Host,
    /// The line to put in the login user's `~/.ssh/authorized_keys` on the host.
    pub authorized_keys: String,
    /// For a live site: whether the host now serves the live release, or why not.
    pub serving_live: Option<Result<(), String>>,
}

impl GoLive {
    /// Adds a host to `site_name`: its key scanned and shown, confirmed at once when the
    /// fingerprint given matches it; a confirmed host of a live site is brought to the live
    /// release before it serves.
    pub async fn add_host(
        &self,
        site_name: &str,
        input: HostInput,
        who: Who<'_>,
    ) -> AppResult<Added> {
        let site = sites::get(&self.pool, site_name).await?;
        let new = input.validate(&site.name)?;
        if let Some(why) = Self::hosts_unsupported(&site) {
            return Err(AppError::invalid(code::HOSTS_UNSUPPORTED, why));
        }
        let existing = hosts::list(&self.pool, site.id).await?;
        if existing.is_empty() && site.active_release.is_some() {
            let m = "This site is live on this machine: a site is served either here or by its hosts. Create a new site for the hosts, or ask an admin to move it.";
            return Err(AppError::invalid(code::HOSTS_UNSUPPORTED, m));
        }
        if existing.iter().any(|h| h.name == new.name) {
            let m = format!("name: this site already has a host named {}.", new.name);
            return Err(AppError::invalid(code::HOST_EXISTS, m));
        }
        let (key, fingerprint) = self.ssh.scan(&new.address, new.port).await.map_err(|e| {
            AppError::invalid(code::HOST_UNREACHABLE, format!("ssh: the host's key could not be read: {e:#}. Check the address and that sshd runs there."))
        })?;
        let confirmed = match &new.fingerprint {
            Some(given) if *given == fingerprint => true,
            Some(given) => {
                let m = format!("fingerprint: the host offered the key {fingerprint}, not {given}. Nothing was added: check that the address is the right machine.");
                return Err(AppError::invalid(code::HOST_KEY_MISMATCH, m));
            }
            None => false,
        };
        let host =
            hosts::insert(&self.pool, site.id, &new, (&key, &fingerprint), confirmed).await?;
        let detail = json!({"host": host.name, "ssh": host.ssh, "fingerprint": fingerprint, "confirmed": confirmed});
        self.audit_host(who, &site.name, "host_add", Outcome::Ok, detail)
            .await?;
        self.after_confirm(site_name, host, who).await
    }

    /// Confirms a host's key (the fingerprint must be the one shown when it was added).
    pub async fn confirm_host(
        &self,
        site_name: &str,
        name: &str,
        fingerprint: &str,
        who: Who<'_>,
    ) -> AppResult<Added> {
        let site = sites::get(&self.pool, site_name).await?;
        let host = hosts::get(&self.pool, site.id, name).await?;
        if host.fingerprint != fingerprint.trim() {
            let m = format!("fingerprint: host {name} was added with the key {}, not {}. Nothing was confirmed.", host.fingerprint, fingerprint.trim());
            return Err(AppError::invalid(code::HOST_KEY_MISMATCH, m));
        }
        hosts::confirm(&self.pool, host.id).await?;
        let detail = json!({"host": host.name, "fingerprint": host.fingerprint});
        self.audit_host(who, &site.name, "host_confirm", Outcome::Ok, detail)
            .await?;
        let host = hosts::get(&self.pool, site.id, name).await?;
        self.after_confirm(site_name, host, who).await
    }

    /// A confirmed host of a live site: staged and brought to the live release, under the
    /// site's lock.
    async fn after_confirm(&self, site_name: &str, host: Host, who: Who<'_>) -> AppResult<Added> {
        let authorized_keys = self
            .ssh
            .authorized_keys_line()
            .await
            .map_err(AppError::Internal)?;
        let mut serving_live = None;
        if host.confirmed {
            let paths = SitePaths::new(&self.sites_root, site_name);
            let _lock =
                lock::lock_waiting(&paths.dir, who.0, "bringing a new host up", PATIENCE).await?;
            let site = sites::get(&self.pool, site_name).await?;
            if site.active_release.is_some() {
                let result = self.bring_up(&site, &host, who).await;
                let (outcome, detail) = match &result {
                    Ok(()) => (
                        Outcome::Ok,
                        json!({"host": host.name, "release": site.active_release}),
                    ),
                    Err(why) => (Outcome::Failed, json!({"host": host.name, "reason": why})),
                };
                self.audit_host(who, &site.name, "host_bring_up", outcome, detail)
                    .await?;
                serving_live = Some(result);
            }
        }
        let host = hosts::get(&self.pool, host.site_id, &host.name).await?;
        Ok(Added {
            host,
            authorized_keys,
            serving_live,
        })
    }

    /// Removes a host: the site's vhost taken off it (its releases stay there), Cutover's
    /// connection to it closed. The last host of a live site cannot be removed.
    pub async fn remove_host(
        &self,
        site_name: &str,
        name: &str,
        who: Who<'_>,
    ) -> AppResult<Option<String>> {
        let site = sites::get(&self.pool, site_name).await?;
        let paths = SitePaths::new(&self.sites_root, &site.name);
        let _lock = lock::lock_waiting(&paths.dir, who.0, "removing a host", PATIENCE).await?;
        let site = sites::get(&self.pool, site_name).await?;
        let host = hosts::get(&self.pool, site.id, name).await?;
        let all = hosts::list(&self.pool, site.id).await?;
        if all.len() == 1 && site.active_release.is_some() {
            let m = format!("{name} is the last host of this live site: add another host first, or the site would have nowhere to be served.");
            return Err(AppError::invalid(code::HOST_FAILED, m));
        }
        let mut warning = None;
        if host.confirmed {
            let off = remote::remove_file(&self.ssh, &host, &host.vhost_path(&site.name)).await;
            let reload = match off {
                Ok(()) => remote::command(&self.ssh, &host, &host.reload).await,
                Err(e) => (false, e),
            };
            if !reload.0 {
                warning = Some(format!("The site could not be taken off host {name} ({}): remove {} there and reload its Apache.", reload.1, host.vhost_path(&site.name)));
            }
            // Its PHP-FPM pool goes too, or the host would keep the site's workers running
            // (not while its Apache may still send the site's PHP requests there).
            let pool_off = match reload.0 {
                true => self.pool_off(&site, &host).await,
                false => Ok(()),
            };
            if let Err(why) = pool_off {
                let pool = host.pool_path(&site.name);
                let more = format!("The site's PHP-FPM pool could not be removed from host {name} ({why}): remove {pool} there and reload its PHP-FPM.");
                warning = Some(match warning {
                    Some(w) => format!("{w} {more}"),
                    None => more,
                });
            }
            self.ssh.close(&host).await;
        }
        hosts::delete(&self.pool, host.id).await?;
        let detail = json!({"host": name, "warning": warning});
        self.audit_host(who, &site.name, "host_remove", Outcome::Ok, detail)
            .await?;
        Ok(warning)
    }

    /// Opens the connections to the site's confirmed hosts in the background (an upload has
    /// begun: its staging will need them). No-op without hosts.
    pub async fn warm_hosts(&self, site_id: i64) {
        let Ok(all) = hosts::list(&self.pool, site_id).await else {
            return;
        };
        for h in all.into_iter().filter(|h| h.confirmed) {
            let ssh = self.ssh.clone();
            tokio::spawn(async move { ssh.warm(&h).await });
        }
    }

    /// Stages `release_id` on every confirmed host of the site (a new release; run in the
    /// background, each host's state recorded for the release page). No-op without hosts.
    pub async fn stage_everywhere(&self, site_name: &str, release_id: &str) -> AppResult<()> {
        let site = sites::get(&self.pool, site_name).await?;
        let all = hosts::list(&self.pool, site.id).await?;
        if all.is_empty() {
            return Ok(());
        }
        let release = releases::get(&self.pool, site.id, release_id).await?;
        let manifest = releases::manifest(&self.pool, release.pk).await?;
        let local = SitePaths::new(&self.sites_root, &site.name).release(release_id);
        let shared = &site.settings.shared_paths;
        let confirmed = all.iter().filter(|h| h.confirmed);
        join_all(confirmed.map(|h| {
            stage::stage(
                &self.ssh,
                &self.pool,
                h,
                (&local, release_id),
                &manifest,
                shared,
            )
        }))
        .await;
        Ok(())
    }

    /// Removes from every host the releases deleted here (retention or by hand).
    pub async fn prune_hosts(&self, site_name: &str) -> AppResult<()> {
        let site = sites::get(&self.pool, site_name).await?;
        for h in hosts::list(&self.pool, site.id)
            .await?
            .iter()
            .filter(|h| h.confirmed)
        {
            for id in hosts::deleted_here(&self.pool, h.id).await? {
                match remote::delete_release(&self.ssh, h, &id).await {
                    Ok(()) => {
                        hosts::set_staging(
                            &self.pool,
                            h.id,
                            &id,
                            "deleted",
                            "deleted with the release",
                            None,
                        )
                        .await?
                    }
                    Err(why) => {
                        tracing::warn!(host = %h.name, release = %id, %why, "could not delete a release on a host")
                    }
                }
            }
        }
        Ok(())
    }

    /// What every confirmed host serves and has, against the records (start-up, like the
    /// local reconciliation): a host whose `current` or vhost disagrees, or that cannot be
    /// reached, is marked drifted, saying what was found. Nothing is switched.
    pub async fn check_hosts(&self) -> AppResult<()> {
        for site in sites::list(&self.pool).await? {
            let all = hosts::list(&self.pool, site.id).await?;
            let site = &site;
            join_all(all.iter().filter(|h| h.confirmed).map(|h| async move {
                let (serving, drift) = self.check_host(site, h).await;
                let _ =
                    hosts::set_seen(&self.pool, h.id, serving.as_deref(), drift.as_deref()).await;
            }))
            .await;
        }
        Ok(())
    }

    async fn check_host(
        &self,
        site: &crate::sites::Site,
        h: &Host,
    ) -> (Option<String>, Option<String>) {
        let state = match remote::state(&self.ssh, h, &h.vhost_path(&site.name), "-").await {
            Ok(s) => s,
            Err(why) => {
                return (
                    h.serving.clone(),
                    Some(format!("Could not be checked: {why}")),
                )
            }
        };
        let db = &site.active_release;
        let mut problems = Vec::new();
        if &state.live != db {
            let show = |r: &Option<String>| r.clone().unwrap_or_else(|| "nothing".into());
            problems.push(format!(
                "`current` points at {} but the records say {} is live",
                show(&state.live),
                show(db)
            ));
        }
        if db.is_some() && state.vhost.as_deref() != self.render_for(site, h).ok().as_deref() {
            problems.push("its vhost is not the one Cutover wrote".to_owned());
        }
        let drift = (!problems.is_empty()).then(|| {
            format!("Cutover found that {}. Nothing was switched automatically: put the right release live to fix this.", problems.join("; and "))
        });
        (state.live, drift)
    }

    async fn audit_host(
        &self,
        (actor, source): Who<'_>,
        site: &str,
        action: &str,
        outcome: Outcome,
        detail: serde_json::Value,
    ) -> AppResult<()> {
        let event = Event::new(actor, action, outcome)
            .source(source)
            .site(site)
            .detail(detail);
        audit::record_alone(&self.pool, &event).await?;
        Ok(())
    }
}
