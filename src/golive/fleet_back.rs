//! A site on several hosts after the switch: the health check of every host through its own
//! address, and the put-back of every host when any one failed. A host that cannot be put
//! back is marked drifted (site page, audit log), never hidden.

use std::time::Instant;

use futures_util::future::join_all;
use serde_json::json;

use super::live::Steps;
use super::putback::PutBack;
use super::report::{fail, Failure};
use super::runner::GoLive;
use super::switch::Who;
use crate::audit::{self, Event, Outcome};
use crate::error::code;
use crate::hosts::{armed, remote, store as hosts, Host};
use crate::sites::{Site, SwitchMode};

impl GoLive {
    /// Checks one host through its own address with the site's Host header.
    async fn host_health(
        &self,
        site: &Site,
        host: &Host,
        release_id: &str,
    ) -> super::health::Verdict {
        let pinned = site.settings.switch_mode == SwitchMode::Pinned;
        super::health::check(
            &self.http,
            &host.check_url,
            (&site.name, &site.settings.server_name),
            &site.settings.health_path,
            pinned.then_some(release_id),
            self.health_key(site).as_deref(),
            self.health_timeout,
        )
        .await
    }

    /// The health check of every host; the first one failing fails the switch.
    pub(crate) async fn fleet_health(
        &self,
        site: &Site,
        release_id: &str,
        steps: &mut Steps,
        hosts: &[Host],
    ) -> Result<(), Failure> {
        let t = Instant::now();
        let verdicts = join_all(hosts.iter().map(|h| self.host_health(site, h, release_id))).await;
        let mut failed = None;
        for (h, v) in hosts.iter().zip(verdicts) {
            steps.push(
                &format!("{}: health check", h.name),
                t,
                v.healthy,
                v.detail.clone(),
            );
            if !v.healthy && failed.is_none() {
                failed = Some(format!(
                    "Host {} failed its health check: {}.",
                    h.name, v.detail
                ));
            }
        }
        match failed {
            Some(m) => Err(fail(code::HEALTH_CHECK_FAILED, m, true)),
            None => Ok(()),
        }
    }

    /// Puts every host back to `before` (its vhost from `site`'s settings, `current`, a reload
    /// where the vhost changed, a health check), each on its own: one host that cannot be put
    /// back does not stop the others, and is marked drifted.
    pub(crate) async fn fleet_put_back(
        &self,
        site: &Site,
        before: Option<&str>,
        steps: &mut Steps,
        who: Who<'_>,
        hosts: &[Host],
    ) -> PutBack {
        let t = Instant::now();
        let results = join_all(hosts.iter().map(|h| self.host_back(site, h, before))).await;
        let (mut restored, mut healthy) = (true, true);
        for (h, r) in hosts.iter().zip(results) {
            let (ok, fine, detail) = match r {
                Ok(fine) => (
                    true,
                    fine,
                    format!("back to {}", before.unwrap_or("nothing live")),
                ),
                Err(why) => (false, false, why),
            };
            restored &= ok;
            healthy &= fine;
            steps.push(&format!("put back: {}", h.name), t, ok, detail.clone());
            let drift = (!ok).then(|| {
                format!(
                    "Could not be put back to {}: {detail}",
                    before.unwrap_or("nothing live")
                )
            });
            let serving = if ok { before } else { None };
            let _ = hosts::set_seen(&self.pool, h.id, serving, drift.as_deref()).await;
            if let Some(d) = drift {
                let (actor, source) = who;
                let event = Event::new(actor, "host_drift", Outcome::Failed)
                    .source(source)
                    .site(&site.name)
                    .detail(json!({"host": h.name, "reason": d}));
                let _ = audit::record_alone(&self.pool, &event).await;
            }
        }
        PutBack { restored, healthy }
    }

    /// One host put back: `Ok(healthy)`, or why it could not be.
    async fn host_back(
        &self,
        site: &Site,
        host: &Host,
        before: Option<&str>,
    ) -> Result<bool, String> {
        let vhost_path = host.vhost_path(&site.name);
        let state = remote::state(&self.ssh, host, &vhost_path, before.unwrap_or("-")).await?;
        let Some(prev) = before else {
            remote::remove_file(&self.ssh, host, &vhost_path).await?;
            remote::remove_current(&self.ssh, host).await?;
            let (ok, words) = remote::command(&self.ssh, host, &host.reload).await;
            return if ok {
                Ok(true)
            } else {
                Err(format!("Apache did not reload: {words}"))
            };
        };
        let vhost = self.render_for(site, host)?;
        let changed = state.vhost.as_deref() != Some(vhost.as_str());
        if changed {
            self.page_on(site, host).await?;
            remote::write_file(&self.ssh, host, &vhost_path, &vhost).await?;
        }
        // A PHP site's pool as the settings say (a refused settings change had written its own).
        let pool = self.pool_for(site, host)?;
        let pool_changed = pool.is_some() && self.pool_on(site, host).await? != pool;
        if let Some(text) = pool.as_deref().filter(|_| pool_changed) {
            remote::write_file(&self.ssh, host, &host.pool_path(&site.name), text).await?;
            remote::reload_php(&self.ssh, host, &site.name).await?;
        }
        let pinned = site.settings.switch_mode == SwitchMode::Pinned;
        let map = match pinned {
            true => Some(crate::apache::livemap::render(&site.name, prev)?),
            false => None,
        };
        armed::switch(&self.ssh, host, prev, map.as_deref()).await?;
        if changed || site.settings.reload_always {
            let (ok, words) = remote::command(&self.ssh, host, &host.reload).await;
            if !ok {
                return Err(format!("Apache did not reload: {words}"));
            }
        }
        Ok(self.host_health(site, host, prev).await.healthy)
    }

    /// Brings a host added to a live site to the live release, checked like a switch of that
    /// host alone: staged and verified, vhost configtested, switched, reloaded, healthy. On a
    /// failure the host is marked drifted, saying why, and serves nothing of the site.
    pub async fn bring_up(&self, site: &Site, host: &Host, who: Who<'_>) -> Result<(), String> {
        let Some(live) = site.active_release.as_deref() else {
            return Ok(());
        };
        let paths = crate::sites::SitePaths::new(&self.sites_root, &site.name);
        let mut steps = Steps::default();
        let one = std::slice::from_ref(host);
        let mut result = self
            .fleet_switch(site, &paths, live, &mut steps, who, false, one)
            .await;
        if result.is_ok() {
            result = self.fleet_health(site, live, &mut steps, one).await;
        }
        let Err(f) = result else {
            return Ok(());
        };
        if f.switched {
            let _ = self.host_back(site, host, None).await;
        }
        let why = format!("Not serving yet: {}", f.message);
        let _ = hosts::set_seen(&self.pool, host.id, None, Some(&why)).await;
        Err(why)
    }
}
