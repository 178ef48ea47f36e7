//! An archive arriving in an upload. Its bytes go to a temporary file in the data folder as
//! they arrive; a tar archive (plain, gzip, zstd) is also checked and extracted at the same
//! time, on a blocking thread fed through a bounded queue, so unpacking overlaps the transfer
//! as it does in `curl … | tar -xz`. A zip keeps its index at its end, so it is extracted from
//! the temporary file once it is whole.
//!
//! Once a streamed extraction has started, its end — recording the release or the failure,
//! removing the staging folder — runs in a task of its own, so that a request dropped half-way
//! (the client went away) still leaves true records and nothing behind.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::web::Bytes;
use serde_json::json;
use sqlx::SqlitePool;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::archive::{self, Format, SNIFF_BYTES};
use super::ingest::{self, ArchiveSource, Extraction, IngestCtx, Received, Staging};
use super::queue::{self, Piece};
pub use super::queue::{Arrived, StreamCap};
use super::store::NewRelease;
use super::{new_release_id, Release};
use crate::audit::Source;
use crate::config::UploadSettings;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::sites::{Site, SitePaths};

/// What the intake needs, owned, so a task can finish the work without the request.
struct Owned {
    pool: SqlitePool,
    sites_root: PathBuf,
    limits: UploadSettings,
    actor: String,
    source: Source,
    site: Site,
    steps: crate::steps::runner::Runner,
}

impl Owned {
    fn ctx(&self) -> IngestCtx<'_> {
        IngestCtx {
            pool: &self.pool,
            sites_root: &self.sites_root,
            limits: &self.limits,
            actor: &self.actor,
            source: &self.source,
            steps: &self.steps,
        }
    }
}

/// Receives one archive chunk by chunk and turns it into a release.
pub struct Incoming {
    owned: Arc<Owned>,
    uploads_dir: PathBuf,
    cap: StreamCap,
    state: State,
}

enum State {
    /// The first bytes, until the format is known.
    Sniffing(Vec<u8>),
    /// A zip (or something unknown, refused once whole): only the temporary file.
    File(Copy),
    /// A tar stream: the temporary file, and extracting as it arrives.
    Stream(Stream, Copy),
    /// Finished or handed over.
    Done,
}

/// The temporary file (removed when the `Received` is dropped).
struct Copy(tokio::io::BufWriter<tokio::fs::File>, Received);

struct Stream {
    /// Held until the upload is recorded or given up.
    _permit: OwnedSemaphorePermit,
    /// `None` once the extraction ended early (a refused entry): the rest is only drained.
    tx: Option<mpsc::Sender<Piece>>,
    task: Extraction,
    /// The staging folder the extraction writes.
    dest: PathBuf,
    arrived: u64,
    release_id: String,
}

impl Incoming {
    /// Ready for the archive of an upload to `site`; the temporary file goes in `uploads_dir`.
    pub fn new(ctx: &IngestCtx<'_>, site: &Site, uploads_dir: &Path, cap: &StreamCap) -> Self {
        let owned = Owned {
            pool: ctx.pool.clone(),
            sites_root: ctx.sites_root.to_owned(),
            limits: ctx.limits.clone(),
            actor: ctx.actor.to_owned(),
            source: ctx.source.clone(),
            site: site.clone(),
            steps: ctx.steps.clone(),
        };
        Incoming {
            owned: Arc::new(owned),
            uploads_dir: uploads_dir.to_owned(),
            cap: cap.clone(),
            state: State::Sniffing(Vec::with_capacity(SNIFF_BYTES)),
        }
    }

    /// Takes the next chunk of the archive.
    pub async fn push(&mut self, chunk: Bytes) -> AppResult<()> {
        if let State::Sniffing(head) = &mut self.state {
            head.extend_from_slice(&chunk);
            if head.len() >= SNIFF_BYTES {
                self.choose().await?;
            }
            return Ok(());
        }
        self.feed(chunk).await
    }

    /// Passes a chunk on, once the format is known.
    async fn feed(&mut self, chunk: Bytes) -> AppResult<()> {
        match &mut self.state {
            State::Sniffing(head) => head.extend_from_slice(&chunk),
            State::File(copy) => copy.write(&chunk).await?,
            State::Stream(s, copy) => {
                copy.write(&chunk).await?;
                s.arrived += chunk.len() as u64;
                if let Some(tx) = &s.tx {
                    if tx.send(Piece::Data(chunk)).await.is_err() {
                        // The archive was refused part-way: read the rest of the body (and
                        // hash it) so the browser gets the answer instead of a broken pipe.
                        s.tx = None;
                    }
                }
            }
            State::Done => {}
        }
        Ok(())
    }

    /// Decides, from the first bytes, between extracting as it arrives and only storing.
    async fn choose(&mut self) -> AppResult<()> {
        let State::Sniffing(head) = &mut self.state else {
            return Ok(());
        };
        let head = Bytes::from(std::mem::take(head));
        let copy = self.temp_file().await?;
        let streamable = match archive::detect_bytes(&head) {
            Some(format @ (Format::TarGz | Format::TarZst | Format::Tar)) => Some(format),
            _ => None,
        };
        let permit = streamable.and_then(|_| self.cap.try_acquire());
        self.state = match (streamable, permit) {
            (Some(format), Some(permit)) => {
                State::Stream(self.start_stream(format, permit).await?, copy)
            }
            _ => State::File(copy),
        };
        self.feed(head).await
    }

    /// Writes the intent and starts the extracting thread, fed through a bounded queue.
    async fn start_stream(
        &self,
        format: Format,
        permit: OwnedSemaphorePermit,
    ) -> AppResult<Stream> {
        let release_id = new_release_id();
        let (ctx, site) = (self.owned.ctx(), &self.owned.site);
        // The intent: if the process dies while files are being written, start-up marks it
        // interrupted (and removes the partial folder).
        let detail = json!({"format": format.as_str(), "streamed": true});
        ingest::write_intent(&ctx, site, &release_id, detail).await?;
        let (tx, src) = queue::channel();
        // The ratio limit is judged against the archive bytes the decompressor has really
        // taken (with the floor of `RATIO_FLOOR` unpacked bytes), never a declared length.
        let read = src.counter();
        let source = ArchiveSource::Stream(format, Box::new(src), read);
        let (dest, task) = ingest::spawn_extraction(&ctx, site, &release_id, source);
        Ok(Stream {
            _permit: permit,
            tx: Some(tx),
            task,
            dest,
            arrived: 0,
            release_id,
        })
    }

    async fn temp_file(&self) -> AppResult<Copy> {
        let dir = &self.uploads_dir;
        let made = tokio::fs::create_dir_all(dir).await;
        made.map_err(|e| internal(dir, e))?;
        let path = dir.join(format!("{}.part", uuid::Uuid::new_v4()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(|e| internal(&path, e))?;
        let received = Received {
            path,
            sha256: String::new(),
            bytes: 0,
            original_name: String::new(),
            note: String::new(),
        };
        Ok(Copy(
            tokio::io::BufWriter::with_capacity(256 * 1024, file),
            received,
        ))
    }

    /// Ends the archive: the result of extracting it, recorded either way.
    pub async fn finish(mut self, arrived: Arrived) -> AppResult<Release> {
        if let Err(e) = self.choose().await {
            return Err(self.abort(e, &arrived.original_name).await);
        }
        self.end_of_archive().await;
        // The rest runs in a task of its own: the request being dropped now must not cut
        // the recording (or the clean-up) short.
        let task = match std::mem::replace(&mut self.state, State::Done) {
            State::File(copy) => tokio::spawn(ingest_file(self.owned.clone(), copy, arrived)),
            State::Stream(s, copy) => tokio::spawn(complete(self.owned.clone(), s, copy, arrived)),
            State::Sniffing(_) | State::Done => {
                let why = anyhow::anyhow!("an upload was finished twice");
                return Err(AppError::Internal(why));
            }
        };
        task.await.map_err(|e| AppError::Internal(e.into()))?
    }

    /// The archive field has ended: the extraction may finish now, whatever the request
    /// still sends.
    pub async fn end_of_archive(&mut self) {
        if let State::Stream(s, _) = &mut self.state {
            if let Some(tx) = s.tx.take() {
                let _ = tx.send(Piece::End).await;
            }
        }
    }

    /// The upload failed before the archive ended (`why`): stops the extraction, removes
    /// what it wrote, records the failure if an intent was written, and returns `why`.
    pub async fn abort(mut self, why: AppError, original_name: &str) -> AppError {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Stream(s, copy) => {
                let owned = self.owned.clone();
                let task = tokio::spawn(give_up(owned, s, copy, why, original_name.to_owned()));
                task.await.unwrap_or_else(|e| AppError::Internal(e.into()))
            }
            _ => why, // a temporary file is removed when its `Received` is dropped
        }
    }
}

impl Drop for Incoming {
    /// The request went away mid-upload: finish the failure in the background.
    fn drop(&mut self) {
        let State::Stream(s, copy) = std::mem::replace(&mut self.state, State::Done) else {
            return;
        };
        let why = AppError::invalid(
            code::BAD_UPLOAD,
            "The upload broke off before it finished (the connection was closed).",
        );
        let owned = self.owned.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(give_up(owned, s, copy, why, String::new()));
        }
        // Without a runtime (shutting down), start-up marks the intent interrupted and
        // removes the staging folder.
    }
}

impl Copy {
    async fn write(&mut self, chunk: &[u8]) -> AppResult<()> {
        self.0.write_all(chunk).await.map_err(disk_error)
    }
}

/// A zip (or an unknown format) that has arrived whole: the usual intake, from the file.
async fn ingest_file(owned: Arc<Owned>, mut copy: Copy, arrived: Arrived) -> AppResult<Release> {
    copy.0.flush().await.map_err(disk_error)?;
    let mut received = copy.1;
    received.sha256 = arrived.sha256;
    received.bytes = arrived.bytes;
    received.original_name = arrived.original_name;
    received.note = arrived.note;
    ingest::ingest(&owned.ctx(), &owned.site, received).await
}

/// The whole archive has arrived: waits for the extraction, then records the release (or
/// the failure, closing the intent).
async fn complete(
    owned: Arc<Owned>,
    s: Stream,
    copy: Copy,
    arrived: Arrived,
) -> AppResult<Release> {
    let (ctx, site) = (owned.ctx(), &owned.site);
    let record = NewRelease {
        site_id: site.id,
        release_id: &s.release_id,
        sha256: &arrived.sha256,
        archive_bytes: arrived.bytes,
        uploaded_by: ctx.actor,
        note: &arrived.note,
        original_name: &arrived.original_name,
    };
    let mut staging = Staging(None);
    let stored = async {
        // A tar needs nothing more from its temporary copy: removing it before the extraction
        // ends keeps the final sync from writing it out.
        drop(copy);
        if let Some(tx) = s.tx {
            let _ = tx.send(Piece::End).await;
        }
        let extracted = ingest::joined(s.task).await?;
        staging = Staging(Some(s.dest));
        // Judged again on the whole archive: while it arrived, on the bytes read so far.
        archive::check_ratio(
            extracted.unpacked_bytes,
            arrived.bytes,
            &ingest::limits(ctx.limits),
        )
        .map_err(ingest::archive_error)?;
        let paths = SitePaths::new(ctx.sites_root, &site.name);
        ingest::place_and_record(&ctx, site, &paths, &record, &extracted, &mut staging).await
    };
    let result = stored.await;
    staging.discard().await; // only when something failed
    match result {
        Ok(release) => Ok(release),
        Err(e) => Err(ingest::record_failure(&ctx, site, &record, e, true).await),
    }
}

/// The archive will not arrive whole: stops the extraction (closing the queue without `End`
/// makes it fail and remove its folder), then closes the intent with `why`.
async fn give_up(
    owned: Arc<Owned>,
    s: Stream,
    copy: Copy,
    why: AppError,
    original_name: String,
) -> AppError {
    drop(copy);
    drop(s.tx);
    let _ = ingest::joined(s.task).await;
    let (ctx, site) = (owned.ctx(), &owned.site);
    let record = NewRelease {
        site_id: site.id,
        release_id: &s.release_id,
        sha256: "",
        archive_bytes: s.arrived,
        uploaded_by: ctx.actor,
        note: "",
        original_name: &original_name,
    };
    // Not listed as a failed release (a zip cut off the same way never reached the intake);
    // the audit log has it.
    ingest::record_failure(&ctx, site, &record, why, false).await
}

fn internal(path: &Path, e: io::Error) -> AppError {
    AppError::Internal(anyhow::Error::new(e).context(format!("creating {}", path.display())))
}

/// A full disk is something staff can act on; anything else is logged.
fn disk_error(e: io::Error) -> AppError {
    if e.raw_os_error() == Some(28) {
        AppError::Storage {
            code: code::DISK_FULL,
            message: "The server's disk is full, so the upload could not be stored. Ask an administrator to free some space, then try again.".into(),
        }
    } else {
        AppError::Internal(anyhow::Error::new(e).context("writing the upload"))
    }
}
