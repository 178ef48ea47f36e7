//! Builders for test archives.

use std::io::Write;

/// A tar archive of (path, content) files; a path ending in '/' is a folder.
pub fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            h.set_mode(0o700);
        } else {
            h.set_size(content.len() as u64);
            h.set_mode(0o600);
        }
        b.append_data(&mut h, path, *content).expect("tar entry");
    }
    b.into_inner().expect("tar")
}

/// A gzip-compressed tar.
pub fn targz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar(entries)).unwrap();
    gz.finish().unwrap()
}

/// A zstd-compressed tar.
pub fn tarzst(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zstd::encode_all(&tar(entries)[..], 3).unwrap()
}

/// A zip of (path, content) files.
pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (path, content) in entries {
        if path.ends_with('/') {
            w.add_directory(*path, opts).unwrap();
        } else {
            w.start_file(*path, opts).unwrap();
            w.write_all(content).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// A tar.gz holding a symbolic link (tar's builder writes the raw entry as told).
pub fn targz_with_symlink() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "index.html", "/etc/passwd").unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&b.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// A tar.gz whose entry name climbs out with `..` (written raw: tar's set_path refuses it).
pub fn targz_with_name(name: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    raw.extend_from_slice(b"bad");
    raw.resize(512 * 2, 0);
    raw.resize(512 * 4, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}
