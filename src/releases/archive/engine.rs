//! The per-entry machinery behind `extract`: name checks, the record of what was created,
//! metered reading, and the tar and zip walks.

use super::rules::{check_path, io_failure, ratio_cap, refuse, set_mode, shown, Refusal};
use super::rules::{ArchiveError as Error, Extracted, Format, Limits, ManifestEntry};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Size of the read and copy buffers.
pub(super) const BUF: usize = 256 * 1024;
/// Most bytes the tar reader may consume between two entries (headers, long names, pax records,
/// skipped data): the tar crate holds long names and pax records in memory without a limit.
const META_BUDGET: u64 = 8 << 20;

/// Shared counters for a decompressed stream; a tripped limit is remembered here because the
/// tar and zip crates turn our read errors into their own.
#[derive(Default)]
pub(super) struct Gauge<'a> {
    total: Cell<u64>,
    max_ratio: u64,
    /// Archive bytes known so far (all of them, unless the archive is still arriving).
    archive_bytes: Option<&'a AtomicU64>,
    meta: Cell<u64>,
    in_data: Cell<bool>,
    pub(super) tripped: Cell<Option<Refusal>>,
}

/// Counts every decompressed byte as it is read and stops a bomb before it is unpacked.
pub(super) struct Meter<'g, 'a, R>(pub(super) R, pub(super) &'g Gauge<'a>);

impl<R: Read> Read for Meter<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, g) = (self.0.read(buf)?, self.1);
        g.total.set(g.total.get() + n as u64);
        // Only bytes the tar crate consumes on its own (between our file copies) are metadata.
        let meta = if g.in_data.get() { 0 } else { n as u64 };
        g.meta.set(g.meta.get() + meta);
        let archive = g.archive_bytes.map_or(0, |a| a.load(Ordering::Acquire));
        let over_ratio = g.total.get() > ratio_cap(g.max_ratio, archive);
        let code = match (over_ratio, g.meta.get() > META_BUDGET) {
            (true, _) => Refusal::CompressionRatio,
            (_, true) => Refusal::CorruptArchive,
            _ => return Ok(n),
        };
        g.tripped.set(Some(code));
        Err(io::Error::other(code.code().as_str()))
    }
}

/// Starts a gauge for one archive, with the ratio limit turned into a byte count.
pub(super) fn gauge<'a>(tree: &Tree<'a>) -> Gauge<'a> {
    Gauge {
        max_ratio: tree.limits.max_ratio,
        archive_bytes: Some(tree.archive_bytes),
        ..Gauge::default()
    }
}

/// What a path already present in the release is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    /// A folder only implied by the paths below it, so far.
    Implied,
    Dir,
}

/// What has been created under dest so far, keyed by lower-cased path to catch case-only duplicates.
pub(super) struct Tree<'a> {
    dest: &'a Path,
    pub(super) limits: &'a Limits,
    archive_bytes: &'a AtomicU64,
    seen: HashMap<String, (String, Kind)>,
    files: Vec<ManifestEntry>,
    dirs: u64,
    entries: u64,
    unpacked: u64,
    top: Option<String>,
    single_top: bool,
    buf: Vec<u8>,
}

impl<'a> Tree<'a> {
    /// Starts an empty record for extraction into `dest`.
    pub(super) fn new(dest: &'a Path, limits: &'a Limits, archive_bytes: &'a AtomicU64) -> Self {
        Tree {
            dest,
            limits,
            archive_bytes,
            seen: HashMap::new(),
            files: Vec::new(),
            dirs: 0,
            entries: 0,
            unpacked: 0,
            top: None,
            single_top: true,
            buf: vec![0; BUF],
        }
    }

    /// Counts one entry (an archive member, or a folder only implied by a path).
    pub(super) fn count(&mut self, entry: &str) -> Result<(), Error> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(refuse(Refusal::TooManyEntries, Some(entry), self.limits));
        }
        Ok(())
    }

    /// Records `path`; returns whether it is new. Errors on duplicates and file/folder clashes.
    fn claim(&mut self, path: &str, kind: Kind) -> Result<bool, Error> {
        use Kind::{Dir, File, Implied};
        let key = path.to_lowercase();
        let code = match (self.seen.get_mut(&key), kind) {
            (None, _) => None,
            // Same path in another case: one would shadow the other on case-insensitive clients.
            (Some((name, _)), _) if name != path => Some(Refusal::DuplicateEntry),
            (Some((_, Implied | Dir)), Implied) => return Ok(false),
            (Some((_, old @ Implied)), Dir) => {
                *old = Dir;
                return Ok(false);
            }
            (Some((_, old)), new) if (*old == File) == (new == File) => {
                Some(Refusal::DuplicateEntry)
            }
            _ => Some(Refusal::PathConflict),
        };
        if let Some(code) = code {
            return Err(refuse(code, Some(&shown(path.as_bytes())), self.limits));
        }
        self.seen.insert(key, (path.to_owned(), kind));
        let top = path.split('/').next().unwrap_or_default();
        self.single_top &= self.top.as_deref().is_none_or(|t| t == top);
        self.single_top &= kind != File || path.contains('/');
        self.top.get_or_insert_with(|| top.to_owned());
        Ok(true)
    }

    /// Creates the folders above `path` that do not exist yet.
    fn parents(&mut self, path: &str) -> Result<(), Error> {
        for (i, _) in path.match_indices('/') {
            if self.claim(&path[..i], Kind::Implied)? {
                self.count(&shown(&path.as_bytes()[..i]))?;
                self.mkdir(&path[..i])?;
            }
        }
        Ok(())
    }

    /// Creates one folder, mode 0755 whatever the umask.
    fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        let full = self.dest.join(path);
        let made = DirBuilder::new().mode(0o755).create(&full);
        made.map_err(|e| io_failure(&e))?;
        self.dirs += 1;
        set_mode(&full, 0o755)
    }

    /// Adds an explicit folder entry.
    pub(super) fn add_dir(&mut self, path: &str) -> Result<(), Error> {
        self.parents(path)?;
        if self.claim(path, Kind::Dir)? {
            self.mkdir(path)?;
        }
        Ok(())
    }

    /// Writes one file from `src`, hashing it on the way, counting real bytes; returns its size.
    pub(super) fn add_file(
        &mut self,
        path: &str,
        src: &mut dyn Read,
        g: &Gauge,
    ) -> Result<u64, Error> {
        self.parents(path)?;
        self.claim(path, Kind::File)?;
        let name = shown(path.as_bytes());
        let l = self.limits;
        // create_new is O_EXCL: never overwrites and never follows a link at the final component.
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o644);
        let mut out = options
            .open(self.dest.join(path))
            .map_err(|e| io_failure(&e))?;
        let chmod = out.set_permissions(Permissions::from_mode(0o644));
        chmod.map_err(|e| io_failure(&e))?;
        let (mut hash, mut size) = (Sha256::new(), 0u64);
        g.in_data.set(true);
        loop {
            let n = match src.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e, g, Some(&name), l)),
            };
            size += n as u64;
            if size > l.max_file_bytes {
                return Err(refuse(Refusal::FileTooLarge, Some(&name), l));
            }
            if self.unpacked + size > l.max_unpacked_bytes {
                return Err(refuse(Refusal::UnpackedTooLarge, Some(&name), l));
            }
            hash.update(&self.buf[..n]);
            out.write_all(&self.buf[..n]).map_err(|e| io_failure(&e))?;
            #[cfg(test)]
            WRITTEN.with(|w| w.set(w.get() + n as u64));
        }
        g.in_data.set(false);
        self.unpacked += size;
        let (path, sha256) = (path.to_owned(), hex::encode(hash.finalize()));
        self.files.push(ManifestEntry { path, size, sha256 });
        if self.files.len() == 2 {
            crate::fault_point_blocking!("extracting");
        }
        Ok(size)
    }

    /// Sorts the manifest and applies the single-folder unwrap to it.
    pub(super) fn finish(mut self, format: Format) -> Extracted {
        let unwrapped = self.top.filter(|_| self.single_top);
        if let Some(top) = &unwrapped {
            for f in &mut self.files {
                f.path.drain(..=top.len());
            }
        }
        self.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Extracted {
            format,
            files: self.files,
            unpacked_bytes: self.unpacked,
            dirs: self.dirs,
            unwrapped,
            seeded_shared: Vec::new(),
        }
    }
}

/// Walks a tar stream in one pass, checking and writing each entry.
pub(super) fn untar<R: Read>(src: R, tree: &mut Tree) -> Result<(), Error> {
    let (g, l) = (gauge(tree), tree.limits);
    let mut ar = tar::Archive::new(Meter(BufReader::with_capacity(BUF, src), &g));
    for item in ar.entries().map_err(|e| read_err(e, &g, None, l))? {
        let mut entry = item.map_err(|e| read_err(e, &g, None, l))?;
        tar_entry(&mut entry, tree, &g)?;
        g.meta.set(0);
    }
    // Reading to the end makes gzip and zstd verify their checksums, so damage is not accepted.
    io::copy(&mut ar.into_inner(), &mut io::sink()).map_err(|e| read_err(e, &g, None, l))?;
    Ok(())
}

/// Like [`untar`], with decompression on a thread of its own a few buffers ahead, as
/// `tar -xzf` runs gzip in a process of its own: on two cores, inflating overlaps with the
/// writing. What it may run ahead is bounded (`AHEAD` buffers), and every byte still passes
/// the meter on this side, so the bomb limits hold as before.
pub(super) fn untar_ahead<D: Read + Send>(decoder: D, tree: &mut Tree) -> Result<(), Error> {
    const AHEAD: usize = 8;
    let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(AHEAD);
    // Used buffers go back to the decoder, so the same few are reused (allocating on one
    // thread and freeing on another left glibc's arenas growing from upload to upload).
    let (give_back, take_back) = sync_channel::<Vec<u8>>(AHEAD + 2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut decoder = decoder;
            loop {
                let mut buf = take_back.try_recv().unwrap_or_default();
                buf.resize(BUF, 0);
                let piece = match decoder.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(buf)
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = piece.is_err();
                // A closed queue means the reader stopped (a refused entry): stop too.
                if tx.send(piece).is_err() || failed {
                    break;
                }
            }
        });
        // Dropping the reader (inside `untar`) releases the thread at its next send.
        let reader = Ahead {
            pieces: rx,
            give_back,
            current: Vec::new(),
            at: 0,
        };
        untar(reader, tree)
    })
}

/// The reading end of [`untar_ahead`]'s queue.
struct Ahead {
    pieces: Receiver<io::Result<Vec<u8>>>,
    give_back: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for Ahead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at == self.current.len() {
            let next = match self.pieces.recv() {
                Ok(piece) => piece?,
                Err(_) => return Ok(0), // the decoder reached its end
            };
            let used = std::mem::replace(&mut self.current, next);
            let _ = self.give_back.try_send(used);
            self.at = 0;
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Checks and writes one tar member.
fn tar_entry<R: Read>(entry: &mut tar::Entry<R>, tree: &mut Tree, g: &Gauge) -> Result<(), Error> {
    use tar::EntryType as T;
    let (raw, l) = (entry.path_bytes().into_owned(), tree.limits);
    let name = shown(&raw);
    tree.count(&name)?;
    let dir = match entry.header().entry_type() {
        T::Regular | T::Continuous => false,
        T::Directory => true,
        // `git archive` writes a pax global header holding the commit id; it describes no file.
        T::XGlobalHeader => return Ok(()),
        T::Symlink => return Err(refuse(Refusal::Symlink, Some(&name), l)),
        T::Link => return Err(refuse(Refusal::HardLink, Some(&name), l)),
        T::Char | T::Block | T::Fifo => return Err(refuse(Refusal::SpecialFile, Some(&name), l)),
        T::GNUSparse => return Err(refuse(Refusal::SparseFile, Some(&name), l)),
        _ => return Err(refuse(Refusal::UnsupportedEntry, Some(&name), l)),
    };
    // PAX-format sparse files look regular; their data would be a sparse map, not the file.
    let pax = entry
        .pax_extensions()
        .map_err(|_| refuse(Refusal::CorruptArchive, Some(&name), l))?;
    let mut pax = pax.into_iter().flatten().flatten();
    if pax.any(|ext| ext.key_bytes().starts_with(b"GNU.sparse.")) {
        return Err(refuse(Refusal::SparseFile, Some(&name), l));
    }
    let Some((path, slash)) = check_path(&raw, l)? else {
        return Ok(());
    };
    match (dir, slash) {
        (true, _) => tree.add_dir(&path),
        // Old tars mark folders only by a trailing '/' on a regular entry.
        (false, true) if entry.size() == 0 => tree.add_dir(&path),
        (false, true) => Err(refuse(Refusal::BadPath, Some(&name), l)),
        (false, false) => {
            let declared = entry.size();
            if tree.add_file(&path, entry, g)? != declared {
                return Err(refuse(Refusal::CorruptArchive, Some(&name), l));
            }
            Ok(())
        }
    }
}

/// Maps a read-side error: a tripped limit wins, OS errors are I/O, anything else is a damaged archive.
pub(super) fn read_err(e: io::Error, g: &Gauge, entry: Option<&str>, l: &Limits) -> Error {
    match g.tripped.take() {
        Some(code) => refuse(code, entry, l),
        None if e.raw_os_error().is_some() => io_failure(&e),
        None => refuse(Refusal::CorruptArchive, entry, l),
    }
}

#[cfg(test)]
thread_local! {
    /// Bytes written to disk by extractions on this thread, to show a bomb is stopped early.
    pub(super) static WRITTEN: Cell<u64> = const { Cell::new(0) };
}
