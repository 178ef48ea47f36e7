//! Shared paths: each release gets a relative symlink `<path>` → `shared/<path>` of its site.

use std::io::ErrorKind;
use std::path::Path;

use crate::error::code;
use crate::error::AppError;

fn conflict(p: &str) -> AppError {
    AppError::invalid(
        code::SHARED_PATH_CONFLICT,
        format!(
            "The archive has content at {p}, which this site shares between releases (its files live \
             outside the releases and are kept from one release to the next), and the shared {p} \
             already has content. Remove {p} from the archive and upload again, so nothing in it \
             is silently thrown away or put over what is there."
        ),
    )
}

/// The link text for shared path `p` inside `releases/<id>`: up to the site folder, then down.
pub fn link_target(p: &str) -> String {
    let depth = p.split('/').count();
    format!("{}shared/{p}", "../".repeat(depth + 1))
}

/// Links every shared path into `release_dir` (a staging folder directly under `releases/`).
/// An empty folder at a shared path is replaced. A folder with content seeds the site's shared
/// folder when that is still empty (the first release of a site brings its data folder; the
/// paths seeded are returned, for the audit log); otherwise it refuses the release, so nothing
/// in it is silently thrown away or put over what visitors wrote.
pub fn link_all(
    release_dir: &Path,
    shared_root: &Path,
    shared_paths: &[String],
) -> Result<Vec<String>, AppError> {
    use std::os::unix::fs::DirBuilderExt;
    let mut seeded = Vec::new();
    for p in shared_paths {
        let at = release_dir.join(p);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {
                let empty = std::fs::read_dir(&at).map_err(internal)?.next().is_none();
                if empty {
                    std::fs::remove_dir(&at).map_err(internal)?;
                } else {
                    let target = shared_root.join(p);
                    let unused =
                        std::fs::read_dir(&target).map_or(true, |mut d| d.next().is_none());
                    if !unused {
                        return Err(conflict(p));
                    }
                    let _ = std::fs::remove_dir(&target);
                    std::fs::rename(&at, &target).map_err(internal)?;
                    seeded.push(p.clone());
                }
            }
            Ok(_) => return Err(conflict(p)),
            // A parent that is a file: something in the archive sits where the link must go.
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Err(conflict(p)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // A parent that is a file (e.g. "media" for "media/cache") is a conflict too.
                let mut parent = at.parent();
                while let Some(dir) =
                    parent.filter(|d| d.starts_with(release_dir) && *d != release_dir)
                {
                    if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
                        return Err(conflict(p));
                    }
                    parent = dir.parent();
                }
                if let Some(parent) = at.parent() {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o755)
                        .create(parent)
                        .map_err(internal)?;
                }
            }
            Err(e) => return Err(internal(e)),
        }
        std::os::unix::fs::symlink(link_target(p), &at).map_err(internal)?;
    }
    Ok(seeded)
}

fn internal(e: std::io::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context("linking shared paths"))
}

#[cfg(test)]
mod tests {
    use crate::releases::shared::*;

    #[test]
    fn links_resolve_to_the_sites_shared_folder() {
        let site = tempfile::tempdir().unwrap();
        let release = site.path().join("releases/r1");
        std::fs::create_dir_all(release.join("media")).unwrap();
        std::fs::create_dir_all(release.join("uploads")).unwrap(); // empty: replaced
        std::fs::create_dir_all(site.path().join("shared/uploads")).unwrap();
        std::fs::create_dir_all(site.path().join("shared/media/cache")).unwrap();
        std::fs::write(site.path().join("shared/uploads/a.txt"), "kept").unwrap();
        link_all(
            &release,
            &site.path().join("shared"),
            &["uploads".into(), "media/cache".into()],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(release.join("uploads/a.txt")).unwrap(),
            "kept"
        );
        assert_eq!(
            std::fs::read_link(release.join("media/cache"))
                .unwrap()
                .to_str()
                .unwrap(),
            "../../../shared/media/cache"
        );
        assert!(release.join("media/cache").is_dir());
    }

    #[test]
    fn content_at_a_shared_path_seeds_an_empty_shared_folder_and_is_refused_over_content() {
        let site = tempfile::tempdir().unwrap();
        let shared = site.path().join("shared");
        let release = site.path().join("releases/r1");
        std::fs::create_dir_all(release.join("uploads")).unwrap();
        std::fs::write(release.join("uploads/x.jpg"), "x").unwrap();
        std::fs::write(release.join("media"), "a file").unwrap();
        std::fs::create_dir_all(shared.join("uploads")).unwrap();
        // The first release brings the folder's content: it moves to shared/, linked back.
        let seeded = link_all(&release, &shared, &["uploads".into()]).unwrap();
        assert_eq!(seeded, vec!["uploads".to_owned()]);
        assert_eq!(
            std::fs::read_to_string(shared.join("uploads/x.jpg")).unwrap(),
            "x"
        );
        assert!(std::fs::symlink_metadata(release.join("uploads"))
            .unwrap()
            .is_symlink());
        // A later release with content there would overwrite what visitors wrote: refused.
        let next = site.path().join("releases/r2");
        std::fs::create_dir_all(next.join("uploads")).unwrap();
        std::fs::write(next.join("uploads/y.jpg"), "y").unwrap();
        let e = link_all(&next, &shared, &["uploads".into()]).unwrap_err();
        assert_eq!(e.code(), "shared_path_conflict");
        assert_eq!(
            link_all(&release, &shared, &["media/cache".into()])
                .unwrap_err()
                .code(),
            "shared_path_conflict"
        );
    }
}
