//! The bounded queue between an upload arriving (async) and its extraction (a blocking
//! thread): chunks go down it, and only an explicit end mark makes the archive whole.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::web::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Chunks in flight between the receiver and the extracting thread: bounds memory.
pub(crate) const QUEUE: usize = 32;

/// How many uploads the console extracts while they arrive, at most: each holds blocking
/// threads until its last byte. Past the cap, a tar is extracted from its temporary file once
/// whole, as a zip is.
#[derive(Clone)]
pub struct StreamCap(Arc<Semaphore>);

impl Default for StreamCap {
    fn default() -> Self {
        StreamCap(Arc::new(Semaphore::new(8)))
    }
}

impl StreamCap {
    /// A place among the streamed extractions, if one is free.
    pub(crate) fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

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

/// What goes down the queue. The queue closing without `End` means the upload broke off
/// (or the request was dropped), so a cut-off archive is never taken for a whole one.
pub(crate) enum Piece {
    /// Bytes of the archive, in order.
    Data(Bytes),
    /// The archive has arrived whole.
    End,
}

/// A queue: the sender for the intake, the reader for the extracting thread.
pub(crate) fn channel() -> (mpsc::Sender<Piece>, ChunkReader) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let reader = ChunkReader {
        rx,
        current: Bytes::new(),
        ended: false,
        read: Arc::default(),
    };
    (tx, reader)
}

/// Reads the queued chunks on the extracting thread.
pub(crate) struct ChunkReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
    /// Archive bytes handed to the decompressor so far.
    read: Arc<AtomicU64>,
}

impl ChunkReader {
    /// The count of archive bytes this reader has handed on: what the compression-ratio
    /// limit is judged against while the archive arrives. Counted where the decompressor
    /// takes them, never from what the client declared, and independent of how far the
    /// network runs ahead.
    pub(crate) fn counter(&self) -> Arc<AtomicU64> {
        self.read.clone()
    }
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
        self.read.fetch_add(n as u64, Ordering::AcqRel);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::releases::queue::*;

    fn reader(pieces: Vec<Piece>) -> ChunkReader {
        let (tx, rx) = mpsc::channel(pieces.len().max(1));
        for p in pieces {
            tx.try_send(p).ok().unwrap();
        }
        ChunkReader {
            rx,
            current: Bytes::new(),
            ended: false,
            read: Arc::default(),
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

    #[test]
    fn the_counter_follows_what_was_read_not_what_was_queued() {
        let data = |n: usize| Piece::Data(Bytes::from(vec![7u8; n]));
        let mut r = reader(vec![data(10), data(20), Piece::End]);
        let counter = r.counter();
        assert_eq!(counter.load(Ordering::Acquire), 0);
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).unwrap();
        // 30 bytes are queued; only the 4 taken count.
        assert_eq!(counter.load(Ordering::Acquire), 4);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(counter.load(Ordering::Acquire), 30);
    }
}
