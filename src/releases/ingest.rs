//! Turning a received archive into a release: check and extract off the async threads into a
//! staging folder inside `releases/`, link shared paths, sync, then — under the site's lock —
//! rename it into place, record it with its manifest, and apply retention.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::SqlitePool;

use super::archive::{self, Limits};
use super::store::{self, NewRelease};
use super::{new_release_id, retention, shared, Release};
use crate::audit::{self, Event, Outcome, Source};
use crate::config::UploadSettings;
use crate::db;
use crate::error::code;
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
    /// Runs the site's `after_unpack` steps.
    pub steps: &'a crate::steps::runner::Runner,
}

/// The archive limits from the configuration.
pub(super) fn limits(u: &UploadSettings) -> Limits {
    Limits {
        max_unpacked_bytes: u.max_unpacked_bytes,
        max_file_bytes: u.max_file_bytes,
        max_entries: u.max_entries,
        max_ratio: u.max_ratio,
        ..Limits::default()
    }
}

/// Removes a staging folder on every path out, unless disarmed.
pub(super) struct Staging(pub(super) Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

impl Staging {
    /// Removes the folder (if still armed) on a blocking thread: a whole release tree must
    /// not stall the async worker that serves other requests.
    #[tracing::instrument(skip_all)]
    pub(super) async fn discard(mut self) {
        if let Some(p) = self.0.take() {
            let _ = crate::blocking::spawn(move || std::fs::remove_dir_all(p)).await;
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
#[tracing::instrument(skip_all)]
pub async fn ingest(ctx: &IngestCtx<'_>, site: &Site, upload: Received) -> AppResult<Release> {
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
        let duplicate = AppError::Conflict {
            code: code::DUPLICATE_RELEASE,
            message: duplicate_message(&same),
        };
        return Err(refuse(ctx, site, &record, duplicate, Closing::BeforeIntent).await);
    }

    // The intent: if the process dies while files are being written, start-up marks it
    // interrupted (and removes the partial folder).
    write_intent(ctx, site, &release_id, json!({"sha256": upload.sha256, "archive_bytes": upload.bytes, "original_name": upload.original_name})).await?;
    let paths = SitePaths::new(ctx.sites_root, &site.name);
    let source = ArchiveSource::File(upload.path.clone(), upload.bytes);
    let mut staging = Staging(None);
    let stored = async {
        let extracted;
        (extracted, staging) = extract_off_thread(ctx, site, &release_id, source).await?;
        place_and_record(ctx, site, &paths, &record, &extracted, &mut staging).await
    };
    let result = stored.await;
    staging.discard().await; // only when something failed
    match result {
        Ok(release) => Ok(release),
        Err(e) => Err(record_failure(ctx, site, &record, e, true).await),
    }
}

/// Writes the `upload` intent row for `release_id`.
#[tracing::instrument(skip_all)]
pub(super) async fn write_intent(
    ctx: &IngestCtx<'_>,
    site: &Site,
    release_id: &str,
    detail: serde_json::Value,
) -> AppResult<()> {
    let intent = Event::new(ctx.actor, "upload", Outcome::Started)
        .source(ctx.source)
        .site(&site.name)
        .release(release_id)
        .detail(detail);
    audit::record_alone(ctx.pool, &intent).await?;
    Ok(())
}

/// Every failure after the intent is recorded, so nothing is left open or mislabelled;
/// returns the error to answer with. `list` also lists it as a failed release in the history
/// (not for a duplicate, which stored nothing new).
#[tracing::instrument(skip_all)]
pub(super) async fn record_failure(
    ctx: &IngestCtx<'_>,
    site: &Site,
    record: &NewRelease<'_>,
    e: AppError,
    list: bool,
) -> AppError {
    let closing = match list && e.code() != code::DUPLICATE_RELEASE {
        true => Closing::IntentAndList,
        false => Closing::Intent,
    };
    refuse(ctx, site, record, e, closing).await
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

/// Where the archive's bytes come from.
pub(super) enum ArchiveSource {
    /// A whole archive in a file, and its size.
    File(PathBuf, u64),
    /// A tar stream still arriving, and the count of its bytes read from it so far.
    Stream(archive::Format, Box<dyn Read + Send>, Arc<AtomicU64>),
}

/// Checks and extracts into a staging folder inside `releases/`, links the shared paths and
/// syncs, on a blocking thread. The staging folder is removed if anything fails, here or
/// later (until the returned guard is disarmed).
#[tracing::instrument(skip_all)]
pub(super) async fn extract_off_thread(
    ctx: &IngestCtx<'_>,
    site: &Site,
    release_id: &str,
    source: ArchiveSource,
) -> AppResult<(archive::Extracted, Staging)> {
    let (dest, task) = spawn_extraction(ctx, site, release_id, source);
    let extracted = joined(task).await?;
    Ok((extracted, Staging(Some(dest))))
}

/// The extraction task's result.
pub(super) type Extraction = tokio::task::JoinHandle<AppResult<archive::Extracted>>;

/// Waits for an extraction task.
#[tracing::instrument(skip_all)]
pub(super) async fn joined(task: Extraction) -> AppResult<archive::Extracted> {
    task.await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("extraction task failed")))?
}

/// An archive refusal as an answer; a storage failure is the server's fault, not the
/// archive's: a 500 with the cause logged.
pub(super) fn archive_error(e: archive::ArchiveError) -> AppError {
    use archive::Refusal;
    match e.refusal {
        Refusal::IoError | Refusal::DestinationExists => {
            AppError::Internal(anyhow::Error::new(e.clone()).context("extracting an upload"))
        }
        Refusal::DiskFull => AppError::Storage {
            code: e.code,
            message: e.message,
        },
        _ => AppError::Invalid {
            code: e.code,
            message: e.message,
        },
    }
}

/// Starts extracting on a blocking thread into the staging folder it returns. The thread
/// owns everything it uses and removes the folder itself if it fails, so it is safe even if
/// nobody waits for it.
pub(super) fn spawn_extraction(
    ctx: &IngestCtx<'_>,
    site: &Site,
    release_id: &str,
    source: ArchiveSource,
) -> (PathBuf, Extraction) {
    let paths = SitePaths::new(ctx.sites_root, &site.name);
    let releases_dir = paths.releases();
    let dest = releases_dir.join(format!(".tmp-{release_id}"));
    let (shared_paths, limits) = (site.settings.shared_paths.clone(), limits(ctx.limits));
    let shared_root = paths.shared();
    let staging = dest.clone();
    let task = crate::blocking::spawn(move || -> AppResult<archive::Extracted> {
        let extracted = match source {
            ArchiveSource::File(path, bytes) => archive::extract(&path, bytes, &dest, &limits),
            ArchiveSource::Stream(format, src, received) => {
                archive::extract_stream(format, src, &dest, &limits, &received)
            }
        };
        // On failure `extract` has removed what it wrote.
        let mut extracted = extracted.map_err(archive_error)?;
        let mut guard = Staging(Some(dest.clone()));
        crate::fault_point_blocking!("after_extract");
        extracted.seeded_shared = shared::link_all(&dest, &shared_root, &shared_paths)?;
        sync_tree_and_dir(&dest, &releases_dir).map_err(|e| {
            AppError::Internal(anyhow::Error::new(e).context("syncing the release to disk"))
        })?;
        guard.0 = None;
        Ok(extracted)
    });
    (staging, task)
}

/// Under the site's lock: refuses a duplicate, renames the staging folder into place and
/// records the release with its manifest, then applies retention.
#[tracing::instrument(skip_all)]
pub(super) async fn place_and_record(
    ctx: &IngestCtx<'_>,
    site: &Site,
    paths: &SitePaths,
    record: &NewRelease<'_>,
    extracted: &archive::Extracted,
    staging: &mut Staging,
) -> AppResult<Release> {
    let release_id = record.release_id;
    let who = (ctx.steps, ctx.actor, ctx.source);
    let built = super::build::build(who, site, paths, release_id, &mut staging.0).await?;
    let _lock = lock::lock_waiting(
        &paths.dir,
        ctx.actor,
        "adding a release",
        Duration::from_secs(60),
    )
    .await?;
    // Checked again under the lock: two identical uploads at once must not both be kept.
    if let Some(same) = store::find_same_archive(ctx.pool, site.id, record.sha256).await? {
        return Err(AppError::Conflict {
            code: code::DUPLICATE_RELEASE,
            message: duplicate_message(&same),
        });
    }
    let final_dir = paths.release(release_id);
    let staging_dir = staging.0.clone().unwrap_or_default();
    let (from, to, releases) = (staging_dir, final_dir.clone(), paths.releases());
    // Rename (unless the build already moved it) and fsync off the async threads.
    let moved = crate::blocking::spawn(move || -> std::io::Result<()> {
        if from != to {
            std::fs::rename(&from, &to)?;
        }
        std::fs::File::open(&releases)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    if moved.is_ok() || final_dir.exists() {
        staging.0 = Some(final_dir.clone()); // still removed if recording fails
    }
    moved.map_err(|e| {
        AppError::Internal(anyhow::Error::new(e).context("moving the release into place"))
    })?;

    crate::fault_point!("after_rename");
    let mut tx = db::begin_write(ctx.pool).await?;
    let (files, unpacked) = match &built {
        Some(b) => (&b.files, b.bytes),
        None => (&extracted.files, extracted.unpacked_bytes),
    };
    store::insert_ready(&mut tx, record, extracted.format.as_str(), unpacked, files).await?;
    audit::record(
        &mut tx,
        &Event::new(ctx.actor, "upload", Outcome::Ok).source(ctx.source).site(&site.name).release(release_id).detail(json!({
            "sha256": record.sha256, "archive_bytes": record.archive_bytes, "format": extracted.format.as_str(),
            "files": files.len(), "unpacked_bytes": unpacked, "built": built.is_some(),
            "unwrapped": extracted.unwrapped, "original_name": record.original_name, "seeded_shared": extracted.seeded_shared,
        })),
    )
    .await?;
    tx.commit().await?;
    staging.0 = None;
    // Clean-up must not turn a stored release into an error: it runs again next time.
    if let Err(e) = retention::apply(ctx.pool, ctx.sites_root, site, ctx.actor, ctx.source).await {
        tracing::error!(error = ?e, site = %site.name, "retention after an upload failed");
    }
    store::get(ctx.pool, site.id, release_id).await
}

/// How a refused upload is recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Refused before any intent (a known duplicate): no release id was used.
    BeforeIntent,
    /// Closes the intent in the audit log only.
    Intent,
    /// Closes the intent and lists a failed release in the history.
    IntentAndList,
}

/// Records a refused upload (audit event, and a failed release when listed); answers with
/// the refusal itself, or an internal error when it could not be recorded.
async fn refuse(
    ctx: &IngestCtx<'_>,
    site: &Site,
    record: &NewRelease<'_>,
    e: AppError,
    closing: Closing,
) -> AppError {
    let (code, message) = match &e {
        AppError::Internal(_) => (
            code::INTERNAL,
            "The server could not store the release; the problem was logged.".to_owned(),
        ),
        other => (other.code(), other.to_string()),
    };
    let message = message.as_str();
    let result = async {
        let mut tx = db::begin_write(ctx.pool).await?;
        let mut event = Event::new(ctx.actor, "upload", Outcome::Failed)
            .source(ctx.source)
            .site(&site.name)
            .detail(json!({
                "code": code, "reason": message, "sha256": record.sha256,
                "archive_bytes": record.archive_bytes, "original_name": record.original_name,
            }));
        if closing == Closing::IntentAndList {
            store::insert_failed(&mut tx, record, code.as_str(), message).await?;
        }
        if closing != Closing::BeforeIntent {
            event = event.release(record.release_id);
        }
        audit::record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    match result {
        Err(failed) => AppError::Internal(failed),
        Ok(()) => e,
    }
}
