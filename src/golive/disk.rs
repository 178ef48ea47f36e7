//! The file-system half of a switch: the vhost file (written whole, then renamed into place)
//! and the `current` symlink (a fresh uniquely named link renamed over it: never rm + ln).

use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::sites::SitePaths;

/// Prefix of temporary `current` links (removed before each switch and at start-up).
pub const TMP_LINK_PREFIX: &str = ".current-tmp-";
/// Prefix of temporary live-release maps (removed before each switch and at start-up).
pub const TMP_MAP_PREFIX: &str = ".live-map-tmp-";

/// The smallest step between two maps' mtimes. mod_rewrite re-reads a `txt:` map when the
/// mtime it stats differs from the one it cached (APR keeps microseconds); a file's mtime
/// comes from the kernel's coarse clock (a few ms), so two switches within one tick could
/// leave the same mtime and Apache would keep serving the first. Each new map therefore gets
/// an mtime set explicitly, strictly later than the one it replaces.
const MTIME_STEP: std::time::Duration = std::time::Duration::from_millis(1);

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temporary links and maps a crash may have left next to `current`.
pub fn remove_leftover_links(paths: &SitePaths) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(&paths.dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TMP_LINK_PREFIX) || name.starts_with(TMP_MAP_PREFIX) {
            match fs::remove_file(entry.path()) {
                // Gone meanwhile: a map made ahead and dropped unused removes its own.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
            removed += 1;
        }
    }
    Ok(removed)
}

/// Points `current` at `releases/<id>` atomically, and syncs the folder so it survives a crash.
pub fn point_current(paths: &SitePaths, release_id: &str) -> io::Result<()> {
    remove_leftover_links(paths)?;
    let tmp = paths
        .dir
        .join(format!("{TMP_LINK_PREFIX}{}", uuid::Uuid::new_v4()));
    std::os::unix::fs::symlink(format!("releases/{release_id}"), &tmp)?;
    if let Err(e) = fs::rename(&tmp, paths.current()) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&paths.dir)
}

/// Makes `releases/<id>` the release Apache serves (pinned mode): a new map written whole
/// under a temporary name, given an mtime later than the old map's, synced, renamed over
/// `live.map`, and the folder synced. Requests already under way keep the release they
/// started with; the next one reads the new map.
pub fn point_live_map(paths: &SitePaths, site: &str, release_id: &str) -> io::Result<()> {
    remove_leftover_links(paths)?;
    let tmp = prepare_map(paths, site, release_id)?;
    crate::fault_point_blocking!("before_map_rename");
    rename_or_remove(&tmp, &paths.live_map())?;
    sync_dir(&paths.dir)
}

/// A new live map written and synced under a temporary name, not yet in place: a go-live
/// makes it while its checks and its audit record are written, so that the switch itself
/// is two renames (its fsync, ~0.7 ms here, was the largest part of a switch). Dropped
/// unused, it is removed.
#[derive(Debug)]
pub struct NextMap {
    path: Option<std::path::PathBuf>,
    release: String,
}

impl NextMap {
    /// The release the map names.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// Renames the map over `live.map`: from the next request on, Apache serves its release.
    /// Not synced (see [`sync_dir`]).
    pub fn put_in_place(mut self, paths: &SitePaths) -> io::Result<()> {
        let map = self
            .path
            .take()
            .ok_or_else(|| io::Error::other("the new live map was used already"))?;
        rename_or_remove(&map, &paths.live_map())
    }
}

impl Drop for NextMap {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Clears leftovers, then writes the map that will name `release_id` (see [`NextMap`]).
pub fn next_map(paths: &SitePaths, site: &str, release_id: &str) -> io::Result<NextMap> {
    remove_leftover_links(paths)?;
    let path = prepare_map(paths, site, release_id)?;
    Ok(NextMap {
        path: Some(path),
        release: release_id.to_owned(),
    })
}

/// Pinned mode's switch with the map made by [`next_map`] (ahead, while a go-live's checks
/// ran, or just now): `current` and the map renamed into place, in that order (as start-up
/// reconciliation expects), then the folder synced once for both renames (they are in the
/// same folder). The renames are made on the async thread (tens of microseconds of system
/// calls, where the hop to a blocking thread and back took ~0.2 ms before Apache could see
/// the new release); only the fsync goes off it.
pub async fn switch_to_next(paths: &SitePaths, next: NextMap) -> io::Result<()> {
    relink_current(paths, &next.release)?;
    crate::fault_point!("after_switch");
    crate::fault_point!("before_map_rename");
    next.put_in_place(paths)?;
    let dir = paths.dir.clone();
    crate::blocking::spawn(move || sync_dir(&dir))
        .await
        .map_err(io::Error::other)?
}

/// `current` names `releases/<id>`: a new link renamed over it. Not synced (see [`sync_dir`]).
pub fn relink_current(paths: &SitePaths, release_id: &str) -> io::Result<()> {
    let link = paths
        .dir
        .join(format!("{TMP_LINK_PREFIX}{}", uuid::Uuid::new_v4()));
    std::os::unix::fs::symlink(format!("releases/{release_id}"), &link)?;
    rename_or_remove(&link, &paths.current())
}

/// `from` renamed to `to`; on failure `from` is removed.
fn rename_or_remove(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to).inspect_err(|_| {
        let _ = fs::remove_file(from);
    })
}

/// The new map, written and synced under a temporary name; its path.
fn prepare_map(paths: &SitePaths, site: &str, release_id: &str) -> io::Result<std::path::PathBuf> {
    use std::io::Write as _;
    let text = crate::apache::livemap::render(site, release_id).map_err(io::Error::other)?;
    let map = paths.live_map();
    let now = std::time::SystemTime::now();
    let mtime = match fs::metadata(&map).and_then(|m| m.modified()) {
        Ok(old) if old + MTIME_STEP > now => old + MTIME_STEP,
        _ => now,
    };
    let tmp = paths
        .dir
        .join(format!("{TMP_MAP_PREFIX}{}", uuid::Uuid::new_v4()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_modified(mtime)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Removes `live.map` (undoing a site's very first activation, or a refused first config).
pub fn remove_live_map(paths: &SitePaths) -> io::Result<()> {
    match fs::remove_file(paths.live_map()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => sync_dir(&paths.dir),
    }
}

/// Removes `current` (only when undoing a site's very first activation).
pub fn remove_current(paths: &SitePaths) -> io::Result<()> {
    match fs::remove_file(paths.current()) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => sync_dir(&paths.dir),
    }
}

/// The release `current` points at, if it is one of ours.
pub fn current_release(paths: &SitePaths) -> Option<String> {
    let target = fs::read_link(paths.current()).ok()?;
    let id = target.strip_prefix("releases").ok()?.to_str()?.to_owned();
    crate::releases::is_release_id(&id).then_some(id)
}

/// Writes a vhost file whole (temp file, fsync, rename); returns what was there before.
pub fn write_vhost(path: &Path, content: &str) -> io::Result<Option<String>> {
    let old = match fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    replace_file(path, content)?;
    Ok(old)
}

fn replace_file(path: &Path, content: &str) -> io::Result<()> {
    crate::apache::write_config_file(path, content)
}

/// Puts back what `write_vhost` replaced (or removes the file if there was none).
pub fn restore_vhost(path: &Path, old: Option<&str>) -> io::Result<()> {
    match old {
        Some(content) => replace_file(path, content),
        None => match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => sync_dir(path.parent().unwrap_or(Path::new("/"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::golive::disk::*;

    #[test]
    fn current_is_swapped_by_rename_and_leftovers_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let paths = SitePaths::new(dir.path(), "s");
        paths.create(&[]).unwrap();
        for id in ["20260101-000000-aaaa", "20260101-000001-bbbb"] {
            fs::create_dir(paths.release(id)).unwrap();
        }
        // A leftover from a crash: with `ln -sf` semantics it would put the next link inside.
        std::os::unix::fs::symlink(
            "releases/x",
            paths.dir.join(format!("{TMP_LINK_PREFIX}old")),
        )
        .unwrap();
        point_current(&paths, "20260101-000000-aaaa").unwrap();
        assert_eq!(
            current_release(&paths).as_deref(),
            Some("20260101-000000-aaaa")
        );
        point_current(&paths, "20260101-000001-bbbb").unwrap();
        assert_eq!(
            current_release(&paths).as_deref(),
            Some("20260101-000001-bbbb")
        );
        assert!(
            !paths
                .release("20260101-000000-aaaa")
                .join("20260101-000001-bbbb")
                .exists(),
            "no link inside the old release"
        );
        let names: Vec<String> = fs::read_dir(&paths.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(TMP_LINK_PREFIX)),
            "{names:?}"
        );
    }

    #[test]
    fn each_live_map_gets_a_later_mtime_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = SitePaths::new(dir.path(), "s");
        paths.create(&[]).unwrap();
        let ids = ["20260101-000000-aaaa", "20260101-000001-bbbb"];
        let mut last = None;
        // Far faster than the kernel's coarse clock ticks: every mtime must still differ.
        for round in 0..50 {
            let id = ids[round % 2];
            point_live_map(&paths, "s", id).unwrap();
            let text = fs::read_to_string(paths.live_map()).unwrap();
            assert_eq!(crate::apache::livemap::parse(&text).as_deref(), Some(id));
            let mtime = fs::metadata(paths.live_map()).unwrap().modified().unwrap();
            if let Some(before) = last {
                assert!(mtime >= before + MTIME_STEP, "round {round}");
            }
            last = Some(mtime);
        }
        // Ids that are not Cutover's own never reach the file.
        assert!(point_live_map(&paths, "s", "../x").is_err());
        assert!(point_live_map(&paths, "S", ids[0]).is_err());
        let text = fs::read_to_string(paths.live_map()).unwrap();
        assert!(text.contains(ids[1]), "{text}");
        let names: Vec<String> = fs::read_dir(&paths.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(TMP_MAP_PREFIX)),
            "{names:?}"
        );
        remove_live_map(&paths).unwrap();
        remove_live_map(&paths).unwrap();
        assert!(!paths.live_map().exists());
    }

    #[tokio::test]
    async fn a_map_made_ahead_switches_like_one_made_at_once_and_vanishes_unused() {
        let dir = tempfile::tempdir().unwrap();
        let paths = SitePaths::new(dir.path(), "s");
        paths.create(&[]).unwrap();
        let (a, b) = ("20260101-000000-aaaa", "20260101-000001-bbbb");
        let first = next_map(&paths, "s", a).unwrap();
        switch_to_next(&paths, first).await.unwrap();
        let before = fs::metadata(paths.live_map()).unwrap().modified().unwrap();
        let temps = |paths: &SitePaths| {
            fs::read_dir(&paths.dir)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with(TMP_MAP_PREFIX)
                })
                .count()
        };
        // Made ahead, then dropped (a refused go-live): nothing switched, nothing left.
        let unused = next_map(&paths, "s", b).unwrap();
        assert_eq!(temps(&paths), 1);
        drop(unused);
        assert_eq!(temps(&paths), 0);
        assert_eq!(current_release(&paths).as_deref(), Some(a));
        assert_eq!(
            crate::apache::livemap::read(&paths.live_map()).as_deref(),
            Some(a)
        );
        // Used: `current` and the map both name its release, with a later mtime.
        let next = next_map(&paths, "s", b).unwrap();
        assert_eq!(next.release(), b);
        switch_to_next(&paths, next).await.unwrap();
        assert_eq!(current_release(&paths).as_deref(), Some(b));
        assert_eq!(
            crate::apache::livemap::read(&paths.live_map()).as_deref(),
            Some(b)
        );
        let after = fs::metadata(paths.live_map()).unwrap().modified().unwrap();
        assert!(after >= before + MTIME_STEP);
        assert_eq!(temps(&paths), 0);
    }

    #[test]
    fn vhosts_are_replaced_whole_and_restored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.conf");
        assert_eq!(write_vhost(&path, "one").unwrap(), None);
        assert_eq!(write_vhost(&path, "two").unwrap().as_deref(), Some("one"));
        restore_vhost(&path, Some("one")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one");
        restore_vhost(&path, None).unwrap();
        assert!(!path.exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no temp files left"
        );
    }
}
