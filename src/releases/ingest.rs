//! Turning a received archive into a release: check and extract off the async threads into a
//! staging folder inside `releases/`, link shared paths, sync, then — under the site's lock —
//! rename it into place, record it with its manifest, and apply retention.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use sqlx::SqlitePool;

use super::archive::{self, Limits};
use super::store::{self, NewRelease};
use super::{new_release_id, retention, shared, Release};
use crate::audit::{self, Event, Outcome, Source};
use crate::config::UploadSettings;
use crate::db;
use crate::error::{AppError, AppResult};
use crate::sites::{lock, Site, SitePaths};

/// An archive received in full into a temporary file (removed when this is dropped).
pub struct Received {
    /// The temporary file.
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// The name the browser gave (display only).
    pub original_name: String,
    /// The uploader's note.
    pub note: String,
}

impl Drop for Received {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Who is uploading, and the limits that apply.
pub struct IngestCtx<'a> {
    /// The database.
    pub pool: &'a SqlitePool,
    /// `<sites_root>`.
    pub sites_root: &'a Path,
    /// Limits from the configuration.
    pub limits: &'a UploadSettings,
    /// Audit actor.
    pub actor: &'a str,
    /// Request source.
    pub source: &'a Source,
}

fn limits(u: &UploadSettings) -> Limits {
    Limits {
        max_unpacked_bytes: u.max_unpacked_bytes,
        max_file_bytes: u.max_file_bytes,
        max_entries: u.max_entries,
        max_ratio: u.max_ratio,
        ..Limits::default()
    }
}

/// Removes a staging folder on every path out, unless disarmed.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn sync_tree_and_dir(tree: &Path, dir: &Path) -> std::io::Result<()> {
    // One syncfs for the whole extracted tree instead of an fsync per file.
    let f = std::fs::File::open(tree)?;
    nix::unistd::syncfs(f.as_raw_fd())?;
    std::fs::File::open(dir)?.sync_all()
}

/// Checks, extracts and records an upload. A refused archive is recorded as a failed upload
/// and answered with 422 and the reason; the live site is never touched.
pub async fn ingest(ctx: &IngestCtx<'_>, site: &Site, upload: Received) -> AppResult<Release> {
    let paths = SitePaths::new(ctx.sites_root, &site.name);
    let release_id = new_release_id();
    let record = NewRelease {
        site_id: site.id,
        release_id: &release_id,
        sha256: &upload.sha256,
        archive_bytes: upload.bytes,
        uploaded_by: ctx.actor,
        note: &upload.note,
        original_name: &upload.original_name,
    };
    if let Some(same) = store::find_same_archive(ctx.pool, site.id, &upload.sha256).await? {
        return Err(refuse(
            ctx,
            site,
            &record,
            "duplicate_release",
            &duplicate_message(&same),
            None,
            false,
        )
        .await);
    }

    // The intent: if the process dies while files are being written, start-up marks it
    // interrupted (and removes the partial folder).
    let intent = Event::new(ctx.actor, "upload", Outcome::Started)
        .source(ctx.source)
        .site(&site.name)
        .release(&release_id);
    audit::record_alone(ctx.pool, &intent.detail(json!({"sha256": upload.sha256, "archive_bytes": upload.bytes, "original_name": upload.original_name}))).await?;
    match store_release(ctx, site, &paths, &record, &upload).await {
        Ok(release) => Ok(release),
        // Every failure after the intent is recorded, so nothing is left open or mislabelled.
        Err(e) => {
            let (code, message) = match &e {
                AppError::Internal(_) => (
                    "internal",
                    "The server could not store the release; the problem was logged.".to_owned(),
                ),
                other => (other.code(), other.to_string()),
            };
            match refuse(ctx, site, &record, code, &message, None, true).await {
                AppError::Internal(r) => Err(AppError::Internal(r)),
                _ => Err(e),
            }
        }
    }
}

fn duplicate_message(same: &Release) -> String {
    format!(
        "This archive is identical to release {} (uploaded by {} at {}). Nothing new was stored: \
         put that release live instead.",
        same.id,
        same.uploaded_by.trim_start_matches("user:"),
        same.uploaded_at
    )
}

/// Everything after the intent: extract, link, sync, then under the lock rename and record.
async fn store_release(
    ctx: &IngestCtx<'_>,
    site: &Site,
    paths: &SitePaths,
    record: &NewRelease<'_>,
    upload: &Received,
) -> AppResult<Release> {
    let release_id = record.release_id.to_owned();
    let staging_dir = paths.releases().join(format!(".tmp-{release_id}"));
    let mut staging = Staging(Some(staging_dir.clone()));
    let (archive_path, bytes, shared_paths, limits) = (
        upload.path.clone(),
        upload.bytes,
        site.settings.shared_paths.clone(),
        limits(ctx.limits),
    );
    let dest = staging_dir.clone();
    let releases_dir = paths.releases();
    let outcome = tokio::task::spawn_blocking(move || -> Result<archive::Extracted, AppError> {
        let extracted =
            archive::extract(&archive_path, bytes, &dest, &limits).map_err(|e| match e.code {
                // The server's fault, not the archive's: a 500 with the cause logged.
                "io_error" | "destination_exists" => AppError::Internal(anyhow::anyhow!(
                    "extracting an upload: {} ({:?})",
                    e.message,
                    e.entry
                )),
                _ => AppError::Invalid {
                    code: e.code,
                    message: e.message,
                },
            })?;
        crate::fault::point("after_extract");
        shared::link_all(&dest, &shared_paths)?;
        sync_tree_and_dir(&dest, &releases_dir)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("syncing the release to disk: {e}")))?;
        Ok(extracted)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("extraction task failed: {e}")))?;
    let extracted = match outcome {
        Ok(x) => x,
        Err(e) => return Err(e),
    };

    let _lock = lock::lock_waiting(
        &paths.dir,
        ctx.actor,
        "adding a release",
        Duration::from_secs(60),
    )
    .await?;
    // Checked again under the lock: two identical uploads at once must not both be kept.
    if let Some(same) = store::find_same_archive(ctx.pool, site.id, &upload.sha256).await? {
        return Err(AppError::Conflict {
            code: "duplicate_release",
            message: duplicate_message(&same),
        });
    }
    let final_dir = paths.release(&release_id);
    std::fs::rename(&staging_dir, &final_dir)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("moving the release into place: {e}")))?;
    staging.0 = Some(final_dir.clone()); // still removed if recording fails
    std::fs::File::open(paths.releases())
        .and_then(|d| d.sync_all())
        .map_err(|e| AppError::Internal(e.into()))?;

    crate::fault::point("after_rename");
    let mut tx = db::begin_write(ctx.pool).await?;
    store::insert_ready(
        &mut tx,
        record,
        extracted.format.as_str(),
        extracted.unpacked_bytes,
        &extracted.files,
    )
    .await?;
    audit::record(
        &mut tx,
        &Event::new(ctx.actor, "upload", Outcome::Ok).source(ctx.source).site(&site.name).release(&release_id).detail(json!({
            "sha256": upload.sha256, "archive_bytes": upload.bytes, "format": extracted.format.as_str(),
            "files": extracted.files.len(), "unpacked_bytes": extracted.unpacked_bytes,
            "unwrapped": extracted.unwrapped, "original_name": upload.original_name,
        })),
    )
    .await?;
    tx.commit().await?;
    staging.0 = None;
    // Clean-up must not turn a stored release into an error: it runs again next time.
    if let Err(e) = retention::apply(ctx.pool, ctx.sites_root, site, ctx.actor, ctx.source).await {
        tracing::error!(error = ?e, site = %site.name, "retention after an upload failed");
    }
    store::get(ctx.pool, site.id, &release_id).await
}

/// Records a refused upload (failed release + audit event) and builds the 422 answer.
async fn refuse(
    ctx: &IngestCtx<'_>,
    site: &Site,
    record: &NewRelease<'_>,
    code: &'static str,
    message: &str,
    entry: Option<&str>,
    after_intent: bool,
) -> AppError {
    let result = async {
        let mut tx = db::begin_write(ctx.pool).await?;
        let mut event = Event::new(ctx.actor, "upload", Outcome::Failed)
            .source(ctx.source)
            .site(&site.name)
            .detail(json!({
                "code": code, "reason": message, "entry": entry, "sha256": record.sha256,
                "archive_bytes": record.archive_bytes, "original_name": record.original_name,
            }));
        // Refused before the intent (a known duplicate): no release id was used.
        if after_intent {
            store::insert_failed(&mut tx, record, code, message).await?;
            event = event.release(record.release_id);
        }
        audit::record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    match result {
        Err(e) => AppError::Internal(e),
        Ok(()) if code == "duplicate_release" || code == "busy" => AppError::Conflict {
            code,
            message: message.to_owned(),
        },
        Ok(()) => AppError::Invalid {
            code,
            message: message.to_owned(),
        },
    }
}
