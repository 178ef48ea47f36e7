//! [`GoLive`]: everything a switch needs, shared by the console and the CLI.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::apache::ApacheCtl;
use crate::audit::{self, Event, Outcome, Source};
use crate::db::Pool;
use crate::error::{AppError, AppResult};

/// Everything a switch needs.
#[derive(Clone)]
pub struct GoLive {
    /// The database.
    pub pool: Pool,
    /// `<sites_root>`.
    pub sites_root: PathBuf,
    /// The Apache we drive.
    pub apache: Arc<ApacheCtl>,
    /// For health checks.
    pub http: reqwest::Client,
    /// How long the health check may take.
    pub health_timeout: Duration,
    /// The private PHP-FPM of PHP sites, when Debian's php-fpm is installed.
    pub php: Option<Arc<crate::php::Php>>,
    /// Runs the sites' deploy steps.
    pub steps: Arc<crate::steps::runner::Runner>,
    /// Reaches the hosts of sites served by several web servers.
    pub ssh: Arc<crate::hosts::Ssh>,
}

impl GoLive {
    /// Runs configtest on demand (the site page's **Check config**), audited with Apache's words.
    #[tracing::instrument(skip_all, fields(site))]
    pub async fn check_config(
        &self,
        site: &str,
        actor: &str,
        source: &Source,
    ) -> AppResult<crate::apache::CommandOutput> {
        let out = self.apache.configtest().await.map_err(AppError::Internal)?;
        let outcome = if out.ok { Outcome::Ok } else { Outcome::Failed };
        let event = Event::new(actor, "configtest", outcome)
            .source(source)
            .site(site)
            .detail(serde_json::json!({"output": out.output, "on_demand": true}));
        audit::record_alone(&self.pool, &event).await?;
        Ok(out)
    }
}
