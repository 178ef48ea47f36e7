//! Checks a release archive (tar.gz, tar.zst, tar or zip) entry by entry and extracts it safely.
//!
//! This is a security boundary. The tar and zip crates silently skip or rewrite some hostile
//! entries and would create links as told, so their own unpack/extract functions are never
//! used: every entry is checked here and written by hand, and any doubt rejects the whole archive.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

mod engine;
#[cfg(test)]
mod tests;
mod zipcheck;

/// Limits, counted on the real bytes as they are decompressed, never on what headers claim.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes all files together may hold once unpacked (default 8 GiB).
    pub max_unpacked_bytes: u64,
    /// Most bytes one file may hold once unpacked (default 2 GiB).
    pub max_file_bytes: u64,
    /// Most entries: archive members plus folders implied by paths but not listed (default 100,000).
    pub max_entries: u64,
    /// Most unpacked bytes per archive byte, enforced once more than [`RATIO_FLOOR`] is unpacked (default 200).
    pub max_ratio: u64,
    /// Longest path in bytes (default 1024).
    pub max_path_bytes: usize,
    /// Longest file or folder name (one path component) in bytes (default 255).
    pub max_name_bytes: usize,
    /// Most path components (default 32).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_unpacked_bytes: 8 << 30,
            max_file_bytes: 2 << 30,
            max_entries: 100_000,
            max_ratio: 200,
            max_path_bytes: 1024,
            max_name_bytes: 255,
            max_depth: 32,
        }
    }
}

/// Unpacked bytes below which `max_ratio` is not enforced: small, highly compressible sites are normal.
pub const RATIO_FLOOR: u64 = 64 << 20;

/// An archive format Cutover reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A tar stream compressed with gzip.
    TarGz,
    /// A tar stream compressed with zstd.
    TarZst,
    /// An uncompressed tar stream.
    Tar,
    /// A zip archive.
    Zip,
}

impl Format {
    /// The format's conventional short name: "tar.gz", "tar.zst", "tar" or "zip".
    pub fn as_str(self) -> &'static str {
        match self {
            Format::TarGz => "tar.gz",
            Format::TarZst => "tar.zst",
            Format::Tar => "tar",
            Format::Zip => "zip",
        }
    }
}

/// Recognises the format by the file's bytes, never its name (see [`detect_bytes`]).
pub fn detect(path: &Path) -> Result<Format, ArchiveError> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    File::open(path)
        .and_then(|f| f.take(SNIFF_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| io_failure(&e))?;
    detect_bytes(&head).ok_or_else(|| refuse("unsupported_format", None, &Limits::default()))
}

/// How many leading bytes [`detect_bytes`] needs to decide (fewer only at the end of a file).
pub const SNIFF_BYTES: usize = 262;

/// The format from an archive's first bytes: gzip 1f 8b, zstd 28 b5 2f fd, zip "PK\x03\x04"
/// (also the empty-zip "PK\x05\x06"), plain tar "ustar" at offset 257; `None` for anything else.
pub fn detect_bytes(head: &[u8]) -> Option<Format> {
    Some(match head {
        [0x1f, 0x8b, ..] => Format::TarGz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Format::TarZst,
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Format::Zip,
        h if h.len() >= 262 && &h[257..262] == b"ustar" => Format::Tar,
        _ => return None,
    })
}

/// One file of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Path relative to the release folder, '/'-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// What `extract` put into the release folder.
#[derive(Debug)]
pub struct Extracted {
    /// The archive's format.
    pub format: Format,
    /// Regular files only, sorted by path, paths relative to dest after unwrapping.
    pub files: Vec<ManifestEntry>,
    /// Sum of the file sizes.
    pub unpacked_bytes: u64,
    /// Folders created inside dest (dest itself not counted).
    pub dirs: u64,
    /// The single top-level folder that was removed, if any.
    pub unwrapped: Option<String>,
}

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
        Format::Zip => Some(engine::open_zip(archive, limits)?),
        _ => None,
    };
    let file = File::open(archive).map_err(|e| io_failure(&e))?;
    let known = AtomicU64::new(archive_bytes);
    extract_into(format, zip, file, dest, limits, &known)
}

/// Checks and extracts a tar stream (plain, gzip or zstd: zip needs the whole file) as it is
/// read from `src`, e.g. while the upload is still arriving. `received` counts the archive
/// bytes that have arrived so far; the compression-ratio limit is judged against it, which is
/// never less than what the decompressor has consumed. Same guarantees as [`extract`].
pub fn extract_stream(
    format: Format,
    src: impl Read + Send,
    dest: &Path,
    limits: &Limits,
    received: &AtomicU64,
) -> Result<Extracted, ArchiveError> {
    if format == Format::Zip {
        return Err(refuse("unsupported_format", None, limits));
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
            return Err(refuse("destination_exists", None, limits))
        }
        other => other.map_err(|e| io_failure(&e))?,
    }
    let mut guard = Cleanup(vec![dest.to_path_buf()]);
    set_mode(dest, 0o755)?;
    let mut tree = engine::Tree::new(dest, limits, archive_bytes);
    match (format, zip) {
        (_, Some(zip)) => engine::unzip(zip, &mut tree)?,
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
        return Err(refuse("empty_archive", None, limits));
    }
    if let Some(top) = &done.unwrapped {
        unwrap_folder(dest, top, &mut guard).map_err(|e| io_failure(&e))?;
        done.dirs -= 1;
    }
    guard.0.clear();
    Ok(done)
}

/// The compression-ratio limit judged on whole sizes: once the archive has arrived in full,
/// a stream extracted against an estimate of its size is judged again on the exact one.
pub fn check_ratio(unpacked: u64, archive_bytes: u64, l: &Limits) -> Result<(), ArchiveError> {
    if unpacked > ratio_cap(l.max_ratio, archive_bytes) {
        return Err(refuse("compression_ratio", None, l));
    }
    Ok(())
}

/// Most unpacked bytes an archive of `archive_bytes` may give: `max_ratio` times its size, but
/// never less than [`RATIO_FLOOR`].
fn ratio_cap(max_ratio: u64, archive_bytes: u64) -> u64 {
    RATIO_FLOOR.max(max_ratio.saturating_mul(archive_bytes))
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

/// Sets permission bits explicitly so the process umask does not matter.
fn set_mode(path: &Path, mode: u32) -> Result<(), ArchiveError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io_failure(&e))
}

/// Why an archive was refused: a stable code for the API, the entry concerned, and a sentence a non-engineer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError {
    /// Stable machine-readable reason, e.g. "symlink" or "compression_ratio".
    pub code: &'static str,
    /// The entry concerned, control characters escaped and shortened to about 200 characters.
    pub entry: Option<String>,
    /// What went wrong and what to do, in plain words.
    pub message: String,
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArchiveError {}

/// Makes an entry name safe to show: lossy UTF-8, control characters escaped, at most 200 characters.
fn shown(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    let head: String = name.chars().take(200).collect();
    let mut out = head.escape_debug().to_string();
    if name.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

/// Whether `c` is a control character (C0, DEL, C1) or the Unicode line or paragraph separator.
fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Checks one raw entry name; returns the normalised path and whether it ended in '/', or None
/// for the bare "./" root entry, which is skipped.
fn check_path(raw: &[u8], l: &Limits) -> Result<Option<(String, bool)>, ArchiveError> {
    let bad = |code| Err(refuse(code, Some(&shown(raw)), l));
    let Ok(s) = std::str::from_utf8(raw) else {
        return bad("non_utf8_name");
    };
    let drive = matches!(s.as_bytes(), [d, b':', ..] if d.is_ascii_alphabetic());
    let whole = [
        ("control_character", s.chars().any(is_control)),
        ("backslash", s.contains('\\')),
        ("absolute_path", s.starts_with('/')),
        ("drive_letter", drive),
    ];
    if let Some(&(code, _)) = whole.iter().find(|c| c.1) {
        return bad(code);
    }
    if s == "." || s == "./" {
        return Ok(None);
    }
    // `tar -C dir .` prefixes every name with one "./"; it carries no meaning.
    let s = s.strip_prefix("./").unwrap_or(s);
    let (s, slash) = s.strip_suffix('/').map_or((s, false), |t| (t, true));
    let parts = || s.split('/');
    let long = s.len() > l.max_path_bytes || parts().any(|c| c.len() > l.max_name_bytes);
    let each = [
        ("parent_path", parts().any(|c| c == "..")),
        ("bad_path", parts().any(|c| c.is_empty() || c == ".")),
        ("name_too_long", long),
        ("path_too_deep", parts().count() > l.max_depth),
    ];
    match each.iter().find(|c| c.1) {
        Some(&(code, _)) => bad(code),
        None => Ok(Some((s.to_owned(), slash))),
    }
}

/// Human-readable size for messages.
fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{b} bytes"),
    }
}

/// Maps a write-side I/O failure: a full disk gets its own code because staff can act on it.
fn io_failure(e: &io::Error) -> ArchiveError {
    use io::ErrorKind::{QuotaExceeded, StorageFull};
    if matches!(e.kind(), StorageFull | QuotaExceeded) || e.raw_os_error() == Some(28) {
        return refuse("disk_full", None, &Limits::default());
    }
    ArchiveError {
        code: "io_error",
        entry: None,
        message: format!("The server could not unpack the release because of a storage error ({e}). Try again; if it keeps happening, contact an administrator."),
    }
}

/// Maps a read-side error: a tripped limit wins, OS errors are I/O, anything else is a damaged archive.
fn read_err(e: io::Error, g: &engine::Gauge, entry: Option<&str>, l: &Limits) -> ArchiveError {
    match g.tripped.take() {
        Some(code) => refuse(code, entry, l),
        None if e.raw_os_error().is_some() => io_failure(&e),
        None => refuse("corrupt_archive", entry, l),
    }
}

/// Maps a zip crate error the same way.
fn zip_err(e: zip::result::ZipError, entry: Option<&str>, l: &Limits) -> ArchiveError {
    match e {
        zip::result::ZipError::Io(e) if e.raw_os_error().is_some() => io_failure(&e),
        _ => refuse("corrupt_archive", entry, l),
    }
}

/// Builds the refusal for `code`, naming `entry` (already passed through `shown`).
fn refuse(code: &'static str, entry: Option<&str>, l: &Limits) -> ArchiveError {
    let e = entry.unwrap_or("");
    let message = match code {
        "symlink" => format!("The archive contains a symbolic link, \"{e}\". Cutover accepts only ordinary files and folders: replace the link with the file it points to and upload again."),
        "hard_link" => format!("The archive contains a hard link, \"{e}\". Cutover accepts only ordinary files and folders: store it as an ordinary copy of the file and upload again."),
        "special_file" => format!("The archive contains \"{e}\", which is a device, pipe or other special file, not an ordinary file. Remove it and upload again."),
        "sparse_file" => format!("\"{e}\" is stored as a sparse file, which Cutover does not accept. Create the archive again without the sparse option and upload again."),
        "unsupported_entry" => format!("The archive contains \"{e}\", which is neither an ordinary file nor a folder. Remove it and upload again."),
        "encrypted" => format!("\"{e}\" is password-protected. Cutover cannot open encrypted archives: create the archive again without a password."),
        "unsupported_compression" => format!("\"{e}\" is compressed with a method Cutover cannot read. Create the archive again with standard settings (Deflate) and upload again."),
        "non_utf8_name" => format!("The name \"{e}\" is not stored as Unicode (UTF-8) text, probably because an old tool made the archive. Rename it using plain characters, or use a tool that stores names as UTF-8, and upload again."),
        "control_character" => format!("The name \"{e}\" contains an invisible control character such as a line break. Rename it and upload again."),
        "backslash" => format!("The name \"{e}\" contains a backslash (\\). Rename it; if the archive was made on Windows, use a tool that separates folders with \"/\" (such as 7-Zip), then upload again."),
        "absolute_path" => format!("\"{e}\" is stored with an absolute path (starting with \"/\"). Create the archive from inside the site's folder so paths are relative, and upload again."),
        "drive_letter" => format!("\"{e}\" starts with a drive letter. Create the archive from inside the site's folder so paths are relative, and upload again."),
        "parent_path" => format!("\"{e}\" contains \"..\", which would place it outside the release folder. Remove it and upload again."),
        "bad_path" => format!("\"{e}\" has an empty or \".\" folder name in its path (like \"a//b\" or \"a/./b\"). Create the archive again and upload it."),
        "name_too_long" => format!("The name \"{e}\" is too long: at most {} bytes per file or folder name and {} bytes per path. Shorten it and upload again.", l.max_name_bytes, l.max_path_bytes),
        "path_too_deep" => format!("\"{e}\" is inside too many folders (at most {} levels). Flatten the folder structure and upload again.", l.max_depth),
        "duplicate_entry" => format!("The archive contains \"{e}\" more than once (names that differ only in upper/lower case count as the same). Keep one and upload again."),
        "path_conflict" => format!("\"{e}\" is both a file and a folder in the archive. Rename one of them and upload again."),
        "file_too_large" => format!("\"{e}\" is larger than the limit of {} per file. Remove or shrink it and upload again.", human(l.max_file_bytes)),
        "unpacked_too_large" => format!("The files in the archive add up to more than the limit of {}. Reduce the release and upload again.", human(l.max_unpacked_bytes)),
        "too_many_entries" => format!("The archive holds more than {} files and folders. Reduce the release and upload again.", l.max_entries),
        "compression_ratio" => format!("The archive unpacks to more than {} times its own size, which is how malicious \"zip bombs\" behave, so Cutover stopped. If this is a genuine release, contact an administrator.", l.max_ratio),
        "corrupt_archive" => "The archive is damaged or incomplete (perhaps it did not finish uploading). Create it again and upload it again.".to_string(),
        "empty_archive" => "The archive contains no files. Check that you compressed the right folder and upload again.".to_string(),
        "unsupported_format" => "This file is not an archive Cutover can read. Upload a .zip, .tar.gz, .tar.zst or .tar file.".to_string(),
        "disk_full" => "The server's disk is full, so the release could not be unpacked. Ask an administrator to free some space, then try again.".to_string(),
        "destination_exists" => "The release folder already exists on the server. Try again; if it keeps happening, contact an administrator.".to_string(),
        _ => format!("The archive was refused ({code}). Contact an administrator."),
    };
    ArchiveError {
        code,
        entry: entry.map(str::to_owned),
        message,
    }
}
