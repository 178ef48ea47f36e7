//! Pinning and deleting releases (audited; deletion under the site's lock).

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sqlx::SqlitePool;

use super::{retention, store, Release};
use crate::audit::{self, Event, Outcome, Source};
use crate::db;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::sites::{lock, Site, SitePaths};

/// Pins (kept whatever retention says) or unpins a usable release.
#[tracing::instrument(skip_all)]
pub async fn set_pinned(
    pool: &SqlitePool,
    site: &Site,
    release_id: &str,
    pinned: bool,
    actor: &str,
    source: &Source,
) -> AppResult<()> {
    let release = store::get(pool, site.id, release_id).await?;
    if !release.usable() {
        return Err(AppError::invalid(
            code::NOT_USABLE,
            format!(
                "Release {release_id} is {}: only releases on disk can be pinned.",
                release.state
            ),
        ));
    }
    if release.pinned == pinned {
        return Ok(());
    }
    let mut tx = db::begin_write(pool).await?;
    store::set_pinned(&mut tx, release.pk, pinned).await?;
    let action = if pinned {
        "release_pin"
    } else {
        "release_unpin"
    };
    audit::record(
        &mut tx,
        &Event::new(actor, action, Outcome::Ok)
            .source(source)
            .site(&site.name)
            .release(release_id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a release that is not live: recorded first, then its folder goes.
#[tracing::instrument(skip_all)]
pub async fn delete(
    pool: &SqlitePool,
    sites_root: &Path,
    site: &Site,
    release_id: &str,
    actor: &str,
    source: &Source,
) -> AppResult<()> {
    let paths = SitePaths::new(sites_root, &site.name);
    let _lock = lock::lock_waiting(
        &paths.dir,
        actor,
        "deleting a release",
        Duration::from_secs(10),
    )
    .await?;
    let release = store::get(pool, site.id, release_id).await?;
    if release.state == super::ReleaseState::Live {
        return Err(AppError::invalid(code::RELEASE_LIVE, format!("Release {release_id} is live: put another release live first, then delete this one.")));
    }
    if !release.usable() {
        return Err(AppError::invalid(
            code::NOT_USABLE,
            format!(
                "Release {release_id} is {} and has no files to delete.",
                release.state
            ),
        ));
    }
    let mut tx = db::begin_write(pool).await?;
    store::mark_deleted(&mut tx, release.pk, actor).await?;
    audit::record(
        &mut tx,
        &Event::new(actor, "release_delete", Outcome::Ok)
            .source(source)
            .site(&site.name)
            .release(release_id)
            .detail(json!({"reason": "deleted by hand", "was": release.state})),
    )
    .await?;
    tx.commit().await?;
    retention::remove_dir(&paths, release_id).map_err(|e| {
        AppError::Internal(anyhow::Error::new(e).context("removing release folder {release_id}"))
    })?;
    Ok(())
}

/// A change to one release, from a page or the API.
pub enum Change {
    /// Pin (true) or unpin (false).
    Pin(bool),
    /// Delete its files (the record stays).
    Delete,
}

/// Applies `change` to release `id` of site `site_name` for `(actor, source)`; returns the site.
#[tracing::instrument(skip_all)]
pub async fn change(
    pool: &SqlitePool,
    sites_root: &Path,
    site_name: &str,
    id: &str,
    change: Change,
    (actor, source): (&str, &Source),
) -> AppResult<Site> {
    let site = crate::sites::store::get(pool, site_name).await?;
    match change {
        Change::Pin(pinned) => set_pinned(pool, &site, id, pinned, actor, source).await?,
        Change::Delete => delete(pool, sites_root, &site, id, actor, source).await?,
    }
    Ok(site)
}

/// Releases `from` and `to` of a site and what changed between them (pages and API).
#[tracing::instrument(skip_all)]
pub async fn compare(
    pool: &SqlitePool,
    site_id: i64,
    from: &str,
    to: &str,
) -> AppResult<(Release, Release, store::Comparison)> {
    let (a, b) = (
        store::get(pool, site_id, from).await?,
        store::get(pool, site_id, to).await?,
    );
    let diff = store::compare(
        &store::manifest(pool, a.pk).await?,
        &store::manifest(pool, b.pk).await?,
    );
    Ok((a, b, diff))
}
