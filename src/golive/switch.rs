//! The switch itself: the release is complete → the candidate vhost (written and configtested
//! only when it differs from the one in place) → `current` → the live-release map (pinned
//! mode) → graceful reload (only when the configuration changed, Apache is not running, or a
//! symlink site asks for it) → Apache alive. The health check follows separately (see
//! `record.rs`), so a put-back can judge it apart. Pinned mode switches by the map, not by a
//! reload (see [`crate::apache::livemap`]): a plain release switch leaves Apache's config be.
//! A site on several hosts goes through `fleet.rs` instead.

use std::path::PathBuf;
use std::time::Instant;

use super::ahead::Ahead;
use super::disk;
use super::live::Steps;
use super::report::{fail, Failure};
use super::runner::GoLive;
use crate::apache::serving::{Serving, TlsVhost};
use crate::apache::vhost::{self, VhostSpec};
use crate::apache::CommandOutput;
use crate::audit::Source;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::sites::{Site, SitePaths, SwitchMode};

/// Who asked for a switch: (actor, source).
pub(crate) type Who<'a> = (&'a str, &'a Source);

/// How to undo a written vhost: its path, its old content (none: it was new), and whether
/// the live map was made for it.
type VhostUndo = (PathBuf, Option<String>, bool);

impl GoLive {
    /// `None` when every file of `manifest` is on disk with its size; else why not.
    #[tracing::instrument(skip_all, fields(release = release_id))]
    pub(crate) async fn check_complete(
        &self,
        paths: &SitePaths,
        manifest: Vec<crate::releases::archive::ManifestEntry>,
        release_id: &str,
    ) -> AppResult<Option<String>> {
        let dir = paths.release(release_id);
        let id = release_id.to_owned();
        let missing = crate::blocking::spawn(move || {
            if !dir.is_dir() {
                return Some(format!("The folder of release {id} is missing from the server. Upload it again."));
            }
            manifest.iter().find(|f| std::fs::metadata(dir.join(&f.path)).map(|m| m.len() != f.size).unwrap_or(true)).map(|f| {
                format!("Release {id} is damaged on the server ({} is missing or has changed). Upload it again.", f.path)
            })
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
        Ok(missing)
    }

    /// The site's vhost. It names no release (pinned sites read theirs from the live map), so
    /// it only changes when the settings do.
    pub(crate) fn render(&self, site: &Site, paths: &SitePaths) -> Result<String, String> {
        self.render_in(site, paths, &self.apache.log_dir(), None)
    }

    /// [`render`](Self::render) for `paths` and `log_dir`, here or on `host`.
    pub(crate) fn render_in(
        &self,
        site: &Site,
        paths: &SitePaths,
        log_dir: &std::path::Path,
        host: Option<&crate::hosts::Host>,
    ) -> Result<String, String> {
        let pinned = site.settings.switch_mode == SwitchMode::Pinned;
        let map = paths.live_map();
        let config = &site.settings.config;
        let maintenance = self.maintenance_for(site, paths, host)?;
        let socket = self.socket_for(site, host);
        let (directives, redirects) = self.directives(site, paths)?;
        let tls_at = match &config.tls {
            Some(_) => Some(self.apache.tls_addresses()?),
            None => None,
        };
        vhost::render(&VhostSpec {
            site: &site.name,
            server_name: &site.settings.server_name,
            aliases: &site.settings.aliases,
            document_root: &paths.current(),
            site_dir: &paths.dir,
            log_dir,
            release: None,
            live_map: pinned.then_some(map.as_path()),
            serving: Serving {
                config,
                shared_paths: &site.settings.shared_paths,
                php_socket: socket.as_deref(),
                maintenance: maintenance.as_ref().map(|(p, k)| (p.as_path(), k.as_str())),
                directives: &directives,
                redirects: &redirects,
            },
            tls: config
                .tls
                .as_ref()
                .zip(tls_at.as_ref())
                .map(|(tls, (address, check))| TlsVhost {
                    address,
                    port: check.port(),
                    tls,
                }),
        })
    }

    /// The steps from writing the vhost to "Apache still running" (no site commands: a
    /// settings change or a put-back).
    pub(crate) async fn switch(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<(), Failure> {
        self.switch_with(site, paths, release_id, steps, who, Ahead::default())
            .await
    }

    /// [`switch`](Self::switch), with what a go-live has worked out `ahead`.
    #[tracing::instrument(skip_all, fields(site = %site.name, release = release_id))]
    pub(crate) async fn switch_with(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
        ahead: Ahead,
    ) -> Result<(), Failure> {
        let before_switch = ahead.before_switch;
        let hosts = match ahead.hosts {
            Some(hosts) => hosts,
            None => self.hosts_of(site).await?,
        };
        if !hosts.is_empty() {
            return self
                .fleet_switch(site, paths, release_id, steps, who, before_switch, &hosts)
                .await;
        }
        self.php_step(site, paths, steps).await?;
        let undo = self
            .write_and_test_vhost(site, paths, release_id, steps, who)
            .await?;
        let config_changed = undo.is_some();
        if before_switch {
            let stage = crate::steps::Stage::BeforeSwitch;
            let ran = self
                .stage(site, paths, release_id, stage, steps, who, false)
                .await;
            if let (Err(_), Some((path, old, new_map))) = (&ran, &undo) {
                let _ = disk::restore_vhost(path, old.as_deref());
                if *new_map {
                    let _ = disk::remove_live_map(paths);
                }
            }
            ran?;
        }
        let t = Instant::now();
        let pinned = site.settings.switch_mode == SwitchMode::Pinned;
        // The map written ahead, if it was and names this release; else it is written now.
        let next = match ahead.map {
            Some(task) => task.await.ok().and_then(Result::ok),
            None => None,
        }
        .filter(|m| m.release() == release_id);
        let (p, id, name) = (paths.clone(), release_id.to_owned(), site.name.clone());
        match (pinned, next) {
            (true, Some(next)) => disk::switch_to_next(paths, next).await,
            (true, None) => match blocking(move || disk::next_map(&p, &name, &id)).await {
                Ok(next) => disk::switch_to_next(paths, next).await,
                Err(e) => Err(e),
            },
            (false, _) => blocking(move || disk::point_current(&p, &id)).await,
        }
        .map_err(|e| {
            let what = if pinned {
                "`current` and the live-release map"
            } else {
                "`current`"
            };
            fail(
                code::SWITCH_FAILED,
                format!("Switching {what} failed: {e}."),
                true,
            )
        })?;
        let detail = format!("current → releases/{release_id}");
        steps.push("switch current", t, true, detail);
        if pinned {
            let map = crate::apache::livemap::FILE_NAME;
            let t = Instant::now();
            steps.push(
                "switch live release",
                t,
                true,
                format!("{map} → {release_id}"),
            );
        } else {
            crate::fault_point!("after_switch");
        }
        crate::fault_point!("after_map");
        // No PHP-FPM reload in either mode: pinned mode names each release by its own path,
        // and in symlink mode every pool resolves `current` afresh on each request (no realpath
        // cache; see php/pool.rs), so the opcode cache keys the new release's files by their
        // real path. Measured: reloading at each symlink switch cost ~50 ms and let a few
        // requests fail with 503 (4 in 52,620 over 200 switches); this costs nothing.
        // Pinned sites need no reload to switch (PHP's code is named by its release path, so
        // no opcode cache can serve the old one); symlink sites may ask for one every time.
        let asked = !pinned && site.settings.reload_always;
        if config_changed || asked || !self.apache.is_alive().await {
            self.reload_step(site, release_id, steps, who).await?;
        }
        crate::fault_point!("after_reload");
        self.alive_step(steps).await
    }

    /// Points the live-release map at `release_id`: from the next request on, Apache serves it.
    async fn map_step(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
    ) -> Result<(), Failure> {
        let t = Instant::now();
        let (p, name, id) = (paths.clone(), site.name.clone(), release_id.to_owned());
        blocking(move || disk::point_live_map(&p, &name, &id))
            .await
            .map_err(|e| {
                fail(
                    code::SWITCH_FAILED,
                    format!("Switching the live-release map failed: {e}."),
                    true,
                )
            })?;
        let detail = format!("{} → {release_id}", crate::apache::livemap::FILE_NAME);
        steps.push("switch live release", t, true, detail);
        Ok(())
    }

    /// Writes the candidate vhost and runs configtest (the old file back if refused), unless it
    /// is the vhost already in place. When the configuration changed: how to undo it (the
    /// file, its old content, whether the live map is new).
    async fn write_and_test_vhost(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<Option<VhostUndo>, Failure> {
        let vhost_path = self
            .apache
            .vhost_path(&site.name)
            .map_err(|m| fail(code::CONFIG_REFUSED, m, false))?;
        let t = Instant::now();
        self.tls_step(site, steps).await?;
        let content = self
            .render(site, paths)
            .map_err(|m| fail(code::CONFIG_REFUSED, m, false))?;
        // The file's name, not its server path: results are shown to deployers.
        let name = vhost_path.file_name().unwrap_or_default().to_string_lossy();
        let (p, c) = (vhost_path.clone(), content.clone());
        let same = blocking(move || Ok(std::fs::read_to_string(&p).is_ok_and(|old| old == c)));
        if same.await.unwrap_or(false) {
            steps.push("Apache configuration", t, true, format!("{name} unchanged"));
            return Ok(None);
        }
        // A pinned vhost's RewriteMap must exist at configtest: a first one names the target
        // (no configuration Apache has loaded reads it yet, so nothing switches here).
        let pinned = site.settings.switch_mode == SwitchMode::Pinned;
        let map = paths.live_map();
        let new_map = pinned && !blocking(move || Ok(map.exists())).await.unwrap_or(false);
        if new_map {
            let not_switched = |f: Failure| Failure {
                switched: false,
                ..f
            };
            self.map_step(site, paths, release_id, steps)
                .await
                .map_err(not_switched)?;
        }
        crate::fault_point!("before_vhost");
        let old = write_vhost(vhost_path.clone(), content.clone())
            .await
            .map_err(|e| {
                fail(
                    code::CONFIG_WRITE_FAILED,
                    format!("The Apache configuration could not be written: {e}."),
                    false,
                )
            })?;
        steps.push(
            "write Apache configuration",
            t,
            true,
            format!("{name} written"),
        );

        crate::fault_point!("after_vhost");
        let t = Instant::now();
        let (ok, output) = outcome(self.apache.configtest().await);
        steps.push("configtest", t, ok, output.clone());
        self.audit_step(who, site, release_id, "configtest", ok, &output)
            .await;
        if !ok {
            let _ = disk::restore_vhost(&vhost_path, old.as_deref());
            if new_map {
                let _ = disk::remove_live_map(paths);
            }
            let hint = if output.contains("SSLEngine") || output.contains("SSLCertificate") {
                " Apache does not know the HTTPS directives: enable mod_ssl on this server (a2enmod ssl), then try again."
            } else {
                ""
            };
            return Err(fail(
                code::CONFIGTEST_FAILED,
                format!("Apache refused the new configuration: {output}{hint}"),
                false,
            ));
        }
        crate::fault_point!("after_configtest");
        Ok(Some((vhost_path, old, new_map)))
    }

    /// A graceful reload; a managed Apache that is not running is started (on the new
    /// configuration) instead, so the switch also brings the site back.
    async fn reload_step(
        &self,
        site: &Site,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<(), Failure> {
        let t = Instant::now();
        let reload = if self.apache.is_alive().await {
            self.apache.reload().await
        } else {
            self.apache.ensure_running().await.map(|()| CommandOutput {
                ok: true,
                output: "Apache was not running: started it".into(),
                duration: Default::default(),
            })
        };
        let (ok, output) = outcome(reload);
        steps.push("graceful reload", t, ok, output.clone());
        self.audit_step(who, site, release_id, "reload", ok, &output)
            .await;
        if !ok {
            return Err(fail(
                code::RELOAD_FAILED,
                format!("Apache did not reload: {output}"),
                true,
            ));
        }
        Ok(())
    }
}

/// Whether an Apache command worked, and its words.
fn outcome(result: anyhow::Result<CommandOutput>) -> (bool, String) {
    match result {
        Ok(o) => (o.ok, o.output),
        Err(e) => (false, format!("{e:#}")),
    }
}

/// `f` (file-system work that may fsync) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    crate::blocking::spawn(f)
        .await
        .map_err(std::io::Error::other)?
}

/// [`disk::write_vhost`] off the async threads (it fsyncs).
async fn write_vhost(path: PathBuf, content: String) -> std::io::Result<Option<String>> {
    crate::blocking::spawn(move || disk::write_vhost(&path, &content))
        .await
        .map_err(std::io::Error::other)?
}
