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
             outside the releases and are kept from one release to the next). Remove {p} from the \
             archive and upload again, so nothing in it is silently thrown away."
        ),
    )
}

/// The link text for shared path `p` inside `releases/<id>`: up to the site folder, then down.
pub fn link_target(p: &str) -> String {
    let depth = p.split('/').count();
    format!("{}shared/{p}", "../".repeat(depth + 1))
}

/// Links every shared path into `release_dir` (a staging folder directly under `releases/`).
/// An empty folder at a shared path is replaced; anything else there refuses the release.
pub fn link_all(release_dir: &Path, shared_paths: &[String]) -> Result<(), AppError> {
    use std::os::unix::fs::DirBuilderExt;
    for p in shared_paths {
        let at = release_dir.join(p);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {
                let empty = std::fs::read_dir(&at).map_err(internal)?.next().is_none();
                if !empty {
                    return Err(conflict(p));
                }
                std::fs::remove_dir(&at).map_err(internal)?;
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
    Ok(())
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
        link_all(&release, &["uploads".into(), "media/cache".into()]).unwrap();
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
    fn content_at_a_shared_path_is_refused() {
        let site = tempfile::tempdir().unwrap();
        let release = site.path().join("releases/r1");
        std::fs::create_dir_all(release.join("uploads")).unwrap();
        std::fs::write(release.join("uploads/x.jpg"), "x").unwrap();
        std::fs::write(release.join("media"), "a file").unwrap();
        let e = link_all(&release, &["uploads".into()]).unwrap_err();
        assert_eq!(e.code(), "shared_path_conflict");
        assert_eq!(
            link_all(&release, &["media/cache".into()])
                .unwrap_err()
                .code(),
            "shared_path_conflict"
        );
    }
}
