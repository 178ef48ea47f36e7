//! The site's `after_unpack` steps (its build): run once in the new release's own folder,
//! before the release is recorded as ready. A failed step makes the upload a failed release:
//! its folder is removed (by the caller's staging guard) and its output kept in the step's
//! record and the audit log.
//!
//! The build does not hold the site's lock: a five-minute `composer install` must not stop an
//! emergency rollback. The release id is new and unique, so nothing else uses its folder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::archive::ManifestEntry;
use crate::audit::Source;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::sites::{Site, SitePaths};
use crate::steps::run::{tail, Output};
use crate::steps::runner::{Job, Runner};
use crate::steps::Stage;

/// What the build changed: the release's files as they are after it.
pub(super) struct Built {
    /// Regular files, sorted by path.
    pub(super) files: Vec<ManifestEntry>,
    /// Their total size.
    pub(super) bytes: u64,
}

/// Runs the site's build steps in `releases/<id>` (moved there from the staging folder,
/// which `staging` names, and then names the release folder: the caller removes it on
/// failure). `None` when the site has none.
pub(super) async fn build(
    (runner, actor, source): (&Runner, &str, &Source),
    site: &Site,
    paths: &SitePaths,
    release_id: &str,
    staging: &mut Option<PathBuf>,
) -> AppResult<Option<Built>> {
    let commands = &site.settings.config.steps.after_unpack;
    if commands.is_empty() {
        return Ok(None);
    }
    let final_dir = paths.release(release_id);
    let from = staging.clone().unwrap_or_default();
    let (to, lender) = (final_dir.clone(), runner.clone());
    let moved = crate::blocking::spawn(move || -> std::io::Result<()> {
        std::fs::rename(&from, &to)?;
        lender.lend_tree(&to)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    if final_dir.exists() {
        *staging = Some(final_dir.clone());
    }
    moved.map_err(|e| internal(e, "preparing the release folder for its build"))?;
    let job = Job {
        site,
        paths,
        release: release_id,
        previous: site.active_release.as_deref(),
        stage: Stage::AfterUnpack,
        actor,
        source,
    };
    let mut failure = None;
    for command in commands {
        let output = Arc::new(Mutex::new(Output::new(runner.settings.max_output_bytes)));
        let result = runner.run(&job, command, output).await;
        if result.outcome != crate::steps::run::Outcome::Ok {
            failure = Some((command.clone(), result));
            break;
        }
    }
    let (dir, owner) = (final_dir.clone(), runner.clone());
    let rescanned = crate::blocking::spawn(move || -> std::io::Result<Built> {
        owner.take_back_tree(&dir)?;
        manifest_of(&dir)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    if let Some((command, result)) = failure {
        let line = crate::steps::show_line(&command);
        let end = tail(&result.output, 600);
        let output = match end.trim().is_empty() {
            true => "It printed nothing.".to_owned(),
            false => format!("Its output ends with:\n{end}"),
        };
        return Err(AppError::invalid(
            code::STEP_FAILED,
            format!(
                "The build step `{}` failed ({}), so this upload was not kept; the live site is as it was. Fix the build or the step, then upload again. {output}",
                crate::vocab::clip(&line),
                result.summary
            ),
        ));
    }
    let built = rescanned.map_err(|e| internal(e, "reading the release after its build"))?;
    Ok(Some(built))
}

fn internal(e: std::io::Error, what: &str) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context(what.to_owned()))
}

/// Every regular file under `dir` with its size and SHA-256 (links are not followed: shared
/// folders are links, and a build's own links are served only if the site's Options say so).
fn manifest_of(dir: &Path) -> std::io::Result<Built> {
    let mut files = Vec::new();
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let mut hash = Sha256::new();
                let size = std::io::copy(&mut std::fs::File::open(&path)?, &mut hash)?;
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                files.push(ManifestEntry {
                    path: rel.to_string_lossy().into_owned(),
                    size,
                    sha256: hex::encode(hash.finalize()),
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let bytes = files.iter().map(|f| f.size).sum();
    Ok(Built { files, bytes })
}
