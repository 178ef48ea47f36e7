//! Zip archives: the central directory read and checked before anything is written, then
//! every entry checked and written through the same tree as a tar's.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use zip::{CompressionMethod as M, ZipArchive};

use super::engine::{gauge, Meter, Tree};
use super::rules::{
    check_path, io_failure, refuse, shown, zip_err, ArchiveError as Error, Limits, Refusal,
};

/// Opens a zip and reads its central directory, refusing duplicates the zip crate would hide.
pub(super) fn open_zip(path: &Path, l: &Limits) -> Result<ZipArchive<BufReader<File>>, Error> {
    let open = || File::open(path).map_err(|e| io_failure(&e));
    // The footer first: the zip crate indexes every record it announces as soon as it opens.
    let dir = super::zipcheck::precheck(&mut open()?, l)?;
    let zip = ZipArchive::new(BufReader::new(open()?)).map_err(|e| zip_err(e, None, l))?;
    if zip.len() as u64 > l.max_entries {
        return Err(refuse(Refusal::TooManyEntries, None, l));
    }
    // The zip crate keeps only one of several entries with the same name, so count the records
    // (no more than the footer announced, within the directory it sized).
    let names = central_names(open()?, zip.central_directory_start(), dir.entries + 1);
    let names = names.map_err(|e| io_failure(&e))?;
    if names.len() != zip.len() {
        let mut seen = std::collections::HashSet::new();
        let dup = names
            .iter()
            .find(|n| !seen.insert(String::from_utf8_lossy(n).to_lowercase()));
        let code = dup.map_or(Refusal::CorruptArchive, |_| Refusal::DuplicateEntry);
        return Err(refuse(code, dup.map(|n| shown(n)).as_deref(), l));
    }
    Ok(zip)
}

/// Raw names of the central directory records starting at `start` (at most `most`).
fn central_names(file: File, start: u64, most: u64) -> io::Result<Vec<Vec<u8>>> {
    let mut r = BufReader::new(file);
    r.seek(SeekFrom::Start(start))?;
    let (mut names, mut fixed) = (Vec::new(), [0u8; 46]);
    while (names.len() as u64) < most
        && r.read_exact(&mut fixed).is_ok()
        && fixed.starts_with(b"PK\x01\x02")
    {
        let len = |at: usize| u16::from_le_bytes([fixed[at], fixed[at + 1]]) as usize;
        let mut name = vec![0; len(28)];
        r.read_exact(&mut name)?;
        r.seek_relative((len(30) + len(32)) as i64)?;
        names.push(name);
    }
    Ok(names)
}

/// Walks a zip through its central directory, checking and writing each entry.
pub(super) fn unzip(mut zip: ZipArchive<BufReader<File>>, tree: &mut Tree) -> Result<(), Error> {
    let (g, l) = (gauge(tree), tree.limits);
    for i in 0..zip.len() {
        let (raw, dir) = {
            let f = zip.by_index_raw(i).map_err(|e| zip_err(e, None, l))?;
            let name = shown(f.name_raw());
            let kind = f.unix_mode().map_or(0, |m| m & 0o170000);
            let code = match kind {
                0o120000 => Some(Refusal::Symlink),
                0 | 0o100000 | 0o040000 => None,
                _ => Some(Refusal::SpecialFile),
            };
            let supported = matches!(f.compression(), M::Stored | M::Deflated | M::Zstd);
            let code = code.or(f.encrypted().then_some(Refusal::Encrypted));
            let code =
                code.or((!supported && !f.is_dir()).then_some(Refusal::UnsupportedCompression));
            if let Some(code) = code {
                return Err(refuse(code, Some(&name), l));
            }
            (f.name_raw().to_vec(), kind == 0o040000)
        };
        tree.count(&shown(&raw))?;
        let Some((path, slash)) = check_path(&raw, l)? else {
            continue;
        };
        // macOS Finder adds "__MACOSX/" resource-fork copies of every file; they are never site content.
        if path == "__MACOSX" || path.starts_with("__MACOSX/") {
            continue;
        }
        if dir || slash {
            tree.add_dir(&path)?;
        } else {
            let f = zip
                .by_index(i)
                .map_err(|e| zip_err(e, Some(&shown(&raw)), l))?;
            tree.add_file(&path, &mut Meter(f, &g), &g)?;
        }
    }
    Ok(())
}
