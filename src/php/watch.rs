//! The console's PHP-FPM: started with the console when PHP sites have pools, and watched as
//! the managed Apache is: a master that died while sites have pools is recorded and started
//! again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::SqlitePool;

use super::Php;
use crate::audit::{self, Event, Outcome};

/// How often the master is checked.
pub const EVERY: Duration = Duration::from_secs(2);

/// Runs until dropped (the console stops it before stopping PHP-FPM). A master the console
/// started that is no longer running while sites have pools is recorded once and started
/// again; a restart that keeps failing is retried without flooding the audit log.
pub async fn watch(php: Arc<Php>, pool: SqlitePool) {
    let mut tick = tokio::time::interval(EVERY);
    let mut failing = false;
    loop {
        tick.tick().await;
        if php.pid().is_some() || php.pools().is_empty() || !php.started() {
            continue;
        }
        if !failing {
            tracing::error!("the private PHP-FPM stopped running");
            let _ = audit::record_alone(
                &pool,
                &Event::new("system", "php_died", Outcome::Failed)
                    .detail(json!({"pools": php.pools()})),
            )
            .await;
        }
        let p = php.clone();
        let restarted = crate::blocking::spawn(move || p.ensure_running())
            .await
            .unwrap_or_else(|e| Err(e.into()));
        let (outcome, detail) = match &restarted {
            Ok(()) => (Outcome::Ok, json!({"pid": php.pid()})),
            Err(e) => (Outcome::Failed, json!({"error": format!("{e:#}")})),
        };
        if restarted.is_ok() || !failing {
            let _ = audit::record_alone(
                &pool,
                &Event::new("system", "php_restart", outcome).detail(detail),
            )
            .await;
        }
        failing = restarted.is_err();
    }
}

/// Starts the private PHP-FPM with the console when PHP sites have pools; audited.
pub async fn start(php: Option<Arc<Php>>, pool: &SqlitePool) {
    let Some(php) = php else { return };
    // The host's PHP-FPM is the system's service: not ours to start.
    if php.pools().is_empty() || php.is_host() {
        return;
    }
    let p = php.clone();
    let result = crate::blocking::spawn(move || p.ensure_running())
        .await
        .unwrap_or_else(|e| Err(e.into()));
    let (outcome, detail) = match &result {
        Ok(()) => (Outcome::Ok, json!({"pid": php.pid(), "pools": php.pools()})),
        Err(e) => (Outcome::Failed, json!({"reason": format!("{e:#}")})),
    };
    if let Err(e) = &result {
        tracing::error!(error = ?e, "the private PHP-FPM did not start");
    }
    let _ = audit::record_alone(
        pool,
        &Event::new("system", "php_start", outcome).detail(detail),
    )
    .await;
}
