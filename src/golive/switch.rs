//! The switch itself: the release is complete → the candidate vhost → configtest → `current`
//! → graceful reload (only when the configuration changed or the mode needs it) → Apache alive.
//! The health check follows separately (see `record.rs`), so a put-back can judge it apart.

use std::path::PathBuf;
use std::time::Instant;

use super::disk;
use super::report::{fail, Failure, Steps};
use super::runner::GoLive;
use crate::apache::vhost::{self, VhostSpec};
use crate::apache::CommandOutput;
use crate::audit::Source;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::releases::store;
use crate::sites::{Site, SitePaths, SwitchMode};

/// Who asked for a switch: (actor, source).
pub(crate) type Who<'a> = (&'a str, &'a Source);

impl GoLive {
    /// `None` when every file of the manifest is on disk with its size; else why not.
    #[tracing::instrument(skip_all, fields(release = release_id))]
    pub(crate) async fn check_complete(
        &self,
        paths: &SitePaths,
        pk: i64,
        release_id: &str,
    ) -> AppResult<Option<String>> {
        let manifest = store::manifest(&self.pool, pk).await?;
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

    fn render(&self, site: &Site, paths: &SitePaths, release_id: &str) -> Result<String, String> {
        let pinned = site.settings.switch_mode == SwitchMode::Pinned;
        let document_root = if pinned {
            paths.release(release_id)
        } else {
            paths.current()
        };
        let log_dir = self.apache.log_dir();
        vhost::render(&VhostSpec {
            site: &site.name,
            server_name: &site.settings.server_name,
            aliases: &site.settings.aliases,
            document_root: &document_root,
            site_dir: &paths.dir,
            log_dir: &log_dir,
            release: pinned.then_some(release_id),
        })
    }

    /// The steps from writing the vhost to "Apache still running".
    #[tracing::instrument(skip_all, fields(site = %site.name, release = release_id))]
    pub(crate) async fn switch(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<(), Failure> {
        let config_changed = self
            .write_and_test_vhost(site, paths, release_id, steps, who)
            .await?;
        crate::fault::point("after_configtest").await;
        let t = Instant::now();
        let (p, id) = (paths.clone(), release_id.to_owned());
        crate::blocking::spawn(move || disk::point_current(&p, &id))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| {
                fail(
                    code::SWITCH_FAILED,
                    format!("Switching `current` failed: {e}."),
                    true,
                )
            })?;
        let detail = format!("current → releases/{release_id}");
        steps.push("switch current", t, true, detail);
        crate::fault::point("after_switch").await;
        if site.settings.switch_mode == SwitchMode::Pinned
            || config_changed
            || site.settings.reload_always
        {
            self.reload_step(site, release_id, steps, who).await?;
        }
        crate::fault::point("after_reload").await;
        self.alive_step(steps).await
    }

    /// Writes the candidate vhost and runs configtest (the old file back if refused).
    /// True when the configuration changed.
    async fn write_and_test_vhost(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<bool, Failure> {
        let vhost_path = self
            .apache
            .vhost_path(&site.name)
            .map_err(|m| fail(code::CONFIG_REFUSED, m, false))?;
        let t = Instant::now();
        let content = self
            .render(site, paths, release_id)
            .map_err(|m| fail(code::CONFIG_REFUSED, m, false))?;
        crate::fault::point("before_vhost").await;
        let old = write_vhost(vhost_path.clone(), content.clone())
            .await
            .map_err(|e| {
                fail(
                    code::CONFIG_WRITE_FAILED,
                    format!("The Apache configuration could not be written: {e}."),
                    false,
                )
            })?;
        // The file's name, not its server path: results are shown to deployers.
        let name = vhost_path.file_name().unwrap_or_default().to_string_lossy();
        steps.push(
            "write Apache configuration",
            t,
            true,
            format!("{name} written"),
        );

        crate::fault::point("after_vhost").await;
        let t = Instant::now();
        let (ok, output) = outcome(self.apache.configtest().await);
        steps.push("configtest", t, ok, output.clone());
        self.audit_step(who, site, release_id, "configtest", ok, &output)
            .await;
        if !ok {
            let _ = disk::restore_vhost(&vhost_path, old.as_deref());
            return Err(fail(
                code::CONFIGTEST_FAILED,
                format!("Apache refused the new configuration: {output}"),
                false,
            ));
        }
        Ok(old.as_deref() != Some(content.as_str()))
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

    async fn alive_step(&self, steps: &mut Steps) -> Result<(), Failure> {
        let t = Instant::now();
        let alive = self.apache.is_alive().await;
        let detail = if alive {
            "yes"
        } else {
            "Apache stopped after the reload"
        };
        steps.push("Apache still running", t, alive, detail);
        if !alive {
            return Err(fail(
                code::APACHE_DIED,
                "Apache stopped running after the reload.".into(),
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

/// [`disk::write_vhost`] off the async threads (it fsyncs).
async fn write_vhost(path: PathBuf, content: String) -> std::io::Result<Option<String>> {
    crate::blocking::spawn(move || disk::write_vhost(&path, &content))
        .await
        .map_err(std::io::Error::other)?
}
