//! What an archive may contain and how a refusal is worded: limits, formats, entry names,
//! and the stable code plus plain-words message of every refusal.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::code::{self, Code};
use crate::units::human_bytes;

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
    detect_bytes(&head).ok_or_else(|| refuse(Refusal::UnsupportedFormat, None, &Limits::default()))
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
    /// Shared paths whose (still empty) shared folder got this release's content there.
    pub seeded_shared: Vec<String>,
}

/// The compression-ratio limit judged on whole sizes: once the archive has arrived in full,
/// a stream extracted against an estimate of its size is judged again on the exact one.
pub fn check_ratio(unpacked: u64, archive_bytes: u64, l: &Limits) -> Result<(), ArchiveError> {
    if unpacked > ratio_cap(l.max_ratio, archive_bytes) {
        return Err(refuse(Refusal::CompressionRatio, None, l));
    }
    Ok(())
}

/// Most unpacked bytes an archive of `archive_bytes` may give: `max_ratio` times its size, but
/// never less than [`RATIO_FLOOR`].
pub(super) fn ratio_cap(max_ratio: u64, archive_bytes: u64) -> u64 {
    RATIO_FLOOR.max(max_ratio.saturating_mul(archive_bytes))
}

/// Sets permission bits explicitly so the process umask does not matter.
pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), ArchiveError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io_failure(&e))
}

/// Why an archive was refused: a stable code for the API, the entry concerned, and a sentence a non-engineer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveError {
    /// Stable machine-readable reason, e.g. Refusal::Symlink or Refusal::CompressionRatio.
    pub code: Code,
    /// The same, as a closed set.
    pub refusal: Refusal,
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
pub(super) fn shown(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    let head: String = name.chars().take(200).collect();
    let mut out = head.escape_debug().to_string();
    if name.chars().nth(200).is_some() {
        out.push('…');
    }
    out
}

/// Whether `c` is a control character (C0, DEL, C1) or the Unicode line or paragraph separator.
pub(super) fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Checks one raw entry name; returns the normalised path and whether it ended in '/', or None
/// for the bare "./" root entry, which is skipped.
pub(super) fn check_path(raw: &[u8], l: &Limits) -> Result<Option<(String, bool)>, ArchiveError> {
    let bad = |code| Err(refuse(code, Some(&shown(raw)), l));
    let Ok(s) = std::str::from_utf8(raw) else {
        return bad(Refusal::NonUtf8Name);
    };
    let drive = matches!(s.as_bytes(), [d, b':', ..] if d.is_ascii_alphabetic());
    let whole = [
        (Refusal::ControlCharacter, s.chars().any(is_control)),
        (Refusal::Backslash, s.contains('\\')),
        (Refusal::AbsolutePath, s.starts_with('/')),
        (Refusal::DriveLetter, drive),
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
        (Refusal::ParentPath, parts().any(|c| c == "..")),
        (Refusal::BadPath, parts().any(|c| c.is_empty() || c == ".")),
        (Refusal::NameTooLong, long),
        (Refusal::PathTooDeep, parts().count() > l.max_depth),
    ];
    match each.iter().find(|c| c.1) {
        Some(&(code, _)) => bad(code),
        None => Ok(Some((s.to_owned(), slash))),
    }
}

/// Maps a write-side I/O failure: a full disk gets its own code because staff can act on it.
pub(super) fn io_failure(e: &io::Error) -> ArchiveError {
    use io::ErrorKind::{QuotaExceeded, StorageFull};
    if matches!(e.kind(), StorageFull | QuotaExceeded) || e.raw_os_error() == Some(28) {
        return refuse(Refusal::DiskFull, None, &Limits::default());
    }
    ArchiveError {
        code: code::IO_ERROR,
        refusal: Refusal::IoError,
        entry: None,
        message: format!("The server could not unpack the release because of a storage error ({e}). Try again; if it keeps happening, contact an administrator."),
    }
}

/// Maps a zip crate error the same way.
pub(super) fn zip_err(e: zip::result::ZipError, entry: Option<&str>, l: &Limits) -> ArchiveError {
    match e {
        zip::result::ZipError::Io(e) if e.raw_os_error().is_some() => io_failure(&e),
        _ => refuse(Refusal::CorruptArchive, entry, l),
    }
}

/// Why an archive was refused; each has a stable code and a message (one exhaustive table,
/// so no refusal can go without its words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `symlink`
    Symlink,
    /// `hard_link`
    HardLink,
    /// `special_file`
    SpecialFile,
    /// `sparse_file`
    SparseFile,
    /// `unsupported_entry`
    UnsupportedEntry,
    /// `encrypted`
    Encrypted,
    /// `unsupported_compression`
    UnsupportedCompression,
    /// `non_utf8_name`
    NonUtf8Name,
    /// `control_character`
    ControlCharacter,
    /// `backslash`
    Backslash,
    /// `absolute_path`
    AbsolutePath,
    /// `drive_letter`
    DriveLetter,
    /// `parent_path`
    ParentPath,
    /// `bad_path`
    BadPath,
    /// `name_too_long`
    NameTooLong,
    /// `path_too_deep`
    PathTooDeep,
    /// `duplicate_entry`
    DuplicateEntry,
    /// `path_conflict`
    PathConflict,
    /// `file_too_large`
    FileTooLarge,
    /// `unpacked_too_large`
    UnpackedTooLarge,
    /// `too_many_entries`
    TooManyEntries,
    /// `compression_ratio`
    CompressionRatio,
    /// `corrupt_archive`
    CorruptArchive,
    /// `empty_archive`
    EmptyArchive,
    /// `unsupported_format`
    UnsupportedFormat,
    /// `disk_full`
    DiskFull,
    /// `destination_exists`
    DestinationExists,
    /// `io_error`
    IoError,
}

impl Refusal {
    /// The stable code of the API's `error.code`.
    pub fn code(self) -> Code {
        match self {
            Refusal::Symlink => code::SYMLINK,
            Refusal::HardLink => code::HARD_LINK,
            Refusal::SpecialFile => code::SPECIAL_FILE,
            Refusal::SparseFile => code::SPARSE_FILE,
            Refusal::UnsupportedEntry => code::UNSUPPORTED_ENTRY,
            Refusal::Encrypted => code::ENCRYPTED,
            Refusal::UnsupportedCompression => code::UNSUPPORTED_COMPRESSION,
            Refusal::NonUtf8Name => code::NON_UTF8_NAME,
            Refusal::ControlCharacter => code::CONTROL_CHARACTER,
            Refusal::Backslash => code::BACKSLASH,
            Refusal::AbsolutePath => code::ABSOLUTE_PATH,
            Refusal::DriveLetter => code::DRIVE_LETTER,
            Refusal::ParentPath => code::PARENT_PATH,
            Refusal::BadPath => code::BAD_PATH,
            Refusal::NameTooLong => code::NAME_TOO_LONG,
            Refusal::PathTooDeep => code::PATH_TOO_DEEP,
            Refusal::DuplicateEntry => code::DUPLICATE_ENTRY,
            Refusal::PathConflict => code::PATH_CONFLICT,
            Refusal::FileTooLarge => code::FILE_TOO_LARGE,
            Refusal::UnpackedTooLarge => code::UNPACKED_TOO_LARGE,
            Refusal::TooManyEntries => code::TOO_MANY_ENTRIES,
            Refusal::CompressionRatio => code::COMPRESSION_RATIO,
            Refusal::CorruptArchive => code::CORRUPT_ARCHIVE,
            Refusal::EmptyArchive => code::EMPTY_ARCHIVE,
            Refusal::UnsupportedFormat => code::UNSUPPORTED_FORMAT,
            Refusal::DiskFull => code::DISK_FULL,
            Refusal::DestinationExists => code::DESTINATION_EXISTS,
            Refusal::IoError => code::IO_ERROR,
        }
    }

    /// What went wrong and what to do, naming `e` (the entry, already passed through `shown`).
    fn message(self, e: &str, l: &Limits) -> String {
        match self {
            Refusal::Symlink => format!("The archive contains a symbolic link, \"{e}\". Cutover accepts only ordinary files and folders: replace the link with the file it points to and upload again."),
            Refusal::HardLink => format!("The archive contains a hard link, \"{e}\". Cutover accepts only ordinary files and folders: store it as an ordinary copy of the file and upload again."),
            Refusal::SpecialFile => format!("The archive contains \"{e}\", which is a device, pipe or other special file, not an ordinary file. Remove it and upload again."),
            Refusal::SparseFile => format!("\"{e}\" is stored as a sparse file, which Cutover does not accept. Create the archive again without the sparse option and upload again."),
            Refusal::UnsupportedEntry => format!("The archive contains \"{e}\", which is neither an ordinary file nor a folder. Remove it and upload again."),
            Refusal::Encrypted => format!("\"{e}\" is password-protected. Cutover cannot open encrypted archives: create the archive again without a password."),
            Refusal::UnsupportedCompression => format!("\"{e}\" is compressed with a method Cutover cannot read. Create the archive again with standard settings (Deflate) and upload again."),
            Refusal::NonUtf8Name => format!("The name \"{e}\" is not stored as Unicode (UTF-8) text, probably because an old tool made the archive. Rename it using plain characters, or use a tool that stores names as UTF-8, and upload again."),
            Refusal::ControlCharacter => format!("The name \"{e}\" contains an invisible control character such as a line break. Rename it and upload again."),
            Refusal::Backslash => format!("The name \"{e}\" contains a backslash (\\). Rename it; if the archive was made on Windows, use a tool that separates folders with \"/\" (such as 7-Zip), then upload again."),
            Refusal::AbsolutePath => format!("\"{e}\" is stored with an absolute path (starting with \"/\"). Create the archive from inside the site's folder so paths are relative, and upload again."),
            Refusal::DriveLetter => format!("\"{e}\" starts with a drive letter. Create the archive from inside the site's folder so paths are relative, and upload again."),
            Refusal::ParentPath => format!("\"{e}\" contains \"..\", which would place it outside the release folder. Remove it and upload again."),
            Refusal::BadPath => format!("\"{e}\" has an empty or \".\" folder name in its path (like \"a//b\" or \"a/./b\"). Create the archive again and upload it."),
            Refusal::NameTooLong => format!("The name \"{e}\" is too long: at most {} bytes per file or folder name and {} bytes per path. Shorten it and upload again.", l.max_name_bytes, l.max_path_bytes),
            Refusal::PathTooDeep => format!("\"{e}\" is inside too many folders (at most {} levels). Flatten the folder structure and upload again.", l.max_depth),
            Refusal::DuplicateEntry => format!("The archive contains \"{e}\" more than once (names that differ only in upper/lower case count as the same). Keep one and upload again."),
            Refusal::PathConflict => format!("\"{e}\" is both a file and a folder in the archive. Rename one of them and upload again."),
            Refusal::FileTooLarge => format!("\"{e}\" is larger than the limit of {} per file. Remove or shrink it and upload again.", human_bytes(l.max_file_bytes)),
            Refusal::UnpackedTooLarge => format!("The files in the archive add up to more than the limit of {}. Reduce the release and upload again.", human_bytes(l.max_unpacked_bytes)),
            Refusal::TooManyEntries => format!("The archive holds more than {} files and folders. Reduce the release and upload again.", l.max_entries),
            Refusal::CompressionRatio => format!("The archive unpacks to more than {} times its own size, which is how malicious \"zip bombs\" behave, so Cutover stopped. If this is a genuine release, contact an administrator.", l.max_ratio),
            Refusal::CorruptArchive => "The archive is damaged or incomplete (perhaps it did not finish uploading). Create it again and upload it again.".to_string(),
            Refusal::EmptyArchive => "The archive contains no files. Check that you compressed the right folder and upload again.".to_string(),
            Refusal::UnsupportedFormat => "This file is not an archive Cutover can read. Upload a .zip, .tar.gz, .tar.zst or .tar file.".to_string(),
            Refusal::DiskFull => "The server's disk is full, so the release could not be unpacked. Ask an administrator to free some space, then try again.".to_string(),
            Refusal::DestinationExists => "The release folder already exists on the server. Try again; if it keeps happening, contact an administrator.".to_string(),
            Refusal::IoError => "The server could not unpack the release because of a storage error. Try again; if it keeps happening, contact an administrator.".to_string(),
        }
    }
}

/// Builds the refusal `why`, naming `entry` (already passed through `shown`).
pub(super) fn refuse(why: Refusal, entry: Option<&str>, l: &Limits) -> ArchiveError {
    ArchiveError {
        code: why.code(),
        refusal: why,
        entry: entry.map(str::to_owned),
        message: why.message(entry.unwrap_or(""), l),
    }
}
