//! Checks a release archive (tar.gz, tar.zst, tar or zip) entry by entry and extracts it safely.
//!
//! This is a security boundary. The tar and zip crates silently skip or rewrite some hostile
//! entries and would create links as told, so their own unpack/extract functions are never
//! used: every entry is checked here and written by hand, and any doubt rejects the whole archive.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

mod engine;
mod rules;
#[cfg(test)]
mod tests;
mod zipcheck;
mod zipfile;

pub use rules::Refusal;
pub use rules::{
    check_ratio, detect, detect_bytes, ArchiveError, Extracted, Format, Limits, ManifestEntry,
    RATIO_FLOOR, SNIFF_BYTES,
};
use rules::{io_failure, refuse, set_mode};

/// Checks and extracts `archive` (whose size is `archive_bytes`) into `dest`, which must not exist yet; its parent must exist.
/// On success `dest` holds exactly the release content. On any failure `dest` (and any sibling temp used) is removed and nothing outside it was created or changed.
pub fn extract(
    archive: &Path,
    archive_bytes: u64,
    dest: &Path,
    limits: &Limits,
) -> Result<Extracted, ArchiveError> {
    let format = detect(archive)?;
    // The zip's central directory is read before dest exists, so a damaged zip leaves no trace.
    let zip = match format {
        Format::Zip => Some(zipfile::open_zip(archive, limits)?),
        _ => None,
    };
    let file = File::open(archive).map_err(|e| io_failure(&e))?;
    let known = AtomicU64::new(archive_bytes);
    extract_into(format, zip, file, dest, limits, &known)
}

/// Checks and extracts a tar stream (plain, gzip or zstd: zip needs the whole file) as it is
/// read from `src`, e.g. while the upload is still arriving. `received` counts the archive
/// bytes `src` has given so far; the compression-ratio limit is judged against it (past
/// [`RATIO_FLOOR`]), so a bomb is stopped after a few compressed bytes whatever size the
/// client declared. Same guarantees as [`extract`].
pub fn extract_stream(
    format: Format,
    src: impl Read + Send,
    dest: &Path,
    limits: &Limits,
    received: &AtomicU64,
) -> Result<Extracted, ArchiveError> {
    if format == Format::Zip {
        return Err(refuse(Refusal::UnsupportedFormat, None, limits));
    }
    extract_into(format, None, src, dest, limits, received)
}

fn extract_into(
    format: Format,
    zip: Option<zip::ZipArchive<BufReader<File>>>,
    src: impl Read + Send,
    dest: &Path,
    limits: &Limits,
    archive_bytes: &AtomicU64,
) -> Result<Extracted, ArchiveError> {
    match fs::DirBuilder::new().mode(0o755).create(dest) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(refuse(Refusal::DestinationExists, None, limits))
        }
        other => other.map_err(|e| io_failure(&e))?,
    }
    let mut guard = Cleanup(vec![dest.to_path_buf()]);
    set_mode(dest, 0o755)?;
    let mut tree = engine::Tree::new(dest, limits, archive_bytes);
    match (format, zip) {
        (_, Some(zip)) => zipfile::unzip(zip, &mut tree)?,
        (Format::TarGz, _) => {
            let src = BufReader::with_capacity(engine::BUF, src);
            engine::untar_ahead(flate2::read::MultiGzDecoder::new(src), &mut tree)?
        }
        (Format::TarZst, _) => {
            let zstd = zstd::Decoder::new(src).map_err(|e| io_failure(&e))?;
            engine::untar_ahead(zstd, &mut tree)?
        }
        _ => engine::untar(src, &mut tree)?,
    }
    let mut done = tree.finish(format);
    if done.files.is_empty() {
        return Err(refuse(Refusal::EmptyArchive, None, limits));
    }
    if let Some(top) = &done.unwrapped {
        unwrap_folder(dest, top, &mut guard).map_err(|e| io_failure(&e))?;
        done.dirs -= 1;
    }
    guard.0.clear();
    Ok(done)
}

/// Makes `dest/top` become `dest` with renames only: dest/top -> sibling temp, drop dest, temp -> dest.
fn unwrap_folder(dest: &Path, top: &str, guard: &mut Cleanup) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let parent = dest.parent().filter(|p| !p.as_os_str().is_empty());
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = loop {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let candidate = format!(".{name}.unwrap-{}-{seq}", std::process::id());
        let tmp = parent.unwrap_or(Path::new(".")).join(candidate);
        // rename() would silently replace an empty folder of that name, so pick an unused one.
        if matches!(fs::symlink_metadata(&tmp), Err(e) if e.kind() == io::ErrorKind::NotFound) {
            break tmp;
        }
    };
    guard.0.push(tmp.clone());
    fs::rename(dest.join(top), &tmp)?;
    fs::remove_dir(dest)?;
    fs::rename(&tmp, dest)
}

/// Removes what `extract` created unless disarmed by emptying the list; runs on errors and panics.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_dir_all(path); // best effort: the original error matters more
        }
    }
}
