//! Start-up reconciliation: compare what is on disk (`current`, the release Apache serves:
//! a pinned site's live map, or the DocumentRoot of a vhost from before the map) with what the
//! database says is live, record drift without switching anything, and clear leftovers
//! (temporary links, partial or deleted release folders, audit intents without an outcome).

use std::path::Path;

use crate::db::Pool;
use serde_json::json;

use super::disk;
use crate::audit::{self, Event, Outcome};
use crate::error::AppResult;
use crate::sites::{store as sites, SitePaths, SwitchMode};

/// The release a pinned site's Apache serves: the one its live map names, or, for a vhost
/// written before pinned sites had a map (it has no RewriteMap), the one its DocumentRoot names.
fn served_release(vhost: &str, paths: &SitePaths) -> Option<String> {
    if vhost
        .lines()
        .any(|l| l.trim_start().starts_with("RewriteMap "))
    {
        crate::apache::livemap::read(&paths.live_map())
    } else {
        vhost_release(vhost)
    }
}

/// The release a vhost names in its DocumentRoot (pinned vhosts before the live map).
fn vhost_release(vhost: &str) -> Option<String> {
    let line = vhost
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("DocumentRoot"))?;
    let path = line
        .trim_start_matches("DocumentRoot")
        .trim()
        .trim_matches('"');
    let id = Path::new(path).file_name()?.to_str()?.to_owned();
    crate::releases::is_release_id(&id).then_some(id)
}

/// Runs once at start-up, before Apache is (re)started.
pub async fn reconcile(
    pool: &Pool,
    sites_root: &Path,
    vhost_path: impl Fn(&str) -> std::path::PathBuf,
) -> AppResult<()> {
    mark_interrupted(pool).await?;
    for site in sites::list(pool).await? {
        let paths = SitePaths::new(sites_root, &site.name);
        if !paths.dir.is_dir() {
            continue;
        }
        clean_leftovers(pool, &paths, site.id).await?;
        // A site on several hosts is served by them, not here: they are checked over SSH
        // once the console runs (see `GoLive::check_hosts`).
        if !crate::hosts::store::list(pool, site.id).await?.is_empty() {
            continue;
        }
        let on_disk = disk::current_release(&paths);
        let vhost = std::fs::read_to_string(vhost_path(&site.name)).ok();
        let in_vhost = vhost.as_deref().and_then(|v| served_release(v, &paths));
        let db = site.active_release.clone();
        let mut problems = Vec::new();
        if on_disk != db {
            problems.push(format!(
                "`current` points at {} but the records say {} is live",
                show(&on_disk),
                show(&db)
            ));
        }
        if site.settings.switch_mode == SwitchMode::Pinned && db.is_some() && in_vhost != db {
            problems.push(format!(
                "the Apache configuration serves {} but the records say {} is live",
                show(&in_vhost),
                show(&db)
            ));
        }
        if db.is_some() && vhost.is_none() {
            problems.push("the site's Apache configuration file is missing".into());
        }
        let drift = (!problems.is_empty()).then(|| {
            format!("At start-up Cutover found that {}. Nothing was switched automatically: put the right release live to fix this.", problems.join("; and "))
        });
        if drift.is_some() {
            audit::record_alone(
                pool,
                &Event::new("system", "drift", Outcome::Failed).site(&site.name).detail(json!({"records": db, "current": on_disk, "vhost": in_vhost, "problems": problems})),
            )
            .await?;
        }
        sites::set_drift(pool, site.id, drift.as_deref()).await?;
    }
    Ok(())
}

fn show(id: &Option<String>) -> String {
    id.clone().unwrap_or_else(|| "nothing".into())
}

/// Removes temporary links, staging/trash folders, and folders of releases not (or no
/// longer) recorded as usable — except whatever `current` points at.
async fn clean_leftovers(pool: &Pool, paths: &SitePaths, site_id: i64) -> AppResult<()> {
    let _ = disk::remove_leftover_links(paths);
    let usable = crate::releases::store::usable_ids(pool, site_id).await?;
    let current = disk::current_release(paths);
    let Ok(entries) = std::fs::read_dir(paths.releases()) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let keep = usable.contains(&name) || current.as_deref() == Some(name.as_str());
        if !keep {
            tracing::info!(folder = %entry.path().display(), "removing a leftover release folder");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Intents ("started") that never got an outcome: the process died. Each gets an
/// `interrupted` row so the log says what happened.
async fn mark_interrupted(pool: &Pool) -> AppResult<()> {
    let open = audit::query::open_intents(pool).await?;
    for (id, actor, action, site, release) in open {
        let mut event = Event::new(actor, &action, Outcome::Interrupted)
            .detail(json!({"intent": id, "reason": "the console stopped before this finished"}));
        if let Some(s) = site {
            event = event.site(s);
        }
        if let Some(r) = release {
            event = event.release(r);
        }
        audit::record_alone(pool, &event).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_release_is_read_from_a_pinned_vhost() {
        let v = "# generated\n<VirtualHost *:80 *:*>\n    DocumentRoot \"/srv/sites/shop/releases/20260101-000000-abcd\"\n";
        assert_eq!(
            super::vhost_release(v).as_deref(),
            Some("20260101-000000-abcd")
        );
        assert_eq!(
            super::vhost_release("DocumentRoot \"/srv/sites/shop/current\""),
            None
        );
    }

    #[test]
    fn a_vhost_with_a_live_map_is_read_through_its_map() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::sites::SitePaths::new(dir.path(), "shop");
        paths.create(&[]).unwrap();
        let vhost = "    DocumentRoot \"/x/shop/current\"\n    RewriteMap cutover \"txt:/x/shop/live.map\"\n";
        assert_eq!(super::served_release(vhost, &paths), None, "no map yet");
        super::disk::point_live_map(&paths, "shop", "20260101-000000-abcd").unwrap();
        assert_eq!(
            super::served_release(vhost, &paths).as_deref(),
            Some("20260101-000000-abcd")
        );
        // A vhost from before the map: its DocumentRoot still tells.
        let old = "    DocumentRoot \"/x/shop/releases/20260101-000000-ffff\"\n";
        assert_eq!(
            super::served_release(old, &paths).as_deref(),
            Some("20260101-000000-ffff")
        );
    }
}
