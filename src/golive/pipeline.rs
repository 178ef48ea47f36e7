//! The switch itself (see the module doc for the order of steps).

use std::time::Instant;

use serde_json::json;

use super::{disk, health, GoLive, Kind, Report, Step};
use crate::apache::vhost::{self, VhostSpec};
use crate::audit::{self, Event, Outcome, Source};
use crate::db;
use crate::error::{AppError, AppResult};
use crate::releases::{retention, store};
use crate::sites::{lock, store as sites, Site, SitePaths, SwitchMode};

/// Why a switch stopped, and whether the site had already been switched.
struct Failure {
    code: &'static str,
    message: String,
    switched: bool,
}

/// Shorthand for a [`Failure`].
fn fail(code: &'static str, message: String, switched: bool) -> Failure {
    Failure {
        code,
        message,
        switched,
    }
}

struct Steps(Vec<Step>);

/// What the person asking for a switch saw as live.
#[derive(Clone, Copy, Debug)]
pub enum Expect<'a> {
    /// No expectation (scripts, re-applying settings).
    Anything,
    /// This release (or nothing) was live when they confirmed.
    Live(Option<&'a str>),
}

/// Refuses a switch when the site changed since the person confirming looked at it.
pub fn expect_live(site: &Site, release_id: &str, seen: Option<&str>) -> AppResult<()> {
    let live = site.active_release.as_deref();
    if live == Some(release_id) {
        return Err(AppError::Conflict {
            code: "already_live",
            message: format!("Release {release_id} is already live. Nothing was changed."),
        });
    }
    if live != seen {
        return Err(AppError::Conflict {
            code: "changed_meanwhile",
            message: format!(
                "The site changed since this was shown: {} is live now. Nothing was changed: look at the site again and choose.",
                live.unwrap_or("nothing")
            ),
        });
    }
    Ok(())
}

impl Steps {
    fn push(&mut self, step: &str, started: Instant, ok: bool, detail: impl Into<String>) {
        self.0.push(Step {
            step: step.to_owned(),
            ok,
            ms: started.elapsed().as_millis() as u64,
            detail: detail.into(),
        });
    }
}

impl GoLive {
    /// Makes `release_id` live on `site`. A refused or failed switch comes back as a report
    /// with `ok: false` (the site as it was); "busy", unknown or unusable releases as errors.
    pub async fn activate(
        &self,
        site_name: &str,
        release_id: &str,
        kind: Kind,
        actor: &str,
        source: &Source,
    ) -> AppResult<Report> {
        let how = (kind, Expect::Anything);
        self.switch_to(site_name, release_id, how, actor, source)
            .await
    }

    /// Like [`activate`](Self::activate), refused (nothing changed) if the site no longer
    /// has the live release the person confirming was shown, or `release_id` is live already:
    /// a re-sent form or a second person's tap at the same moment must not switch again.
    pub async fn switch_to(
        &self,
        site_name: &str,
        release_id: &str,
        (kind, expect): (Kind, Expect<'_>),
        actor: &str,
        source: &Source,
    ) -> AppResult<Report> {
        let site = sites::get(&self.pool, site_name).await?;
        let paths = SitePaths::new(&self.sites_root, &site.name);
        let _lock = lock::try_lock(&paths.dir, actor, &format!("putting {release_id} live"))?;
        // Re-read under the lock: the live release may have changed while we waited.
        let site = sites::get(&self.pool, site_name).await?;
        if let Expect::Live(seen) = expect {
            expect_live(&site, release_id, seen)?;
        }
        let release = store::get(&self.pool, site.id, release_id).await?;
        if !release.usable() {
            return Err(AppError::invalid(
                "not_usable",
                format!(
                    "Release {release_id} is {} and cannot go live.",
                    release.state
                ),
            ));
        }
        let before = site.active_release.clone();
        let mut steps = Steps(Vec::new());
        let t = Instant::now();
        let missing = self.check_complete(&paths, release.pk, release_id).await?;
        steps.push(
            "check release files",
            t,
            missing.is_none(),
            missing
                .clone()
                .unwrap_or_else(|| format!("{} files present", release.files)),
        );
        if let Some(m) = missing {
            return Err(AppError::invalid("release_incomplete", m));
        }
        // Apache's workers must be able to read the release, or the health check could only
        // fail (403) after the switch: say why before changing anything.
        if let Err(why) = self.apache.check_reach(&paths.release(release_id)).await {
            return Err(AppError::invalid(
                "apache_cannot_read",
                format!(
                    "Apache could not read release {release_id}, so nothing was changed. {why}"
                ),
            ));
        }
        let event = |outcome| {
            Event::new(actor, kind.as_str(), outcome)
                .source(source)
                .site(&site.name)
                .release(release_id)
        };
        audit::record_alone(
            &self.pool,
            &event(Outcome::Started).detail(json!({"from": before, "to": release_id})),
        )
        .await?;

        let mut result = self
            .switch(&site, &paths, release_id, &mut steps, actor, source)
            .await;
        if result.is_ok() {
            result = self
                .health_step(&site, release_id, &mut steps, actor, source)
                .await;
        }
        let mut report = Report {
            site: site.name.clone(),
            active: before.clone(),
            previous: None,
            requested: release_id.to_owned(),
            kind,
            ok: false,
            rolled_back: false,
            code: None,
            message: String::new(),
            steps: Vec::new(),
        };
        // Switched on disk but not recorded (database unwritable): that is a failure too, and
        // the previous release goes back rather than leaving the records wrong.
        let result = match result {
            Ok(()) => {
                crate::fault::point("before_record");
                self.record_live(&site, release_id, kind, actor, source, &steps.0)
                    .await
                    .map_err(|e| Failure {
                        code: "record_failed",
                        message: format!(
                            "The switch could not be recorded ({e}), so it was not kept."
                        ),
                        switched: true,
                    })
            }
            Err(f) => Err(f),
        };
        match result {
            Ok(()) => {
                report.ok = true;
                report.active = Some(release_id.to_owned());
                report.previous = before.clone();
                report.message = format!("Release {release_id} is live.");
                // Clean-up must not turn a done switch into an error: it is retried next time.
                let cleanup = async {
                    retention::apply(
                        &self.pool,
                        &self.sites_root,
                        &sites::get(&self.pool, &site.name).await?,
                        actor,
                        source,
                    )
                    .await
                };
                if let Err(e) = cleanup.await {
                    tracing::error!(error = ?e, site = %site.name, "retention after going live failed");
                }
            }
            Err(f) => {
                if f.switched {
                    let (restored, healthy) = self
                        .put_back(&site, &paths, before.as_deref(), &mut steps, actor, source)
                        .await;
                    report.rolled_back = restored;
                    report.message = match (&before, restored, healthy) {
                        (Some(b), true, true) => format!("{} Release {b} was put back automatically and is live again.", f.message),
                        (Some(b), true, false) => format!(
                            "{} Release {b} was put back automatically, but it does not pass its health check either: the problem may be outside the releases. Check the site now.",
                            f.message
                        ),
                        (None, true, _) => format!("{} The site was returned to having nothing live.", f.message),
                        (_, false, _) => format!("{} Putting the previous release back also failed: check the site now.", f.message),
                    };
                } else {
                    report.message = format!(
                        "{} Nothing was changed: the live site is as it was.",
                        f.message
                    );
                }
                report.code = Some(f.code);
                audit::record_alone(&self.pool, &event(Outcome::Failed).detail(json!({"from": before, "to": release_id, "code": f.code, "reason": report.message, "rolled_back": report.rolled_back, "steps": steps.0}))).await?;
            }
        }
        report.steps = steps.0;
        Ok(report)
    }

    /// Rolls back to `to`, or to the release live before the current one (from the record of
    /// activations, never from folder names or times).
    pub async fn rollback(
        &self,
        site_name: &str,
        to: Option<&str>,
        expect: Expect<'_>,
        actor: &str,
        source: &Source,
    ) -> AppResult<Report> {
        let site = sites::get(&self.pool, site_name).await?;
        let target = match to {
            Some(id) => id.to_owned(),
            None => self.previous_live(&site).await?.ok_or_else(|| {
                AppError::invalid("nothing_to_roll_back_to", "There is no earlier release to go back to: this site has had only one live release (or none).")
            })?,
        };
        self.switch_to(site_name, &target, (Kind::Rollback, expect), actor, source)
            .await
    }

    /// The release live just before the current one (the API's and CLI's rollback without
    /// `to`, as the contract says; after a rollback that is the release rolled back from).
    pub async fn previous_live(&self, site: &Site) -> AppResult<Option<String>> {
        self.earlier_live(site, "").await
    }

    /// What the dashboard's Roll back button offers: the newest earlier live release that is
    /// still on disk and was not itself rolled back from (its last live period did not end in
    /// a rollback), so that tapping it again after a rollback goes further back, never to the
    /// release just taken down.
    pub async fn rollback_target(&self, site: &Site) -> AppResult<Option<String>> {
        let not_rolled_back_from =
            "AND a.id = (SELECT MAX(b.id) FROM activations b WHERE b.site_id = a.site_id AND b.release_id = a.release_id) \
             AND COALESCE(a.ended_how, '') != 'rolled back'";
        self.earlier_live(site, not_rolled_back_from).await
    }

    /// The newest earlier live release of `site` still on disk, meeting `also` (a fixed SQL
    /// condition on activation `a`).
    async fn earlier_live(&self, site: &Site, also: &'static str) -> AppResult<Option<String>> {
        let Some(live) = &site.active_release else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT a.release_id FROM activations a JOIN releases r ON r.site_id = a.site_id AND r.release_id = a.release_id \
             WHERE a.site_id = ? AND a.release_id != ? AND r.state = 'ready' {also} ORDER BY a.id DESC LIMIT 1"
        );
        let id: Option<String> = sqlx::query_scalar(&sql)
            .bind(site.id)
            .bind(live)
            .fetch_optional(&self.pool)
            .await?;
        Ok(id)
    }

    async fn check_complete(
        &self,
        paths: &SitePaths,
        pk: i64,
        release_id: &str,
    ) -> AppResult<Option<String>> {
        let manifest = store::manifest(&self.pool, pk).await?;
        let dir = paths.release(release_id);
        let id = release_id.to_owned();
        let missing = tokio::task::spawn_blocking(move || {
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

    /// The steps from writing the vhost to "Apache still running" (the health check follows
    /// separately, so a put-back can judge it apart).
    async fn switch(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        steps: &mut Steps,
        actor: &str,
        source: &Source,
    ) -> Result<(), Failure> {
        let vhost_path = self
            .apache
            .vhost_path(&site.name)
            .map_err(|m| fail("config_refused", m, false))?;
        let t = Instant::now();
        let content = self
            .render(site, paths, release_id)
            .map_err(|m| fail("config_refused", m, false))?;
        crate::fault::point("before_vhost");
        let old = disk::write_vhost(&vhost_path, &content).map_err(|e| {
            fail(
                "config_write_failed",
                format!("The Apache configuration could not be written: {e}."),
                false,
            )
        })?;
        steps.push(
            "write Apache configuration",
            t,
            true,
            // The file's name, not its server path: results are shown to deployers.
            format!(
                "{} written",
                vhost_path.file_name().unwrap_or_default().to_string_lossy()
            ),
        );

        crate::fault::point("after_vhost");
        let t = Instant::now();
        let test = self.apache.configtest().await;
        let (ok, output) = match &test {
            Ok(o) => (o.ok, o.output.clone()),
            Err(e) => (false, format!("{e:#}")),
        };
        steps.push("configtest", t, ok, output.clone());
        self.audit_step((actor, source), site, release_id, "configtest", ok, &output)
            .await;
        if !ok {
            let _ = disk::restore_vhost(&vhost_path, old.as_deref());
            return Err(fail(
                "configtest_failed",
                format!("Apache refused the new configuration: {output}"),
                false,
            ));
        }

        crate::fault::point("after_configtest");
        let t = Instant::now();
        disk::point_current(paths, release_id).map_err(|e| {
            fail(
                "switch_failed",
                format!("Switching `current` failed: {e}."),
                true,
            )
        })?;
        steps.push(
            "switch current",
            t,
            true,
            format!("current → releases/{release_id}"),
        );
        crate::fault::point("after_switch");

        let config_changed = old.as_deref() != Some(content.as_str());
        if site.settings.switch_mode == SwitchMode::Pinned
            || config_changed
            || site.settings.reload_always
        {
            let t = Instant::now();
            // A managed Apache that is not running is started (on the new configuration)
            // rather than reloaded: the switch then also brings the site back.
            let reload = if self.apache.is_alive().await {
                self.apache.reload().await
            } else {
                self.apache
                    .ensure_running()
                    .await
                    .map(|()| crate::apache::CommandOutput {
                        ok: true,
                        output: "Apache was not running: started it".into(),
                        duration: Default::default(),
                    })
            };
            let (ok, output) = match &reload {
                Ok(o) => (o.ok, o.output.clone()),
                Err(e) => (false, format!("{e:#}")),
            };
            steps.push("graceful reload", t, ok, output.clone());
            self.audit_step((actor, source), site, release_id, "reload", ok, &output)
                .await;
            if !ok {
                return Err(fail(
                    "reload_failed",
                    format!("Apache did not reload: {output}"),
                    true,
                ));
            }
        }

        crate::fault::point("after_reload");
        let t = Instant::now();
        let alive = self.apache.is_alive().await;
        steps.push(
            "Apache still running",
            t,
            alive,
            if alive {
                "yes"
            } else {
                "Apache stopped after the reload"
            },
        );
        if !alive {
            return Err(fail(
                "apache_died",
                "Apache stopped running after the reload.".into(),
                true,
            ));
        }

        Ok(())
    }

    /// The health check through Apache, recorded as a step and an audit event.
    async fn health_step(
        &self,
        site: &Site,
        release_id: &str,
        steps: &mut Steps,
        actor: &str,
        source: &Source,
    ) -> Result<(), Failure> {
        let t = Instant::now();
        let header_release =
            (site.settings.switch_mode == SwitchMode::Pinned).then_some(release_id);
        let verdict = health::check(
            &self.http,
            &self.apache.check_base(),
            &site.settings.server_name,
            &site.settings.health_path,
            header_release,
            self.health_timeout,
        )
        .await;
        steps.push("health check", t, verdict.healthy, verdict.detail.clone());
        self.audit_step(
            (actor, source),
            site,
            release_id,
            "health_check",
            verdict.healthy,
            &verdict.detail,
        )
        .await;
        if !verdict.healthy {
            return Err(fail(
                "health_check_failed",
                format!(
                    "The new release failed its health check: {}.",
                    verdict.detail
                ),
                true,
            ));
        }
        Ok(())
    }

    /// After a failure past the switch: the previous release back the same way (or, on a
    /// site's first activation, no vhost and no `current`). True when that worked.
    async fn put_back(
        &self,
        site: &Site,
        paths: &SitePaths,
        before: Option<&str>,
        steps: &mut Steps,
        actor: &str,
        source: &Source,
    ) -> (bool, bool) {
        let t = Instant::now();
        if !self.apache.is_alive().await {
            if let Err(e) = self.apache.ensure_running().await {
                steps.push("restart Apache", t, false, format!("{e:#}"));
            }
        }
        // Judged on configuration, switch and reload: a previous release that fails its health
        // check too is still back, and the report says so instead of claiming it failed.
        let mut healthy = true;
        let ok = match before {
            Some(prev) => {
                let mut undo = Steps(Vec::new());
                let r = self
                    .switch(site, paths, prev, &mut undo, actor, source)
                    .await;
                if r.is_ok() {
                    healthy = self
                        .health_step(site, prev, &mut undo, actor, source)
                        .await
                        .is_ok();
                }
                steps.0.extend(undo.0.into_iter().map(|mut s| {
                    s.step = format!("put back: {}", s.step);
                    s
                }));
                r.is_ok()
            }
            None => {
                let undone = match self.apache.vhost_path(&site.name) {
                    Ok(vhost_path) => {
                        disk::restore_vhost(&vhost_path, None).is_ok()
                            && disk::remove_current(paths).is_ok()
                    }
                    Err(_) => false,
                };
                undone && self.apache.reload().await.map(|o| o.ok).unwrap_or(false)
            }
        };
        steps.push(
            "automatic rollback",
            t,
            ok,
            before
                .map(|b| format!("back to {b}"))
                .unwrap_or_else(|| "back to nothing live".into()),
        );
        let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
        let _ = audit::record_alone(
            &self.pool,
            &Event::new(actor, "auto_rollback", outcome)
                .source(source)
                .site(&site.name)
                .detail(json!({"to": before, "healthy": healthy})),
        )
        .await;
        (ok, healthy)
    }

    /// Records one step's result; `who` is (actor, source).
    async fn audit_step(
        &self,
        who: (&str, &Source),
        site: &Site,
        release_id: &str,
        action: &str,
        ok: bool,
        output: &str,
    ) {
        let (actor, source) = who;
        let outcome = if ok { Outcome::Ok } else { Outcome::Failed };
        let event = Event::new(actor, action, outcome)
            .source(source)
            .site(&site.name)
            .release(release_id)
            .detail(json!({"output": output}));
        if let Err(e) = audit::record_alone(&self.pool, &event).await {
            tracing::error!(error = ?e, "could not record {action}");
        }
    }

    /// Records the new live release: the previous activation ends, a new one starts.
    async fn record_live(
        &self,
        site: &Site,
        release_id: &str,
        kind: Kind,
        actor: &str,
        source: &Source,
        steps: &[super::Step],
    ) -> AppResult<()> {
        let now = audit::now_text();
        let ended_how = match kind {
            Kind::Activate => "replaced",
            Kind::Rollback => "rolled back",
        };
        let mut tx = db::begin_write(&self.pool).await?;
        sqlx::query("UPDATE activations SET ended_at = ?, ended_how = ? WHERE site_id = ? AND ended_at IS NULL")
            .bind(&now)
            .bind(ended_how)
            .bind(site.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO activations (site_id, release_id, kind, activated_by, activated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(site.id)
            .bind(release_id)
            .bind(kind.as_str())
            .bind(actor)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        sites::set_active(&mut tx, site.id, Some(release_id)).await?;
        let event = Event::new(actor, kind.as_str(), Outcome::Ok)
            .source(source)
            .site(&site.name)
            .release(release_id);
        audit::record(
            &mut tx,
            &event.detail(json!({"from": site.active_release, "to": release_id, "steps": steps})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
