//! An archive arriving in an upload. Tar archives (plain, gzip, zstd) are checked and
//! extracted while they arrive, with no temporary copy: the disk writes each byte once, as
//! `tar -xzf` does, and unpacking runs beside the receiving on another core. A zip keeps its
//! index at the end, so it is stored whole in a temporary file first and extracted from there.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::web::Bytes;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::archive::{self, Format, SNIFF_BYTES};
use super::ingest::{self, ArchiveSource, Extraction, IngestCtx, Received, Staging};
use super::store::NewRelease;
use super::{new_release_id, Release};
use crate::error::{AppError, AppResult};
use crate::sites::{Site, SitePaths};

/// Chunks in flight between the receiver and the extracting thread: bounds memory.
const QUEUE: usize = 32;

/// The archive's size, hash and names, known once it has arrived in full.
pub struct Arrived {
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// The name the browser gave (display only).
    pub original_name: String,
    /// The uploader's note.
    pub note: String,
}

/// Receives one archive chunk by chunk and turns it into a release.
pub struct Incoming<'a> {
    ctx: &'a IngestCtx<'a>,
    site: &'a Site,
    uploads_dir: PathBuf,
    state: State,
}

enum State {
    /// The first bytes, until the format is known.
    Sniffing(Vec<u8>),
    /// A zip (or something unknown, refused once whole): a temporary file.
    File(tokio::io::BufWriter<tokio::fs::File>, Received),
    /// A tar stream, extracting as it arrives.
    Stream(Stream),
}

struct Stream {
    /// `None` once the extraction ended early (a refused entry): the rest is only drained.
    tx: Option<mpsc::Sender<Piece>>,
    task: Extraction,
    /// The staging folder the extraction writes.
    dest: PathBuf,
    received: Arc<AtomicU64>,
    release_id: String,
}

/// What goes down the queue. The queue closing without `End` means the upload broke off
/// (or the request was dropped), so a cut-off archive is never taken for a whole one.
enum Piece {
    Data(Bytes),
    End,
}

impl<'a> Incoming<'a> {
    /// Ready for the archive of an upload to `site`; a zip is kept in `uploads_dir` meanwhile.
    pub fn new(ctx: &'a IngestCtx<'a>, site: &'a Site, uploads_dir: &Path) -> Self {
        Incoming {
            ctx,
            site,
            uploads_dir: uploads_dir.to_owned(),
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
            State::File(out, _) => out.write_all(&chunk).await.map_err(|e| disk_error(&e))?,
            State::Stream(s) => {
                // Counted before it is queued, so the ratio limit never lags the decompressor.
                s.received.fetch_add(chunk.len() as u64, Ordering::AcqRel);
                if let Some(tx) = &s.tx {
                    if tx.send(Piece::Data(chunk)).await.is_err() {
                        // The archive was refused part-way: read the rest of the body (and
                        // hash it) so the browser gets the answer instead of a broken pipe.
                        s.tx = None;
                    }
                }
            }
        }
        Ok(())
    }

    /// Decides, from the first bytes, between extracting as it arrives and a temporary file.
    async fn choose(&mut self) -> AppResult<()> {
        let State::Sniffing(head) = &mut self.state else {
            return Ok(());
        };
        let head = Bytes::from(std::mem::take(head));
        match archive::detect_bytes(&head) {
            Some(format @ (Format::TarGz | Format::TarZst | Format::Tar)) => {
                self.state = State::Stream(self.start_stream(format).await?);
            }
            _ => {
                let (out, path) = self.temp_file().await?;
                let received = Received {
                    path,
                    sha256: String::new(),
                    bytes: 0,
                    original_name: String::new(),
                    note: String::new(),
                };
                self.state = State::File(out, received);
            }
        }
        self.feed(head).await
    }

    /// Writes the intent and starts the extracting thread, fed through a bounded queue.
    async fn start_stream(&self, format: Format) -> AppResult<Stream> {
        let release_id = new_release_id();
        // The intent: if the process dies while files are being written, start-up marks it
        // interrupted (and removes the partial folder).
        let detail = json!({"format": format.as_str(), "streamed": true});
        ingest::write_intent(self.ctx, self.site, &release_id, detail).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let received = Arc::new(AtomicU64::new(0));
        let src = Box::new(ChunkReader {
            rx,
            current: Bytes::new(),
            ended: false,
        });
        let source = ArchiveSource::Stream(format, src, received.clone());
        let (dest, task) = ingest::spawn_extraction(self.ctx, self.site, &release_id, source);
        Ok(Stream {
            tx: Some(tx),
            task,
            dest,
            received,
            release_id,
        })
    }

    async fn temp_file(&self) -> AppResult<(tokio::io::BufWriter<tokio::fs::File>, PathBuf)> {
        tokio::fs::create_dir_all(&self.uploads_dir)
            .await
            .map_err(|e| internal(&self.uploads_dir, &e))?;
        let path = self
            .uploads_dir
            .join(format!("{}.part", uuid::Uuid::new_v4()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(|e| internal(&path, &e))?;
        Ok((tokio::io::BufWriter::with_capacity(256 * 1024, file), path))
    }

    /// Ends the archive: the result of extracting it, recorded either way.
    pub async fn finish(mut self, arrived: Arrived) -> AppResult<Release> {
        self.choose().await?;
        let ctx = self.ctx;
        match self.state {
            State::Sniffing(_) => unreachable!("choose() leaves the sniffing state"),
            State::File(mut out, mut received) => {
                out.flush().await.map_err(|e| disk_error(&e))?;
                received.sha256 = arrived.sha256;
                received.bytes = arrived.bytes;
                received.original_name = arrived.original_name;
                received.note = arrived.note;
                ingest::ingest(ctx, self.site, received).await
            }
            State::Stream(s) => {
                if let Some(tx) = s.tx {
                    let _ = tx.send(Piece::End).await;
                }
                let record = NewRelease {
                    site_id: self.site.id,
                    release_id: &s.release_id,
                    sha256: &arrived.sha256,
                    archive_bytes: arrived.bytes,
                    uploaded_by: ctx.actor,
                    note: &arrived.note,
                    original_name: &arrived.original_name,
                };
                let paths = SitePaths::new(ctx.sites_root, &self.site.name);
                let stored = async {
                    let extracted = ingest::joined(s.task).await?;
                    let mut staging = Staging(Some(s.dest));
                    ingest::place_and_record(
                        ctx,
                        self.site,
                        &paths,
                        &record,
                        &extracted,
                        &mut staging,
                    )
                    .await
                };
                match stored.await {
                    Ok(release) => Ok(release),
                    Err(e) => Err(ingest::record_failure(ctx, self.site, &record, e).await),
                }
            }
        }
    }

    /// The upload failed before the archive ended (`why`): stops the extraction, removes
    /// what it wrote, records the failure if an intent was written, and returns `why`.
    pub async fn abort(self, why: AppError, original_name: &str) -> AppError {
        let State::Stream(s) = self.state else {
            return why; // a temporary file is removed when `Received` is dropped
        };
        // Closing the queue without `End` stops the extraction, which then removes its folder;
        // a finished one (the break came after the last byte) is removed here.
        drop(s.tx);
        if ingest::joined(s.task).await.is_ok() {
            drop(Staging(Some(s.dest)));
        }
        let record = NewRelease {
            site_id: self.site.id,
            release_id: &s.release_id,
            sha256: "",
            archive_bytes: s.received.load(Ordering::Acquire),
            uploaded_by: self.ctx.actor,
            note: "",
            original_name,
        };
        ingest::record_failure(self.ctx, self.site, &record, why).await
    }
}

/// Reads the queued chunks on the extracting thread.
struct ChunkReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(chunk)) => self.current = chunk,
                Some(Piece::End) => self.ended = true,
                None => return Err(io::Error::other("the upload broke off")),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn internal(path: &Path, e: &io::Error) -> AppError {
    AppError::Internal(anyhow::anyhow!("creating {}: {e}", path.display()))
}

/// A full disk is something staff can act on; anything else is logged.
pub fn disk_error(e: &io::Error) -> AppError {
    if e.raw_os_error() == Some(28) {
        AppError::invalid("disk_full", "The server's disk is full, so the upload could not be stored. Ask an administrator to free some space, then try again.")
    } else {
        AppError::Internal(anyhow::anyhow!("writing the upload: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(pieces: Vec<Piece>) -> ChunkReader {
        let (tx, rx) = mpsc::channel(pieces.len().max(1));
        for p in pieces {
            tx.try_send(p).ok().unwrap();
        }
        ChunkReader {
            rx,
            current: Bytes::new(),
            ended: false,
        }
    }

    #[test]
    fn the_stream_ends_only_at_its_end_mark() {
        let data = |s: &'static str| Piece::Data(Bytes::from_static(s.as_bytes()));
        let mut whole = String::new();
        reader(vec![data("ab"), data(""), data("cd"), Piece::End])
            .read_to_string(&mut whole)
            .unwrap();
        assert_eq!(whole, "abcd");
        // The queue closed without the mark: the upload broke off, which is an error,
        // never a shorter archive (a plain tar cut between entries would look whole).
        let mut part = String::new();
        let err = reader(vec![data("ab")]).read_to_string(&mut part);
        assert!(err.is_err());
    }
}
