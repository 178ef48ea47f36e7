//! Hostile and valid archives built in memory and run through `extract`.

use super::engine::WRITTEN;
use super::rules::*;
use super::*;
use flate2::{write::GzEncoder, Compression};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use tempfile::TempDir;
use zip::write::SimpleFileOptions;

/// A tar member: raw name, type byte, data (the link target for links).
type T<'a> = (&'a [u8], u8, &'a [u8]);

/// A GNU header with raw name bytes, which `set_path` would refuse, and mode 0777.
fn header(name: &[u8], kind: u8, size: usize) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size as u64);
    h.set_mode(0o777);
    h.set_cksum();
    h
}

/// A tar; names over 100 bytes or holding NUL go into a GNU long-name record.
fn tar(members: &[T]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for &(name, kind, data) in members {
        let long = name.len() > 100 || name.contains(&0);
        if long {
            let name = [name, b"\0"].concat();
            let h = header(b"././@LongLink", b'L', name.len());
            b.append(&h, &name[..]).unwrap();
        }
        let link = matches!(kind, b'1' | b'2');
        let body = if link { &[][..] } else { data };
        let mut h = header(if long { b"long" } else { name }, kind, body.len());
        if link {
            h.as_old_mut().linkname[..data.len()].copy_from_slice(data);
            h.set_cksum();
        }
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn tgz(members: &[T]) -> Vec<u8> {
    gz(&tar(members))
}

/// A zip member: file with raw name and data, directory, or symbolic link to a target.
enum Z<'a> {
    F(&'a [u8], &'a [u8]),
    D(&'a str),
    L(&'a str, &'a str),
}

/// A zip. Names that are not UTF-8 or repeat an earlier one are written as same-length
/// placeholders ("RRRR"...) and patched afterwards: the zip writer takes only new `&str` names.
fn zip(members: &[Z]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let (o, mut seen, mut marks) = (SimpleFileOptions::default(), vec![], vec![]);
    let o = o.unix_permissions(0o600);
    for (m, c) in members.iter().zip(b'Q'..) {
        match *m {
            Z::F(name, data) => {
                let mut text = String::from_utf8(name.to_vec()).unwrap_or_default();
                if text.is_empty() || seen.contains(&text) {
                    text = char::from(c).to_string().repeat(name.len());
                    marks.push((text.clone(), name));
                }
                seen.push(text.clone());
                w.start_file(text, o).unwrap();
                w.write_all(data).map_err(Into::into)
            }
            Z::D(name) => w.add_directory(name, o),
            Z::L(name, target) => w.add_symlink(name, target, o),
        }
        .unwrap();
    }
    let mut zipped = w.finish().unwrap().into_inner();
    for (mark, name) in marks {
        zipped = patch(zipped, mark.as_bytes(), name);
    }
    zipped
}

/// Overwrites every occurrence of `from` with `to`, for fields the zip writer will not produce.
fn patch(mut b: Vec<u8>, from: &[u8], to: &[u8]) -> Vec<u8> {
    while let Some(i) = b.windows(from.len()).position(|w| w == from) {
        b[i..i + to.len()].copy_from_slice(to);
    }
    b
}

/// A tar.gz and a zip holding a good file, then one file per raw name.
fn both(names: &[&[u8]]) -> [Vec<u8>; 2] {
    let names = [&[&b"ok/index.html"[..]], names].concat();
    let tars: Vec<T> = names.iter().map(|n| (*n, b'0', &b"x"[..])).collect();
    let zips: Vec<Z> = names.iter().map(|n| Z::F(n, b"x")).collect();
    [tgz(&tars), zip(&zips)]
}

/// Deterministic bytes that do not compress.
fn noise(n: usize) -> Vec<u8> {
    let byte = |i: u64| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8;
    (0..n as u64).map(byte).collect()
}

/// A scratch root holding the upload and an empty `releases/` parent; dest is `releases/r1`.
fn site(bytes: &[u8]) -> (TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (src, dest) = (dir.path().join("upload.bin"), dir.path().join("releases"));
    let dest = dest.join("r1");
    fs::write(&src, bytes).unwrap();
    fs::create_dir(dir.path().join("releases")).unwrap();
    (dir, src, dest)
}

fn ls(dir: &Path) -> Vec<String> {
    let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name());
    let mut names: Vec<_> = names.map(|n| n.into_string().unwrap()).collect();
    names.sort();
    names
}

/// Expects a refusal and checks nothing was left in dest, its parent, or next to the parent.
fn refused(bytes: &[u8], limits: &Limits) -> ArchiveError {
    let (dir, src, dest) = site(bytes);
    let err = extract(&src, bytes.len() as u64, &dest, limits).unwrap_err();
    assert!(!dest.exists(), "{err:?}");
    assert_eq!(ls(dir.path()), ["releases", "upload.bin"], "{err:?}");
    assert!(ls(&dir.path().join("releases")).is_empty(), "{err:?}");
    assert!(err.message.len() > 40 && err.to_string() == err.message);
    err
}

fn expect(cases: &[(&str, Vec<u8>, &str)], limits: &Limits) {
    for (label, bytes, code) in cases {
        assert_eq!(
            (*label, refused(bytes, limits).code.as_str()),
            (*label, *code)
        );
    }
}

/// Extracts with default limits; returns the scratch dir, dest and the result.
fn extracted(bytes: &[u8]) -> (TempDir, PathBuf, Extracted) {
    let (dir, src, dest) = site(bytes);
    let done = extract(&src, bytes.len() as u64, &dest, &Limits::default()).unwrap();
    assert_eq!(ls(&dir.path().join("releases")), ["r1"]); // no temp left behind
    (dir, dest, done)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A GNU sparse file and a PAX-format sparse file, each one byte long.
fn sparse_tars() -> [Vec<u8>; 2] {
    let (mut gnu, mut h) = (tar::Builder::new(Vec::new()), header(b"sparse", b'S', 1));
    let g = h.as_gnu_mut().unwrap();
    (g.sparse[0].offset, g.sparse[0].numbytes) = (*b"00000000000\0", *b"00000000001\0");
    g.realsize = *b"00000000001\0";
    h.set_cksum();
    gnu.append(&h, &b"x"[..]).unwrap();
    let mut pax = tar::Builder::new(Vec::new());
    let keys = [("GNU.sparse.major", &b"1"[..]), ("GNU.sparse.minor", b"0")];
    pax.append_pax_extensions(keys).unwrap();
    let h = header(b"GNUSparseFile.0/f", b'0', 1);
    pax.append(&h, &b"x"[..]).unwrap();
    [gnu, pax].map(|b| gz(&b.into_inner().unwrap()))
}

#[test]
fn hostile_names_are_refused_in_tar_and_zip() {
    let (long, deep) = ("n".repeat(300), "d/".repeat(40) + "f");
    let wide = "abcdefghi/".repeat(110) + "f";
    let (ctl, dup, clash) = ("control_character", "duplicate_entry", "path_conflict");
    #[rustfmt::skip]
    let cases: &[(&[&str], &str)] = &[
        (&["/tmp/cutover-escape-probe"], "absolute_path"), (&["C:/x.txt"], "drive_letter"),
        (&["../escape"], "parent_path"), (&["a/../../escape"], "parent_path"),
        (&["a//b"], "bad_path"), (&["a/./b"], "bad_path"), (&["a\\b"], "backslash"),
        (&["a\nb"], ctl), (&["a\0b"], ctl), (&["a\x7fb"], ctl), (&["a\u{85}b"], ctl), (&["a\u{2028}b"], ctl),
        (&[&long], "name_too_long"), (&[&wide], "name_too_long"), (&[&deep], "path_too_deep"),
        (&["a.txt", "a.txt"], dup), (&["a.txt", "./a.txt"], dup), (&["A.txt", "a.txt"], dup),
        (&["Docs/a.txt", "docs/b.txt"], dup), (&["a.txt", "a.txt/b"], clash), (&["a.txt/b", "a.txt"], clash),
    ];
    for &(names, code) in cases {
        let raw: Vec<_> = names.iter().map(|n| n.as_bytes()).collect();
        for bytes in both(&raw) {
            assert_eq!(refused(&bytes, &Limits::default()).code, code, "{names:?}");
        }
    }
    for bytes in both(&[&b"caf\xe9.html"[..]]) {
        assert_eq!(refused(&bytes, &Limits::default()).code, "non_utf8_name");
    }
    assert!(!Path::new("/tmp/cutover-escape-probe").exists());
}

#[test]
fn special_broken_and_foreign_archives_are_refused() {
    let one = |name: &'static [u8], kind| tgz(&[(b"ok.html", b'0', b"x"), (name, kind, b"x")]);
    let [gnu_sparse, pax_sparse] = sparse_tars();
    let mut encrypted = zip(&[Z::F(b"a.txt", b"x")]);
    let cd = encrypted.windows(4).position(|w| w == b"PK\x01\x02");
    let cd = cd.unwrap();
    encrypted[cd + 8] |= 1;
    let mut bzip2 = encrypted.clone();
    (bzip2[cd + 8], bzip2[cd + 10]) = (0, 12);
    let attrs = |mode: u32| (mode << 16).to_le_bytes();
    let typed = |mode| patch(zip(&[Z::F(b"odd", b"")]), &attrs(0o100600), &attrs(mode));
    let data = noise(200_000);
    let good_tgz = tgz(&[(b"a.bin", b'0', &data), (b"b.bin", b'0', &data)]);
    let good_zip = zip(&[Z::F(b"a.bin", &data), Z::F(b"b.bin", &data)]);
    let (mut flipped, n, z) = (good_tgz.clone(), good_tgz.len(), good_zip.len());
    flipped[n / 2] ^= 0x55;
    let mut bad_crc = good_tgz.clone(); // only reading to the very end notices this
    bad_crc[n - 8] ^= 1;
    let (sf, bad, unknown) = ("special_file", "corrupt_archive", "unsupported_format");
    #[rustfmt::skip]
    expect(&[
        ("tar symlink", tgz(&[(b"index.html", b'0', b"hi"), (b"logo.png", b'2', b"../../etc/passwd")]), "symlink"),
        ("zip symlink", zip(&[Z::F(b"index.html", b"x"), Z::L("logo.png", "/etc/passwd")]), "symlink"),
        ("hard link", one(b"copy.html", b'1'), "hard_link"), ("volume label", one(b"label", b'V'), "unsupported_entry"),
        ("tar char", one(b"null", b'3'), sf), ("block", one(b"sda", b'4'), sf), ("tar fifo", one(b"pipe", b'6'), sf),
        ("zip fifo", typed(0o010600), sf), ("zip char", typed(0o020600), sf), ("zip socket", typed(0o140600), sf),
        ("gnu sparse", gnu_sparse, "sparse_file"), ("pax sparse", pax_sparse, "sparse_file"),
        ("encrypted", encrypted, "encrypted"), ("bzip2", bzip2, "unsupported_compression"),
        ("data behind slash", one(b"a/", b'0'), "bad_path"),
        ("tar folder twice", tgz(&[(b"d/", b'5', b""), (b"d/", b'5', b"")]), "duplicate_entry"),
        ("zip folder twice", zip(&[Z::D("d/"), Z::F(b"x", b""), Z::D("D/")]), "duplicate_entry"),
        ("zip folder then file", zip(&[Z::D("a/"), Z::F(b"a", b"y")]), "path_conflict"),
        ("truncated tar.gz", good_tgz[..n / 2].to_vec(), bad), ("damaged tar.gz", flipped, bad), ("bad gzip crc", bad_crc, bad),
        ("truncated zip", good_zip[..z - 30].to_vec(), bad), ("zip cut in half", good_zip[..z / 2].to_vec(), bad),
        ("gzip of a non-tar", gz(b"<html>just a page</html>"), bad), ("empty zip", zip(&[]), "empty_archive"),
        ("only folders", tgz(&[(b"site/", b'5', b""), (b"site/img/", b'5', b"")]), "empty_archive"),
        ("png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(), unknown), ("empty file", Vec::new(), unknown),
        ("text", b"hello, this is not an archive\n".repeat(20), unknown),
    ], &Limits::default());
}

#[test]
fn limits_are_enforced_on_real_bytes() {
    let mut limits = Limits::default();
    (limits.max_file_bytes, limits.max_entries) = (10, 3);
    limits.max_unpacked_bytes = 15;
    let [many_tar, many_zip] = both(&[b"a", b"b"]); // 3 files and the implied "ok/"
    let ten = &b"0123456789"[..];
    #[rustfmt::skip]
    expect(&[
        ("file too large", tgz(&[(b"a", b'0', b"01234567890")]), "file_too_large"),
        ("zip file too large", zip(&[Z::F(b"a", b"01234567890")]), "file_too_large"),
        ("total too large", tgz(&[(b"a", b'0', ten), (b"b", b'0', ten)]), "unpacked_too_large"),
        ("too many entries", many_tar, "too_many_entries"),
        ("zip too many entries", many_zip, "too_many_entries"),
        ("implied folders count", tgz(&[(b"a/b/c/d", b'0', b"x")]), "too_many_entries"),
    ], &limits);
}

#[test]
fn gzip_bomb_is_stopped_early() {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let zeros = std::io::repeat(0).take(300 << 20);
    let h = header(b"bomb.bin", b'0', 300 << 20);
    b.append(&h, zeros).unwrap();
    let bomb = b.into_inner().unwrap().finish().unwrap();
    WRITTEN.set(0);
    assert_eq!(refused(&bomb, &Limits::default()).code, "compression_ratio");
    let written = WRITTEN.get();
    assert!(written <= RATIO_FLOOR, "wrote {written} bytes");
}

#[test]
fn valid_archives_in_every_format() {
    let (big, long) = (noise(3 << 20), format!("{}.html", "l".repeat(150)));
    #[rustfmt::skip]
    let members: [T; 7] = [
        (b"index.html", b'0', b"<h1>hi</h1>"), (b"css/", b'5', b""), (b"css/site.css", b'0', b"body{}"),
        (b"img/", b'5', b""), (b"docs/a/b.txt", b'\0', b"old type"), (b"big.bin", b'7', &big),
        (long.as_bytes(), b'0', b"long"),
    ];
    #[rustfmt::skip]
    let zipped = zip(&[
        Z::F(b"index.html", b"<h1>hi</h1>"), Z::D("css/"), Z::F(b"css/site.css", b"body{}"), Z::D("img/"),
        Z::F(b"docs/a/b.txt", b"old type"), Z::F(b"big.bin", &big), Z::F(long.as_bytes(), b"long"),
    ]);
    let files: Vec<_> = members.iter().filter(|m| m.1 != b'5').collect();
    let entry = |&&(name, _, data): &&T| ManifestEntry {
        path: String::from_utf8(name.to_vec()).unwrap(),
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
    };
    let mut want: Vec<_> = files.iter().map(entry).collect();
    want.sort_by(|a, b| a.path.cmp(&b.path));
    let plain = tar(&members);
    let zstd = zstd::encode_all(&plain[..], 3).unwrap();
    let all = [(Format::TarGz, gz(&plain)), (Format::TarZst, zstd)];
    let all = all
        .into_iter()
        .chain([(Format::Tar, plain), (Format::Zip, zipped)]);
    for (format, bytes) in all {
        let (_dir, dest, x) = extracted(&bytes);
        let got = (x.format, x.dirs, x.unwrapped.as_deref(), &x.files);
        assert_eq!(got, (format, 4, None, &want));
        assert_eq!(x.unpacked_bytes, want.iter().map(|f| f.size).sum::<u64>());
        for &&(name, _, data) in &files {
            let path = dest.join(std::str::from_utf8(name).unwrap());
            let got = (fs::read(&path).unwrap(), mode(&path));
            assert_eq!(got, (data.to_vec(), 0o644));
        }
        for dir in ["", "css", "img", "docs", "docs/a"] {
            assert_eq!(mode(&dest.join(dir)), 0o755, "{dir}");
        }
        assert!(ls(&dest.join("img")).is_empty());
    }
}

#[test]
fn single_folder_is_unwrapped() {
    let git: T = (
        b"pax_global_header",
        b'g',
        b"52 comment=0123456789abcdef0123456789abcdef01234567\n",
    );
    let dir = |n: &'static str| -> T { (n.as_bytes(), b'5', b"") };
    let file = |n: &'static str| -> T { (n.as_bytes(), b'0', b"x") };
    #[rustfmt::skip]
    let cases: Vec<(Vec<u8>, Option<&str>, &[&str])> = vec![
        (tgz(&[dir("site/"), file("site/index.html"), file("site/css/a.css")]), Some("site"), &["css/a.css", "index.html"]),
        (tgz(&[dir("./"), dir("./site/"), file("./site/x.html")]), Some("site"), &["x.html"]),
        (tgz(&[git, dir("site/"), file("site/a.txt")]), Some("site"), &["a.txt"]),
        (zip(&[Z::D("site/"), Z::F(b"site/index.html", b"x"), Z::F(b"__MACOSX/site/._index.html", b"x")]),
            Some("site"), &["index.html"]),
        (tgz(&[file("a/x"), file("b/y")]), None, &["a/x", "b/y"]),
        (tgz(&[file("index.html")]), None, &["index.html"]),
        (zip(&[Z::F(b"index.html", b"x")]), None, &["index.html"]),
        (tgz(&[dir("./"), file("./index.html"), dir("./css/"), file("./css/a.css")]), None, &["css/a.css", "index.html"]),
    ];
    for (bytes, top, want) in cases {
        let (_dir, dest, x) = extracted(&bytes);
        let paths: Vec<_> = x.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!((x.unwrapped.as_deref(), paths.as_slice()), (top, want));
        assert!(want.iter().all(|p| fs::read(dest.join(p)).unwrap() == b"x"));
        assert_eq!(mode(&dest), 0o755);
        assert!(top.is_none_or(|top| !dest.join(top).exists()));
    }
}

#[test]
fn detection_errors_and_existing_destination() {
    let (_dir, src, dest) = site(&tgz(&[(b"a", b'0', b"x")]));
    assert_eq!(detect(&src), Ok(Format::TarGz));
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep"), b"mine").unwrap();
    let err = extract(&src, 100, &dest, &Limits::default()).unwrap_err();
    assert_eq!(err.code, "destination_exists");
    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"mine");
    let name = shown(&[b"a\n\x1b".as_slice(), &[b'x'; 300]].concat());
    assert!(name.starts_with("a\\n\\u{1b}x") && name.ends_with("x…"));
    let codes = [28, 5].map(|n| io_failure(&io::Error::from_raw_os_error(n)).code);
    assert_eq!(codes, ["disk_full", "io_error"]);
    let full = io::Error::from(io::ErrorKind::StorageFull);
    assert_eq!(io_failure(&full).code, "disk_full");
    let formats = [Format::TarGz, Format::TarZst, Format::Tar, Format::Zip];
    assert_eq!(
        formats.map(Format::as_str),
        ["tar.gz", "tar.zst", "tar", "zip"]
    );
}
