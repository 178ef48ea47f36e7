//! What a switch leaves behind: the health check's verdict, an audit event per step, and the
//! new live period in the database.

use std::time::Instant;

use serde_json::json;

use super::health;
use super::report::{fail, Failure, Kind, Step, Steps};
use super::runner::GoLive;
use super::switch::Who;
use crate::audit::{self, Event, Outcome};
use crate::db::{self, activations};
use crate::error::code;
use crate::error::AppResult;
use crate::sites::{store as sites, Site, SwitchMode};

impl GoLive {
    /// The health check through Apache, recorded as a step and an audit event.
    #[tracing::instrument(skip_all, fields(site = %site.name, release = release_id))]
    pub(crate) async fn health_step(
        &self,
        site: &Site,
        release_id: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> Result<(), Failure> {
        let t = Instant::now();
        let header_release =
            (site.settings.switch_mode == SwitchMode::Pinned).then_some(release_id);
        // In maintenance the check goes past the 503 page to the release, with the site's key.
        let paths = crate::sites::SitePaths::new(&self.sites_root, &site.name);
        let key = match site.settings.config.maintenance {
            true => super::maintenance::files(&paths).ok().map(|(_, k)| k),
            false => None,
        };
        let verdict = health::check(
            &self.http,
            &self.apache.check_base(),
            &site.settings.server_name,
            &site.settings.health_path,
            header_release,
            key.as_deref(),
            self.health_timeout,
        )
        .await;
        steps.push("health check", t, verdict.healthy, verdict.detail.clone());
        let (ok, detail) = (verdict.healthy, &verdict.detail);
        self.audit_step(who, site, release_id, "health_check", ok, detail)
            .await;
        if !verdict.healthy {
            return Err(fail(
                code::HEALTH_CHECK_FAILED,
                format!(
                    "The new release failed its health check: {}.",
                    verdict.detail
                ),
                true,
            ));
        }
        Ok(())
    }

    /// Records one step's result. Logged, not fatal, when it cannot be written: aborting
    /// half-way through a switch would be worse.
    pub(crate) async fn audit_step(
        &self,
        (actor, source): Who<'_>,
        site: &Site,
        release_id: &str,
        action: &str,
        ok: bool,
        output: &str,
    ) {
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
    #[tracing::instrument(skip_all, fields(site = %site.name, release = release_id))]
    pub(crate) async fn record_live(
        &self,
        site: &Site,
        release_id: &str,
        kind: Kind,
        (actor, source): Who<'_>,
        steps: &[Step],
    ) -> AppResult<()> {
        let now = audit::now_text();
        let mut tx = db::begin_write(&self.pool).await?;
        activations::end_open(&mut tx, site.id, &now, kind.ends_previous_as()).await?;
        activations::insert(&mut tx, site.id, release_id, kind.as_str(), actor, &now).await?;
        sites::set_active(&mut tx, site.id, Some(release_id)).await?;
        let event = Event::new(actor, kind.as_str(), Outcome::Ok)
            .source(source)
            .site(&site.name)
            .release(release_id);
        let detail = json!({"from": site.active_release, "to": release_id, "steps": steps});
        audit::record(&mut tx, &event.detail(detail)).await?;
        tx.commit().await?;
        Ok(())
    }
}
