//! A change of a site's settings. With nothing live they are stored at once. With a release
//! live, the vhost made from them goes through the checked switch first (render → configtest
//! → reload → health check), and they are stored only when Apache took them and the site
//! passed; otherwise the old configuration goes back and nothing is stored.

use serde_json::json;

use super::live::Steps;
use super::runner::GoLive;
use crate::audit::{self, Event, Outcome, Source};
use crate::error::{AppError, AppResult};
use crate::sites::{lock, store as sites, Settings, Site, SitePaths};

impl GoLive {
    /// Applies `new` to the site, or changes nothing and says why (Apache's words included).
    #[tracing::instrument(skip_all, fields(site = site_name, user = actor))]
    pub async fn change_settings(
        &self,
        site_name: &str,
        new: Settings,
        actor: &str,
        source: &Source,
    ) -> AppResult<Site> {
        let site = sites::get(&self.pool, site_name).await?;
        let paths = SitePaths::new(&self.sites_root, &site.name);
        let _lock = lock::try_lock(&paths.dir, actor, "changing the site's settings")?;
        // Re-read under the lock: a switch may have finished while we waited.
        let site = sites::get(&self.pool, site_name).await?;
        if site.settings == new {
            return Ok(site);
        }
        let Some(live) = site.active_release.clone() else {
            return sites::update(&self.pool, &self.sites_root, actor, source, &site, &new).await;
        };
        // Refusals that need no Apache come first: nothing is touched for them.
        sites::check_hosts(&self.pool, site.id, &new).await?;
        let (p, shared) = (paths.clone(), new.shared_paths.clone());
        crate::blocking::spawn(move || p.create(&shared))
            .await
            .map_err(|e| AppError::Internal(e.into()))?
            .map_err(|e| {
                AppError::Internal(anyhow::Error::new(e).context("creating shared folders"))
            })?;
        let candidate = Site {
            settings: new.clone(),
            ..site.clone()
        };
        let mut steps = Steps::default();
        let who = (actor, source);
        let mut result = self
            .switch(&candidate, &paths, &live, &mut steps, who)
            .await;
        if result.is_ok() {
            result = self.health_step(&candidate, &live, &mut steps, who).await;
        }
        let failure = match result {
            Ok(()) => match sites::update(&self.pool, &self.sites_root, actor, source, &site, &new)
                .await
            {
                Ok(site) => return Ok(site),
                Err(e) => super::report::fail(
                    crate::error::code::RECORD_FAILED,
                    format!("The new settings could not be stored ({e}), so they were not kept."),
                    true,
                ),
            },
            Err(f) => f,
        };
        if failure.switched {
            self.put_back(&site, &paths, Some(&live), &mut steps, who)
                .await;
        }
        let message = format!(
            "{} Nothing was changed: the site and its settings are as they were.",
            failure.message
        );
        let detail = json!({"code": failure.code, "reason": message, "steps": steps.0,
            "to": serde_json::to_value(&new).unwrap_or_default()});
        let event = Event::new(actor, "site_update", Outcome::Failed)
            .source(source)
            .site(&site.name)
            .detail(detail);
        audit::record_alone(&self.pool, &event).await?;
        Err(AppError::invalid(failure.code, message))
    }
}
