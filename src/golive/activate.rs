//! Going live and rolling back: the lock, the checks before anything changes, the switch,
//! the health check, the record; and the put-back when a step after the switch fails.

use std::time::Instant;

use serde_json::json;

use super::ahead::{Ahead, NextMapTask};
use super::disk;
use super::expect::{expect_live, Expect};
use super::live::Steps;
use super::putback::PutBack;
use super::report::{Failure, Kind, Report};
use super::runner::GoLive;
use super::switch::Who;
use crate::audit::{self, Event, Outcome, Source};
use crate::db::activations;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::hosts::Host;
use crate::releases::archive::ManifestEntry;
use crate::releases::{retention, store};
use crate::sites::{lock, store as sites, Site, SitePaths};

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
        how: (Kind, Expect<'_>),
        actor: &str,
        source: &Source,
    ) -> AppResult<Report> {
        self.switch_watched(site_name, release_id, how, (actor, source), None)
            .await
    }

    /// [`switch_to`](Self::switch_to), each step shown to `live` as it ends.
    #[tracing::instrument(skip_all, fields(site = site_name, release = release_id, user = who.0))]
    pub async fn switch_watched(
        &self,
        site_name: &str,
        release_id: &str,
        (kind, expect): (Kind, Expect<'_>),
        who: Who<'_>,
        live: Option<super::live::Live>,
    ) -> AppResult<Report> {
        let actor = who.0;
        let what = format!("putting {release_id} live");
        let (paths, lock) = self.lock_site(site_name, actor, &what).await?;
        let lock = std::sync::Arc::new(lock);
        let map = next_map(&paths, site_name, release_id, &lock);
        let (site, read) = self.read_locked(site_name, release_id).await?;
        if let Expect::Live(seen) = expect {
            expect_live(&site, release_id, seen)?;
        }
        let (release, manifest, hosts) = read?;
        let mut steps = Steps(Vec::new(), live);
        let before = site.active_release.clone();
        // The intent is written while the release's files are checked on disk: both must be
        // done before the switch, and neither needs the other (a refusal is recorded after it).
        let intent = json!({"from": before, "to": release_id});
        let started = event(&site, release_id, kind, who, Outcome::Started).detail(intent);
        let (recorded, checked) = tokio::join!(
            audit::record_alone(&self.pool, &started),
            self.check_on_disk(&paths, &release, manifest, hosts.is_empty(), &mut steps)
        );
        recorded?;
        if let Err((code, message)) = checked? {
            let reason = if message.contains("nothing was changed") {
                message.clone()
            } else {
                format!("{message} Nothing was changed: the live site is as it was.")
            };
            let detail = json!({"from": before, "to": release_id, "code": code, "reason": reason, "rolled_back": false, "steps": steps.0});
            let e = event(&site, release_id, kind, who, Outcome::Failed).detail(detail);
            audit::record_alone(&self.pool, &e).await?;
            return Err(AppError::invalid(code, message));
        }
        let ahead = Ahead {
            before_switch: super::hooks::runs_steps(&site, kind),
            hosts: Some(hosts),
            map,
        };
        let result = self
            .run(&site, &paths, release_id, (kind, ahead), &mut steps, who)
            .await;
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
        match result {
            Ok(()) => self.succeeded(&site, &mut report, who).await,
            Err(f) => {
                self.failed(&site, &paths, f, &mut report, &mut steps, who)
                    .await?
            }
        }
        report.steps = steps.0;
        Ok(report)
    }

    /// The site's lock. It comes before any read (the name is checked before it becomes a
    /// path): a read before it would have to be repeated under it anyway.
    async fn lock_site(
        &self,
        name: &str,
        actor: &str,
        what: &str,
    ) -> AppResult<(SitePaths, lock::SiteLock)> {
        if crate::apache::validate::site_name(name).is_err() {
            sites::get(&self.pool, name).await?;
            return Err(AppError::NotFound(format!(
                "There is no site named {name}."
            )));
        }
        let paths = SitePaths::new(&self.sites_root, name);
        match lock::try_lock(&paths.dir, actor, what) {
            Ok(held) => Ok((paths, held)),
            Err(e) => {
                // No folder to lock: most likely no such site, which says it better.
                sites::get(&self.pool, name).await?;
                Err(e)
            }
        }
    }

    /// Under the lock, all at once (one query each, none waiting for another): the site; and
    /// the release (refused, nothing changed, if it is not usable), its manifest and the
    /// site's hosts (none: this machine serves it).
    async fn read_locked(
        &self,
        name: &str,
        release_id: &str,
    ) -> AppResult<(Site, AppResult<Checked>)> {
        let (site, release, manifest, hosts) = tokio::join!(
            sites::get(&self.pool, name),
            store::get_unlabelled(&self.pool, name, release_id),
            store::manifest_of(&self.pool, name, release_id),
            crate::hosts::store::list_named(&self.pool, name)
        );
        let site = site?;
        let rest = (|| {
            let release = release?;
            if !release.usable() {
                let state = release.state;
                let message = format!("Release {release_id} is {state} and cannot go live.");
                return Err(AppError::invalid(code::NOT_USABLE, message));
            }
            let hosts = hosts.map_err(|e| {
                let m = format!("The site's hosts could not be read: {e}");
                AppError::invalid(code::HOST_FAILED, m)
            })?;
            Ok((release, manifest?, hosts))
        })();
        Ok((site, rest))
    }

    /// Refuses (nothing changed) a release that is not whole on disk, or that Apache's
    /// workers could not read (its health check could only fail with 403). On several hosts
    /// each host's Apache is checked by its health check instead (`local`: no hosts).
    async fn check_on_disk(
        &self,
        paths: &SitePaths,
        release: &crate::releases::Release,
        manifest: Vec<ManifestEntry>,
        local: bool,
        steps: &mut Steps,
    ) -> AppResult<Result<(), (code::Code, String)>> {
        let release_id = release.id.as_str();
        let t = Instant::now();
        let missing = self.check_complete(paths, manifest, release_id).await?;
        let files = format!("{} files present", release.files);
        let detail = missing.clone().unwrap_or(files);
        steps.push("check release files", t, missing.is_none(), detail);
        if let Some(m) = missing {
            return Ok(Err((code::RELEASE_INCOMPLETE, m)));
        }
        if !local {
            return Ok(Ok(()));
        }
        Ok(self
            .apache
            .check_reach(&paths.release(release_id))
            .await
            .map_err(|why| {
                let m = format!(
                    "Apache could not read release {release_id}, so nothing was changed. {why}"
                );
                (code::APACHE_CANNOT_READ, m)
            }))
    }

    /// Switch, health check, record. Switched on disk but not recorded (database unwritable)
    /// is a failure too: the previous release goes back rather than leaving the records wrong.
    async fn run(
        &self,
        site: &Site,
        paths: &SitePaths,
        release_id: &str,
        (kind, ahead): (Kind, Ahead),
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<(), Failure> {
        let hooks = ahead.before_switch;
        self.switch_with(site, paths, release_id, steps, who, ahead)
            .await?;
        if hooks {
            let stage = crate::steps::Stage::AfterSwitch;
            self.stage(site, paths, release_id, stage, steps, who, true)
                .await?;
        }
        self.health_step(site, release_id, steps, who).await?;
        crate::fault_point!("before_record");
        self.record_live(site, release_id, kind, who, &steps.0)
            .await
            .map_err(|e| Failure {
                code: code::RECORD_FAILED,
                message: format!("The switch could not be recorded ({e}), so it was not kept."),
                switched: true,
            })
    }

    async fn succeeded(&self, site: &Site, report: &mut Report, (actor, source): Who<'_>) {
        report.ok = true;
        report.previous = report.active.replace(report.requested.clone());
        report.message = format!("Release {} is live.", report.requested);
        // Clean-up must not turn a done switch into an error: it is retried next time.
        let cleanup = async {
            let site = sites::get(&self.pool, &site.name).await?;
            retention::apply(&self.pool, &self.sites_root, &site, actor, source).await
        };
        if let Err(e) = cleanup.await {
            tracing::error!(error = ?e, site = %site.name, "retention after going live failed");
        }
        if let Err(e) = self.prune_hosts(&site.name).await {
            tracing::error!(error = ?e, site = %site.name, "removing deleted releases from the hosts failed");
        }
    }

    async fn failed(
        &self,
        site: &Site,
        paths: &SitePaths,
        f: Failure,
        report: &mut Report,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> AppResult<()> {
        let before = report.active.clone();
        report.message = if f.switched {
            let back = self
                .put_back(site, paths, before.as_deref(), steps, who)
                .await;
            report.rolled_back = back.restored;
            put_back_message(&f.message, before.as_deref(), &back)
        } else {
            format!(
                "{} Nothing was changed: the live site is as it was.",
                f.message
            )
        };
        report.code = Some(f.code);
        let detail = json!({"from": before, "to": report.requested, "code": f.code, "reason": report.message, "rolled_back": report.rolled_back, "steps": steps.0});
        let e = event(site, &report.requested, report.kind, who, Outcome::Failed);
        audit::record_alone(&self.pool, &e.detail(detail)).await?;
        Ok(())
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
        let target = self.rollback_to(site_name, to).await?;
        self.switch_to(site_name, &target, (Kind::Rollback, expect), actor, source)
            .await
    }

    /// The release a rollback goes to: `to`, or the one live before the current one.
    pub async fn rollback_to(&self, site_name: &str, to: Option<&str>) -> AppResult<String> {
        let site = sites::get(&self.pool, site_name).await?;
        match to {
            Some(id) => Ok(id.to_owned()),
            None => self.previous_live(&site).await?.ok_or_else(|| {
                AppError::invalid(code::NOTHING_TO_ROLL_BACK_TO, "There is no earlier release to go back to: this site has had only one live release (or none).")
            }),
        }
    }

    /// The release live just before the current one (the API's and CLI's rollback without
    /// `to`, as the contract says; after a rollback that is the release rolled back from).
    pub async fn previous_live(&self, site: &Site) -> AppResult<Option<String>> {
        self.earlier_live(site, false).await
    }

    /// What the dashboard's Roll back button offers: the newest earlier live release that is
    /// still on disk and was not itself rolled back from (its last live period did not end in
    /// a rollback), so that tapping it again after a rollback goes further back, never to the
    /// release just taken down.
    pub async fn rollback_target(&self, site: &Site) -> AppResult<Option<String>> {
        self.earlier_live(site, true).await
    }

    async fn earlier_live(&self, site: &Site, skip_rolled_back: bool) -> AppResult<Option<String>> {
        let Some(live) = &site.active_release else {
            return Ok(None);
        };
        Ok(activations::earlier_usable(&self.pool, site.id, live, skip_rolled_back).await?)
    }
}

/// A release read for a go-live: itself, its manifest, the site's hosts.
type Checked = (crate::releases::Release, Vec<ManifestEntry>, Vec<Host>);

/// The audit event of this switch with `outcome`.
fn event(
    site: &Site,
    release_id: &str,
    kind: Kind,
    (actor, source): Who<'_>,
    outcome: Outcome,
) -> Event {
    Event::new(actor, kind.as_str(), outcome)
        .source(source)
        .site(&site.name)
        .release(release_id)
}

/// What people are told after a failure past the switch.
fn put_back_message(why: &str, before: Option<&str>, back: &PutBack) -> String {
    match (before, back.restored, back.healthy) {
        (Some(b), true, true) => format!("{why} Release {b} was put back automatically and is live again."),
        (Some(b), true, false) => format!(
            "{why} Release {b} was put back automatically, but it does not pass its health check either: the problem may be outside the releases. Check the site now."
        ),
        (None, true, _) => format!("{why} The site was returned to having nothing live."),
        (_, false, _) => format!("{why} Putting the previous release back also failed: check the site now."),
    }
}

/// A pinned site's next live map, written off the async threads while the checks run (not
/// for a site's first map, which configtest needs in place). Made wherever a live map is in
/// place, before the site's settings are read: in symlink mode (a site once pinned) it goes
/// unused, and is removed. The task holds the site lock too, so that it never runs (clearing
/// leftovers) under another change's.
fn next_map(
    paths: &SitePaths,
    site: &str,
    release_id: &str,
    lock: &std::sync::Arc<lock::SiteLock>,
) -> Option<NextMapTask> {
    let (p, name, id, held) = (
        paths.clone(),
        site.to_owned(),
        release_id.to_owned(),
        lock.clone(),
    );
    paths.live_map().is_file().then(|| {
        tokio::task::spawn_blocking(move || {
            let next = disk::next_map(&p, &name, &id);
            drop(held);
            next
        })
    })
}
