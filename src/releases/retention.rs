//! Retention: keep the newest N usable releases; never the live one, the one before it, or a
//! pinned one. Deletions are recorded (and audited) before the folder goes.

use std::path::Path;

use serde_json::json;
use sqlx::SqlitePool;

use super::store::{self, LiveInfo};
use crate::audit::{self, Event, Outcome, Source};
use crate::db;
use crate::error::AppResult;
use crate::sites::{Site, SitePaths};

/// A ready release, as retention sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Row id.
    pub pk: i64,
    /// Release id.
    pub id: String,
    /// Pinned by a deployer.
    pub pinned: bool,
}

/// Which of `ready` (newest first) to delete.
pub fn select(ready: &[Candidate], live: &LiveInfo, keep: usize) -> Vec<Candidate> {
    ready
        .iter()
        .skip(keep)
        .filter(|c| {
            !c.pinned
                && live.live.as_deref() != Some(&c.id)
                && live.previous.as_deref() != Some(&c.id)
        })
        .cloned()
        .collect()
}

/// Removes a release folder: renamed aside first, so it vanishes from `releases/` at once.
pub fn remove_dir(paths: &SitePaths, id: &str) -> std::io::Result<()> {
    let from = paths.release(id);
    if !from.exists() {
        return Ok(());
    }
    let trash = paths
        .releases()
        .join(format!(".trash-{id}-{}", super::new_release_id()));
    std::fs::rename(&from, &trash)?;
    std::fs::remove_dir_all(&trash)
}

/// Applies retention to a site (the caller holds the site's lock). Returns the deleted ids.
#[tracing::instrument(skip_all)]
pub async fn apply(
    pool: &SqlitePool,
    sites_root: &Path,
    site: &Site,
    actor: &str,
    source: &Source,
) -> AppResult<Vec<String>> {
    let rows: Vec<(i64, String, bool)> =
        sqlx::query_as("SELECT id, release_id, pinned FROM releases WHERE site_id = ? AND state = 'ready' ORDER BY id DESC")
            .bind(site.id)
            .fetch_all(pool)
            .await?;
    let ready: Vec<Candidate> = rows
        .into_iter()
        .map(|(pk, id, pinned)| Candidate { pk, id, pinned })
        .collect();
    let live = store::live_info(pool, site.id).await?;
    let doomed = select(&ready, &live, site.settings.keep_releases as usize);
    let paths = SitePaths::new(sites_root, &site.name);
    for c in &doomed {
        let mut tx = db::begin_write(pool).await?;
        store::mark_deleted(&mut tx, c.pk, actor).await?;
        audit::record(
            &mut tx,
            &Event::new(actor, "release_delete", Outcome::Ok)
                .source(source)
                .site(&site.name)
                .release(&c.id)
                .detail(json!({"reason": "retention", "keep": site.settings.keep_releases})),
        )
        .await?;
        tx.commit().await?;
        // A crash here leaves a folder of a deleted release: start-up clean-up removes it.
        crate::fault_point!("during_retention");
        let (p, id) = (paths.clone(), c.id.clone());
        crate::blocking::spawn(move || remove_dir(&p, &id))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| {
                anyhow::Error::new(e).context(format!("removing release folder {}", c.id))
            })?;
    }
    Ok(doomed.into_iter().map(|c| c.id).collect())
}

#[cfg(test)]
mod tests {
    use crate::releases::retention::*;

    fn c(id: &str, pinned: bool) -> Candidate {
        Candidate {
            pk: 0,
            id: id.into(),
            pinned,
        }
    }

    #[test]
    fn keeps_newest_n_and_protects_live_previous_and_pinned() {
        let ready = [
            c("r9", false),
            c("r8", false),
            c("r7", true),
            c("r6", false),
            c("r5", false),
            c("r4", false),
            c("r3", false),
        ];
        let live = LiveInfo {
            live: Some("r4".into()),
            previous: Some("r6".into()),
        };
        let ids: Vec<String> = select(&ready, &live, 2).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["r5", "r3"]);
        assert!(select(&ready, &LiveInfo::default(), 10).is_empty());
    }
}
