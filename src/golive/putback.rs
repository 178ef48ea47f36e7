//! The put-back: after a failure past the switch, the previous release goes back the same
//! way it went (or, on a site's first activation, no vhost and no `current`).

use std::time::Instant;

use serde_json::json;

use super::disk;
use super::live::Steps;
use super::runner::GoLive;
use super::switch::Who;
use crate::audit::{self, Event, Outcome};
use crate::sites::{Site, SitePaths};

/// What a put-back achieved.
pub(crate) struct PutBack {
    /// The previous state is back (configuration, switch and reload worked).
    pub(crate) restored: bool,
    /// And it passes its health check.
    pub(crate) healthy: bool,
}

impl GoLive {
    /// Puts `before` back live; judged on configuration, switch and reload: a previous release
    /// that fails its health check too is still back, and the report says so.
    #[tracing::instrument(skip_all, fields(site = %site.name))]
    pub(crate) async fn put_back(
        &self,
        site: &Site,
        paths: &SitePaths,
        before: Option<&str>,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> PutBack {
        let t = Instant::now();
        if let Ok(hosts) = self.hosts_of(site).await {
            if !hosts.is_empty() {
                let result = self.fleet_put_back(site, before, steps, who, &hosts).await;
                return self
                    .put_back_done(site, before, steps, who, (t, result))
                    .await;
            }
        }
        if !self.apache.is_alive().await {
            if let Err(e) = self.apache.ensure_running().await {
                steps.push("restart Apache", t, false, format!("{e:#}"));
            }
        }
        let result = match before {
            Some(prev) => self.switch_back(site, paths, prev, steps, who).await,
            None => PutBack {
                restored: self.undo_first(site, paths).await,
                healthy: true,
            },
        };
        self.put_back_done(site, before, steps, who, (t, result))
            .await
    }

    /// Records a put-back: its step and its audit event.
    async fn put_back_done(
        &self,
        site: &Site,
        before: Option<&str>,
        steps: &mut Steps,
        who: Who<'_>,
        (t, result): (Instant, PutBack),
    ) -> PutBack {
        let to = before.map_or_else(|| "back to nothing live".into(), |b| format!("back to {b}"));
        steps.push("automatic rollback", t, result.restored, to);
        let outcome = if result.restored {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let (actor, source) = who;
        let event = Event::new(actor, "auto_rollback", outcome)
            .source(source)
            .site(&site.name)
            .detail(json!({"to": before, "healthy": result.healthy}));
        if let Err(e) = audit::record_alone(&self.pool, &event).await {
            tracing::error!(error = ?e, "could not record the automatic rollback");
        }
        result
    }

    /// The previous release through the same switch and health check, its steps prefixed.
    async fn switch_back(
        &self,
        site: &Site,
        paths: &SitePaths,
        prev: &str,
        steps: &mut Steps,
        who: Who<'_>,
    ) -> PutBack {
        let mut undo = Steps::default();
        let restored = self.switch(site, paths, prev, &mut undo, who).await.is_ok();
        let healthy = restored && self.health_step(site, prev, &mut undo, who).await.is_ok();
        steps.add_prefixed("put back: ", undo.0);
        PutBack { restored, healthy }
    }

    /// Undoes a site's very first activation: no vhost, no `current`, no live map, Apache
    /// reloaded.
    async fn undo_first(&self, site: &Site, paths: &SitePaths) -> bool {
        let Ok(vhost_path) = self.apache.vhost_path(&site.name) else {
            return false;
        };
        let paths = paths.clone();
        let undone = crate::blocking::spawn(move || {
            disk::restore_vhost(&vhost_path, None).is_ok()
                && disk::remove_current(&paths).is_ok()
                && disk::remove_live_map(&paths).is_ok()
        })
        .await
        .unwrap_or(false);
        undone && self.apache.reload().await.map(|o| o.ok).unwrap_or(false)
    }
}
