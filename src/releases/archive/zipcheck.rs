//! Reads a zip's end-of-central-directory record (and its zip64 form) before the zip crate
//! opens the archive, and refuses a central directory that is too big to index.
//!
//! Hand-written on purpose: `zip::ZipArchive::new` builds its whole index (a few hundred
//! bytes per record) as soon as it opens the file, trusting the record count it finds here,
//! so a 184 MB zip of 4 million minimal records costs about 1 GiB of memory before any of
//! our limits can look at it. No zip crate exposes the footer without building that index,
//! and the format of these two records is small and fixed (APPNOTE 4.3.14–4.3.16).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::rules::{io_failure, refuse, ArchiveError, Limits, Refusal};

/// The footer facts we check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Directory {
    /// Records the footer says the central directory holds.
    pub entries: u64,
    /// The central directory's size in bytes.
    pub size: u64,
    /// Where it starts, from the start of the file (as written; prepended data not allowed).
    pub offset: u64,
}

/// The fixed part of a central-directory record: the least one record can take.
pub(super) const MIN_RECORD: u64 = 46;
/// Room allowed per record for its extra fields and comment, beyond the name: generous for
/// every tool we know (timestamps, unix ids, zip64 sizes take tens of bytes).
pub(super) const RECORD_EXTRAS: u64 = 2048;

const EOCD: &[u8; 4] = b"PK\x05\x06";
const EOCD_LEN: usize = 22;
const LOCATOR: &[u8; 4] = b"PK\x06\x07";
const LOCATOR_LEN: usize = 20;
const EOCD64: &[u8; 4] = b"PK\x06\x06";
/// The footer may be followed by a comment of up to 65,535 bytes.
const MAX_COMMENT: usize = 65_535;

fn u16_at(b: &[u8], at: usize) -> u64 {
    u16::from_le_bytes([b[at], b[at + 1]]) as u64
}

fn u32_at(b: &[u8], at: usize) -> u64 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as u64
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Finds and reads the footer. `Ok(None)`: there is none (not a readable zip).
pub(super) fn read_directory(file: &mut File) -> io::Result<Option<Directory>> {
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min((EOCD_LEN + MAX_COMMENT) as u64);
    let tail_start = len - tail_len;
    let mut tail = vec![0; tail_len as usize];
    file.seek(SeekFrom::Start(tail_start))?;
    file.read_exact(&mut tail)?;
    // The last signature whose comment length reaches exactly to the end of the file.
    let Some(at) = (0..tail.len().saturating_sub(EOCD_LEN - 1))
        .rev()
        .find(|&i| {
            &tail[i..i + 4] == EOCD && i + EOCD_LEN + u16_at(&tail, i + 20) as usize == tail.len()
        })
    else {
        return Ok(None);
    };
    let e = &tail[at..at + EOCD_LEN];
    let mut dir = Directory {
        entries: u16_at(e, 10),
        size: u32_at(e, 12),
        offset: u32_at(e, 16),
    };
    let eocd_pos = tail_start + at as u64;
    let maxed = dir.entries == 0xFFFF || dir.size == 0xFFFF_FFFF || dir.offset == 0xFFFF_FFFF;
    if eocd_pos >= LOCATOR_LEN as u64 {
        let mut loc = [0u8; LOCATOR_LEN];
        file.seek(SeekFrom::Start(eocd_pos - LOCATOR_LEN as u64))?;
        file.read_exact(&mut loc)?;
        if &loc[..4] == LOCATOR {
            let pos = u64_at(&loc, 8);
            let mut rec = [0u8; 56];
            if pos.checked_add(56).is_none_or(|end| end > eocd_pos) {
                return Ok(None);
            }
            file.seek(SeekFrom::Start(pos))?;
            file.read_exact(&mut rec)?;
            if &rec[..4] != EOCD64 {
                return Ok(None);
            }
            dir = Directory {
                entries: u64_at(&rec, 32),
                size: u64_at(&rec, 40),
                offset: u64_at(&rec, 48),
            };
        } else if maxed {
            // Saturated 32-bit fields without the zip64 record that should carry the values.
            return Ok(None);
        }
    }
    Ok(Some(dir))
}

/// Judges a footer against the limits before anything is indexed: at most `max_entries`
/// records, and a directory no bigger than those records can take with names of at most
/// `max_path` bytes (so a footer cannot understate its count).
pub(super) fn check(
    dir: &Directory,
    file_len: u64,
    max_entries: u64,
    max_path: u64,
) -> Result<(), Refusal> {
    if dir.entries > max_entries {
        return Err(Refusal::TooManyEntries);
    }
    let fits = dir
        .offset
        .checked_add(dir.size)
        .is_some_and(|end| end <= file_len);
    let least = dir.entries.saturating_mul(MIN_RECORD);
    let most = dir
        .entries
        .saturating_mul(MIN_RECORD + max_path + RECORD_EXTRAS);
    if !fits || dir.size < least || dir.size > most {
        return Err(Refusal::CorruptArchive);
    }
    Ok(())
}

/// The pre-check [`super::zipfile::open_zip`] runs: refuses (without indexing anything) a zip
/// whose footer announces more records than `max_entries` or does not add up.
pub(super) fn precheck(file: &mut File, l: &Limits) -> Result<Directory, ArchiveError> {
    let len = file.metadata().map_err(|e| io_failure(&e))?.len();
    let dir = read_directory(file)
        .map_err(|e| io_failure(&e))?
        .ok_or_else(|| refuse(Refusal::CorruptArchive, None, l))?;
    check(&dir, len, l.max_entries, l.max_path_bytes as u64).map_err(|why| refuse(why, None, l))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use crate::releases::archive::zipcheck::*;
    use std::io::Write;

    /// A zip of `n` minimal central records (no local data: the pre-check must refuse it
    /// before anything else is read), with a plain or zip64 footer claiming `claimed`.
    fn index_bomb(path: &std::path::Path, n: u64, claimed: u64, zip64: bool) {
        let mut w = std::io::BufWriter::new(File::create(path).unwrap());
        // A local header first, so the file is recognised as a zip by its first bytes.
        w.write_all(b"PK\x03\x04").unwrap();
        w.write_all(&[0; 26]).unwrap();
        let offset = 30u64;
        let mut rec = [0u8; 47];
        rec[..4].copy_from_slice(b"PK\x01\x02");
        rec[28] = 1; // name length 1
        rec[46] = b'a';
        for _ in 0..n {
            w.write_all(&rec).unwrap();
        }
        let size = n * 47;
        if zip64 {
            let pos = offset + size;
            let mut e = vec![];
            e.extend_from_slice(b"PK\x06\x06");
            e.extend_from_slice(&44u64.to_le_bytes());
            e.extend_from_slice(&[0; 12]);
            e.extend_from_slice(&claimed.to_le_bytes());
            e.extend_from_slice(&claimed.to_le_bytes());
            e.extend_from_slice(&size.to_le_bytes());
            e.extend_from_slice(&offset.to_le_bytes());
            e.extend_from_slice(b"PK\x06\x07");
            e.extend_from_slice(&[0; 4]);
            e.extend_from_slice(&pos.to_le_bytes());
            e.extend_from_slice(&1u32.to_le_bytes());
            w.write_all(&e).unwrap();
        }
        let mut e = vec![];
        e.extend_from_slice(b"PK\x05\x06");
        e.extend_from_slice(&[0; 4]);
        let (c16, s32, o32) = if zip64 {
            (0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF)
        } else {
            (claimed.min(0xFFFF) as u16, size as u32, offset as u32)
        };
        e.extend_from_slice(&c16.to_le_bytes());
        e.extend_from_slice(&c16.to_le_bytes());
        e.extend_from_slice(&s32.to_le_bytes());
        e.extend_from_slice(&o32.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        w.write_all(&e).unwrap();
        w.flush().unwrap();
    }

    fn judged(n: u64, claimed: u64, zip64: bool) -> Result<(), Refusal> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.zip");
        index_bomb(&p, n, claimed, zip64);
        let mut f = File::open(&p).unwrap();
        let d = read_directory(&mut f).unwrap().expect("a footer");
        assert_eq!(d.size, n * 47);
        check(&d, f.metadata().unwrap().len(), 100_000, 1024)
    }

    #[test]
    fn counts_over_the_limit_are_refused_from_either_footer() {
        assert_eq!(judged(200_000, 200_000, true), Err(Refusal::TooManyEntries));
        assert_eq!(judged(10, 10, false), Ok(()));
        assert_eq!(judged(10, 10, true), Ok(()));
    }

    #[test]
    fn a_footer_understating_its_count_is_refused() {
        // 200,000 records behind a footer that claims 3: the directory is far too big for 3.
        assert_eq!(judged(200_000, 3, false), Err(Refusal::CorruptArchive));
        assert_eq!(judged(200_000, 3, true), Err(Refusal::CorruptArchive));
    }

    #[test]
    fn no_footer_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.zip");
        std::fs::write(&p, b"PK\x03\x04 not really a zip").unwrap();
        assert_eq!(read_directory(&mut File::open(&p).unwrap()).unwrap(), None);
    }
}
