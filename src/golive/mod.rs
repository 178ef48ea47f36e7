//! Going live and rolling back: lock → check the release → write the candidate vhost →
//! configtest → switch → graceful reload → Apache alive → health check → record; and when a
//! step after the switch fails, the previous release is put back the same way.

mod disk;
pub mod health;
mod pipeline;
pub use pipeline::{expect_live, Expect};
pub mod reconcile;
pub mod timeline;

pub use disk::{current_release, point_current, remove_leftover_links, TMP_LINK_PREFIX};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sqlx::SqlitePool;

use crate::apache::ApacheCtl;

/// Everything a switch needs.
#[derive(Clone)]
pub struct GoLive {
    /// The database.
    pub pool: SqlitePool,
    /// `<sites_root>`.
    pub sites_root: PathBuf,
    /// The Apache we drive.
    pub apache: Arc<ApacheCtl>,
    /// For health checks.
    pub http: reqwest::Client,
    /// How long the health check may take.
    pub health_timeout: Duration,
}

impl GoLive {
    /// Runs configtest on demand (the site page's **Check config**), audited with Apache's words.
    pub async fn check_config(
        &self,
        site: &str,
        actor: &str,
        source: &crate::audit::Source,
    ) -> crate::error::AppResult<crate::apache::CommandOutput> {
        let out = self
            .apache
            .configtest()
            .await
            .map_err(crate::error::AppError::Internal)?;
        let outcome = if out.ok {
            crate::audit::Outcome::Ok
        } else {
            crate::audit::Outcome::Failed
        };
        let event = crate::audit::Event::new(actor, "configtest", outcome)
            .source(source)
            .site(site)
            .detail(serde_json::json!({"output": out.output, "on_demand": true}));
        crate::audit::record_alone(&self.pool, &event).await?;
        Ok(out)
    }
}

/// Why a release is being made live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// "Go live" with a chosen release.
    Activate,
    /// "Roll back" to an earlier one.
    Rollback,
}

impl Kind {
    /// Audit action and activation kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Activate => "activate",
            Kind::Rollback => "rollback",
        }
    }
}

/// One step of a switch, as shown to people and returned by the API.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was done.
    pub step: String,
    /// Whether it worked.
    pub ok: bool,
    /// How long it took.
    pub ms: u64,
    /// What came of it (Apache's own words for configtest and reload).
    pub detail: String,
}

/// The answer to a switch.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Site name.
    pub site: String,
    /// The live release after this (unchanged when it failed).
    pub active: Option<String>,
    /// The release live before.
    pub previous: Option<String>,
    /// The release asked for.
    pub requested: String,
    /// Go live or roll back.
    pub kind: Kind,
    /// Whether the requested release is live now.
    pub ok: bool,
    /// Whether a failure after the switch put the previous release back.
    pub rolled_back: bool,
    /// Stable code when it failed (`configtest_failed`, `health_check_failed`, …).
    pub code: Option<&'static str>,
    /// One sentence for people.
    pub message: String,
    /// Every step with its duration.
    pub steps: Vec<Step>,
}
