//! A site on several hosts (issue 17), all or none: every host has the release staged and
//! verified → the candidate vhost written and configtested on every host (one refusal: put
//! back everywhere, nothing switched) → the site's `before_switch` commands (on this machine,
//! once) → every host switched at once → reloaded where the configuration changed. The health
//! check of every host follows (see `fleet_back.rs`), and any failure puts every host back.

use std::time::Instant;

use futures_util::future::join_all;

use super::live::Steps;
use super::report::{fail, Failure};
use super::runner::GoLive;
use super::switch::Who;
use crate::error::code;
use crate::hosts::remote::{self, HostState};
use crate::hosts::{armed, stage, store as hosts, Host};
use crate::releases::store as releases;
use crate::sites::{Site, SitePaths, SwitchMode};

/// One host's part in a switch, once it is known to be ready.
pub(crate) struct Ready<'h> {
    pub(crate) host: &'h Host,
    pub(crate) state: HostState,
    pub(crate) vhost: String,
    /// A PHP site's candidate pool for the host, and the one there now.
    pub(crate) pool: Option<String>,
    pub(crate) old_pool: Option<String>,
}

impl GoLive {
    /// The hosts of `site` (none: it is served by this machine).
    pub(crate) async fn hosts_of(&self, site: &Site) -> Result<Vec<Host>, Failure> {
        hosts::list(&self.pool, site.id).await.map_err(|e| {
            fail(
                code::HOST_FAILED,
                format!("The site's hosts could not be read: {e}"),
                false,
            )
        })
    }

    /// What this round cannot yet do on several hosts, refused before anything is touched.
    pub(crate) fn hosts_unsupported(site: &Site) -> Option<&'static str> {
        let c = &site.settings.config;
        c.tls.is_some().then_some("HTTPS on several hosts is not supported yet: terminate TLS at the load balancer, or serve the site from this machine.")
    }

    /// `site`'s vhost as `host` needs it (its folder, its log folder).
    pub(crate) fn render_for(&self, site: &Site, host: &Host) -> Result<String, String> {
        let paths = SitePaths { dir: host.dir() };
        self.render_in(site, &paths, host.log_dir(), Some(host))
    }

    /// Makes sure `release_id` is staged and whole on `host` (staging it now if it is not),
    /// and reads what the host has.
    pub(crate) async fn host_ready<'h>(
        &self,
        site: &Site,
        paths: &SitePaths,
        host: &'h Host,
        release_id: &str,
    ) -> Result<Ready<'h>, String> {
        if !host.confirmed {
            return Err(format!("host {}'s key has not been confirmed: confirm its fingerprint on the site page first.", host.name));
        }
        let vhost_path = host.vhost_path(&site.name);
        let mut state = remote::state(&self.ssh, host, &vhost_path, release_id).await?;
        let staged = hosts::staging_state(&self.pool, host.id, release_id)
            .await
            .ok()
            .flatten();
        if !state.has_release || staged.as_deref() != Some("staged") {
            let release = releases::get(&self.pool, site.id, release_id)
                .await
                .map_err(|e| e.to_string())?;
            let manifest = releases::manifest(&self.pool, release.pk)
                .await
                .map_err(|e| e.to_string())?;
            let local = paths.release(release_id);
            let shared = &site.settings.shared_paths;
            stage::stage(
                &self.ssh,
                &self.pool,
                host,
                (&local, release_id),
                &manifest,
                shared,
            )
            .await
            .map_err(|why| {
                format!(
                    "release {release_id} could not be staged on host {}: {why}",
                    host.name
                )
            })?;
            state = remote::state(&self.ssh, host, &vhost_path, release_id).await?;
        }
        let vhost = self.render_for(site, host)?;
        let pool = self.pool_for(site, host)?;
        let old_pool = self.pool_on(site, host).await?;
        Ok(Ready {
            host,
            state,
            vhost,
            pool,
            old_pool,
        })
    }

    /// The switch on every host of `site`, all or none (see the module's comment).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fleet_switch(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
        before_switch: bool,
        hosts: &[Host],
    ) -> Result<(), Failure> {
        if let Some(why) = Self::hosts_unsupported(site) {
            return Err(fail(code::HOSTS_UNSUPPORTED, why.into(), false));
        }
        let t = Instant::now();
        let ready = join_all(
            hosts
                .iter()
                .map(|h| self.host_ready(site, paths, h, release_id)),
        )
        .await;
        let (mut all, mut refused) = (Vec::new(), Vec::new());
        for (h, r) in hosts.iter().zip(ready) {
            match r {
                Ok(r) => all.push(r),
                Err(why) => {
                    let step = format!("{}: release staged", h.name);
                    steps.push(&step, t, false, why.clone());
                    refused.push(why);
                }
            }
        }
        if !refused.is_empty() {
            let why = refused.join("; ");
            let m = format!("Nothing was switched on any host: {why}.");
            return Err(fail(code::HOST_NOT_STAGED, m, false));
        }
        let detail = format!(
            "release {release_id} staged and verified on {} hosts",
            all.len()
        );
        steps.push("release staged on every host", t, true, detail);
        let changed = self.fleet_config(site, &all, release_id, steps).await?;
        self.fleet_php_reload(site, &all, &changed, steps).await?;
        if before_switch {
            let stage = crate::steps::Stage::BeforeSwitch;
            let ran = self
                .stage(site, paths, release_id, stage, steps, who, false)
                .await;
            if ran.is_err() {
                self.restore_configs(site, &all, &changed, true).await;
            }
            ran?;
        }
        self.switch_every(site, &all, &changed, release_id, steps)
            .await?;
        let reload: Vec<&Ready> = all
            .iter()
            .zip(&changed)
            .filter(|(_, c)| **c || site.settings.reload_always)
            .map(|(r, _)| r)
            .collect();
        let t = Instant::now();
        let reloads = join_all(
            reload
                .iter()
                .map(|r| remote::command(&self.ssh, r.host, &r.host.reload)),
        )
        .await;
        for (r, (ok, words)) in reload.iter().zip(reloads) {
            steps.push(
                &format!("{}: graceful reload", r.host.name),
                t,
                ok,
                words.clone(),
            );
            if !ok {
                let m = format!("Apache on host {} did not reload: {words}", r.host.name);
                return Err(fail(code::RELOAD_FAILED, m, true));
            }
        }
        Ok(())
    }

    /// Writes the candidate vhost on every host whose vhost differs, and configtests each of
    /// them; one refusal puts the old files back everywhere. Which hosts changed.
    async fn fleet_config(
        &self,
        site: &Site,
        all: &[Ready<'_>],
        release_id: &str,
        steps: &mut Steps,
    ) -> Result<Vec<bool>, Failure> {
        let pinned = site.settings.switch_mode == SwitchMode::Pinned;
        let changed: Vec<bool> = all
            .iter()
            .map(|r| r.state.vhost.as_deref() != Some(r.vhost.as_str()))
            .collect();
        let t = Instant::now();
        let written = join_all(all.iter().zip(&changed).map(|(r, c)| async move {
            if let Err(why) = self.host_pool(site, r).await {
                return (
                    false,
                    format!("PHP-FPM refused the site's pool: {why}"),
                    false,
                );
            }
            if let Err(why) = self.page_on(site, r.host).await {
                let why = format!("the maintenance page could not be written: {why}");
                return (false, why, false);
            }
            if !*c {
                let name = crate::apache::system::vhost_file_name(&site.name);
                return (true, format!("{name} unchanged"), false);
            }
            if pinned && !r.state.has_map {
                // A first map names the target: no configuration the host loaded reads it yet.
                let map = format!("{}/{}", r.host.dir, crate::apache::livemap::FILE_NAME);
                let text =
                    crate::apache::livemap::render(&site.name, release_id).unwrap_or_default();
                if let Err(e) = remote::write_file(&self.ssh, r.host, &map, &text).await {
                    let why = format!("the live-release map could not be written: {e}");
                    return (false, why, false);
                }
            }
            if let Err(e) =
                remote::write_file(&self.ssh, r.host, &r.host.vhost_path(&site.name), &r.vhost)
                    .await
            {
                return (false, format!("the vhost could not be written: {e}"), false);
            }
            let (ok, words) = remote::command(&self.ssh, r.host, &r.host.configtest).await;
            (ok, words, true)
        }))
        .await;
        let mut refused = None;
        // `apache`: the words are Apache's configtest's; otherwise Cutover's own sentence.
        for ((r, (ok, words, apache)), c) in all.iter().zip(written).zip(&changed) {
            let step = if *c {
                "configtest"
            } else {
                "Apache configuration"
            };
            steps.push(&format!("{}: {step}", r.host.name), t, ok, words.clone());
            if !ok && refused.is_none() {
                refused = Some(match apache {
                    true => format!(
                        "Apache on host {} refused the new configuration: {words}",
                        r.host.name
                    ),
                    false => format!("On host {}, {words}", r.host.name),
                });
            }
        }
        if let Some(m) = refused {
            self.restore_configs(site, all, &changed, false).await;
            return Err(fail(
                code::CONFIGTEST_FAILED,
                format!("{m} Nothing was switched on any host."),
                false,
            ));
        }
        Ok(changed)
    }

    /// Puts each changed host's previous vhost and pool back (or removes new ones); PHP-FPM
    /// is reloaded again where `php_reloaded` (it serves the new pool).
    pub(crate) async fn restore_configs(
        &self,
        site: &Site,
        all: &[Ready<'_>],
        changed: &[bool],
        php_reloaded: bool,
    ) {
        self.restore_pools(site, all, php_reloaded).await;
        join_all(
            all.iter()
                .zip(changed)
                .filter(|(_, c)| **c)
                .map(|(r, _)| async move {
                    let path = r.host.vhost_path(&site.name);
                    let _ = match &r.state.vhost {
                        Some(old) => remote::write_file(&self.ssh, r.host, &path, old).await,
                        None => remote::remove_file(&self.ssh, r.host, &path).await,
                    };
                }),
        )
        .await;
    }

    /// Switches every host at one moment: every host armed, then each told `go` (see
    /// `hosts/armed.rs`); a host that cannot be armed calls the switch off everywhere, with
    /// nothing switched. How far apart the hosts switched (by their clocks) is in the step.
    async fn switch_every(
        &self,
        site: &Site,
        all: &[Ready<'_>],
        changed: &[bool],
        release_id: &str,
        steps: &mut Steps,
    ) -> Result<(), Failure> {
        let map = match site.settings.switch_mode == SwitchMode::Pinned {
            true => Some(
                crate::apache::livemap::render(&site.name, release_id)
                    .map_err(|m| fail(code::SWITCH_FAILED, m, false))?,
            ),
            false => None,
        };
        let t = Instant::now();
        let arming = join_all(
            all.iter()
                .map(|r| armed::arm(&self.ssh, r.host, release_id, map.as_deref())),
        )
        .await;
        let mut refused = Vec::new();
        for (r, a) in all.iter().zip(&arming) {
            if let Err(why) = a {
                steps.push(&format!("{}: switch", r.host.name), t, false, why.clone());
                refused.push(format!("host {}: {why}", r.host.name));
            }
        }
        if !refused.is_empty() {
            join_all(arming.into_iter().flatten().map(armed::Armed::call_off)).await;
            self.restore_configs(site, all, changed, true).await;
            let m = format!("Nothing was switched on any host: {}.", refused.join("; "));
            return Err(fail(code::SWITCH_FAILED, m, false));
        }
        let mut arming: Vec<armed::Armed> = arming.into_iter().flatten().collect();
        crate::fault_point!("before_hosts_switch");
        let t = Instant::now();
        // One pipe write each, back to back: the hosts switch together.
        let mut fired = Vec::new();
        for a in arming.iter_mut() {
            fired.push(a.fire().await);
        }
        let done = join_all(arming.into_iter().zip(fired).map(|(a, f)| async move {
            f?;
            a.done().await
        }))
        .await;
        let mut failed = None;
        for (r, result) in all.iter().zip(&done) {
            let (ok, detail) = match result {
                Ok(_) => (true, format!("current → releases/{release_id}")),
                Err(e) => (false, e.clone()),
            };
            steps.push(&format!("{}: switch", r.host.name), t, ok, detail.clone());
            match ok {
                true => {
                    let _ = hosts::set_seen(&self.pool, r.host.id, Some(release_id), None).await;
                }
                false if failed.is_none() => {
                    failed = Some(format!(
                        "Host {} could not be switched: {detail}",
                        r.host.name
                    ))
                }
                false => {}
            }
        }
        let at: Vec<i128> = done
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .collect();
        let skew = at.iter().max().unwrap_or(&0) - at.iter().min().unwrap_or(&0);
        steps.push(
            "switch every host",
            t,
            failed.is_none(),
            format!(
                "{} of {} hosts switched, {:.1} ms apart (by the hosts' clocks)",
                at.len(),
                all.len(),
                skew as f64 / 1e6
            ),
        );
        match failed {
            Some(m) => Err(fail(code::SWITCH_FAILED, m, true)),
            None => Ok(()),
        }
    }
}
