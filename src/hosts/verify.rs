//! Checking a staged copy on the host against the release's manifest, by SHA-256, on the host.
//!
//! Files hard-linked from the release staged before (same path, same SHA-256 in its
//! manifest) are that verified file itself and are not read again: re-reading all of a
//! 200 MB release on every host for a 1% change cost more than copying the change. Which files
//! those are comes from rsync itself where it can ([`to_read`]: every file it did not write
//! is still the link the copy was seeded with), else from the host ([`SCRIPT`]: same inode
//! as the release linked from; two listings of the whole tree, which took ~0.25 s of a 1%
//! staging of 20,000 files). Every other file is read. The script uses `openssl dgst` where
//! the host has it (it uses the CPU's SHA instructions: 3-4x faster than coreutils 9.1's
//! `sha256sum` here), one process per CPU of the host for a thousand files and more (each to
//! a file of its own: lines written by several processes into one file can interleave),
//! else `sha256sum -c`; and flushes the folder's file system while it reads, so the rename
//! into place that follows does not wait for the copy's writes.

use std::collections::HashMap;

use super::host::Host;
use super::remote::sh;
use super::ssh::Ssh;
use crate::releases::archive::ManifestEntry;

/// `$1` the folder, `$2` the release linked from (or empty); stdin the lines of
/// [`checksums`]. Exit 0: all match; 4: the first bad file is on stdout; 3: no folder.
/// File lists come from `find -printf` (GNU findutils: Debian's hosts have it) and leave out
/// names with a newline, which are always read.
pub(crate) const SCRIPT: &str = r#"cd "$1" || exit 3; prev=$2; t=$(mktemp -d) || exit 3
trap 'rm -rf "$t"' EXIT
cat > "$t/sums"
nl='
'
if [ -n "$prev" ] && [ -d "$prev" ]; then
  find . -type f ! -path "*$nl*" -printf '%i %p\n' > "$t/here"
  (cd "$prev" && find . -type f ! -path "*$nl*" -printf '%i %p\n') > "$t/prev"
  awk -v H="$t/here" -v P="$t/prev" 'BEGIN {
      while ((getline l < P) > 0) p[l] = 1
      while ((getline l < H) > 0) if (l in p) same[substr(l, index(l, " ") + 1)] = 1 }
    /^=/ { l = substr($0, 2); if (substr(l, 67) in same) next; print l; next }
    { print }' "$t/sums" > "$t/check"
else
  sed 's/^=//' "$t/sums" > "$t/check"
fi
s=0
if [ ! -s "$t/check" ]; then :
elif command -v openssl >/dev/null 2>&1 && ! grep -q '^\\' "$t/check"; then
  n=$(nproc 2>/dev/null) || n=1; per=$(( ($(wc -l < "$t/check") + n - 1) / n ))
  [ "$per" -ge 1000 ] || per=1000
  cut -c67- "$t/check" | tr '\n' '\0' | xargs -0r -P "$n" -n "$per" sh -c \
    'f=$(mktemp "$0.XXXXXX") && exec openssl dgst -sha256 -r "$@" > "$f"' "$t/got" 2>/dev/null
  cat "$t"/got.* > "$t/got" 2>/dev/null
  awk 'NR == FNR { want[substr($0, 67)] = substr($0, 1, 64); next }
    { f = substr($0, 67); if (want[f] != substr($0, 1, 64)) { print f ": FAILED"; exit 1 }; delete want[f] }
    END { for (f in want) { print f ": FAILED open or read"; exit 1 } }' "$t/check" "$t/got" || s=1
else
  sha256sum --quiet --strict -c - < "$t/check" 2>&1 || s=1
fi
[ $s -eq 0 ] || exit 4"#;

/// The files of `manifest` a copy seeded with hard links to the release of manifest
/// `linked` must have read, when rsync wrote `written` (its `%n` names) over the seed: those
/// it wrote, those whose content differs from the linked release's, and those whose names
/// only `sha256sum`'s escapes can carry. Every other file is a link to the verified release's
/// own (rsync replaces a file it changes; it does not write through the link). `None` when a
/// name rsync printed cannot be matched (it escaped a character): then the host compares
/// inodes instead ([`SCRIPT`]).
pub fn to_read(
    manifest: &[ManifestEntry],
    linked: &[ManifestEntry],
    written: &[String],
) -> Option<Vec<ManifestEntry>> {
    if written.iter().any(|w| w.contains('\\')) {
        return None;
    }
    let wrote: std::collections::HashSet<&str> = written.iter().map(String::as_str).collect();
    let before = shas(linked);
    let read = manifest.iter().filter(|f| {
        wrote.contains(f.path.as_str())
            || before.get(f.path.as_str()) != Some(&f.sha256.as_str())
            || f.path.contains(['\\', '\n'])
    });
    Some(read.cloned().collect())
}

/// Each file's SHA-256 in `manifest`, by path.
pub(crate) fn shas(manifest: &[ManifestEntry]) -> HashMap<&str, &str> {
    manifest
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect()
}

/// `sha256sum -c` lines for a manifest (GNU's escaped form for names with `\` or a newline).
/// A file whose path and SHA-256 are the same in `linked` (the manifest of the release rsync
/// hard-linked from) gets a leading `=`: see [`SCRIPT`].
pub fn checksums(manifest: &[ManifestEntry], linked: Option<&[ManifestEntry]>) -> String {
    let before = shas(linked.unwrap_or_default());
    let mut out = String::new();
    for f in manifest {
        if f.path.contains(['\\', '\n']) {
            let name = f.path.replace('\\', "\\\\").replace('\n', "\\n");
            out.push_str(&format!("\\{}  ./{name}\n", f.sha256));
        } else {
            let same = before.get(f.path.as_str()) == Some(&f.sha256.as_str());
            let mark = if same { "=" } else { "" };
            out.push_str(&format!("{mark}{}  ./{}\n", f.sha256, f.path));
        }
    }
    out
}

/// Checks every file of `manifest` under `folder` on the host: `None` when all match, else
/// which do not. With `linked` (the folder of the verified release the copy was linked from,
/// and its manifest), files that are that release's own are not read again (module comment).
pub async fn verify(
    ssh: &Ssh,
    host: &Host,
    folder: &str,
    manifest: &[ManifestEntry],
    linked: Option<(&str, &[ManifestEntry])>,
) -> Result<Option<String>, String> {
    let sums = checksums(manifest, linked.map(|l| l.1));
    let prev = linked.map(|l| l.0).unwrap_or("");
    match sh(ssh, host, SCRIPT, &[folder, prev], Some(sums.as_bytes())).await {
        Ok(r) if r.ok => Ok(None),
        Ok(r) => {
            let first = r.stdout.lines().next().unwrap_or(&r.stderr).to_owned();
            Ok(Some(if first.is_empty() {
                "the folder is missing".into()
            } else {
                first
            }))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::Path;
    use std::process::{Command, Stdio};

    use sha2::{Digest, Sha256};

    use crate::hosts::verify::*;

    fn entry(dir: &Path, path: &str) -> ManifestEntry {
        let data = std::fs::read(dir.join(path)).unwrap();
        ManifestEntry {
            path: path.into(),
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(&data)),
        }
    }

    /// The script run here, as the host runs it: `Some(first bad line)` or `None`.
    fn run(folder: &Path, prev: &str, sums: &str, path: &str) -> Option<String> {
        let mut child = Command::new("sh")
            .args(["-c", SCRIPT, "cutover"])
            .arg(folder)
            .arg(prev)
            .env("PATH", path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // A script that exits early (no folder) closes its end: judged by its status, as
        // `Ssh::run` does.
        let _ = child.stdin.take().unwrap().write_all(sums.as_bytes());
        let out = child.wait_with_output().unwrap();
        let words = String::from_utf8_lossy(&out.stdout).into_owned();
        (!out.status.success()).then_some(words)
    }

    #[test]
    fn what_rsync_wrote_and_what_changed_are_read_and_nothing_else() {
        let m = |path: &str, sha: &str| ManifestEntry {
            path: path.into(),
            size: 1,
            sha256: sha.into(),
        };
        let before = [m("a", "1"), m("b", "2"), m("c", "3"), m("d", "4")];
        let after = [
            m("a", "1"),
            m("b", "9"),
            m("c", "3"),
            m("d", "4"),
            m("e", "5"),
        ];
        let paths = |v: Option<Vec<ManifestEntry>>| -> Option<Vec<String>> {
            v.map(|v| v.into_iter().map(|f| f.path).collect())
        };
        // b changed, e is new, c was written by rsync (its mode changed, say): all read; a
        // and d are the links and are not; a folder's line matches no file.
        let wrote = [
            "b".to_owned(),
            "c".to_owned(),
            "e".to_owned(),
            "x/".to_owned(),
        ];
        assert_eq!(
            paths(to_read(&after, &before, &wrote)),
            Some(vec!["b".into(), "c".into(), "e".into()])
        );
        // A file changed in the manifest is read even if rsync says it did not write it.
        assert_eq!(
            paths(to_read(&after, &before, &[])),
            Some(vec!["b".into(), "e".into()])
        );
        // A name rsync escaped cannot be matched: the host compares inodes instead.
        assert_eq!(to_read(&after, &before, &["new\\#012line".into()]), None);
        // A name with a backslash is always read.
        let odd = [m("a\\b", "1")];
        assert_eq!(paths(to_read(&odd, &odd, &[])), Some(vec!["a\\b".into()]));
    }

    #[test]
    fn linked_files_are_trusted_and_every_other_file_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let (prev, next) = (tmp.path().join("r1"), tmp.path().join("r2"));
        std::fs::create_dir_all(prev.join("a b")).unwrap();
        for (name, text) in [("a b/same.txt", "same"), ("changed.txt", "old")] {
            std::fs::write(prev.join(name), text).unwrap();
        }
        std::fs::create_dir_all(next.join("a b")).unwrap();
        std::fs::hard_link(prev.join("a b/same.txt"), next.join("a b/same.txt")).unwrap();
        std::fs::write(next.join("changed.txt"), "new").unwrap();
        let names = ["a b/same.txt", "changed.txt"];
        let before: Vec<_> = names.iter().map(|n| entry(&prev, n)).collect();
        let after: Vec<_> = names.iter().map(|n| entry(&next, n)).collect();
        let sums = checksums(&after, Some(&before));
        assert!(
            sums.starts_with('='),
            "the unchanged file is marked: {sums}"
        );
        let prev_s = prev.to_str().unwrap();
        // With openssl and without (sha256sum): the same verdicts.
        let no_openssl = tmp.path().join("bin");
        std::fs::create_dir_all(&no_openssl).unwrap();
        for tool in [
            "sh",
            "find",
            "awk",
            "sed",
            "cut",
            "tr",
            "xargs",
            "grep",
            "mktemp",
            "rm",
            "cat",
            "sync",
            "sha256sum",
        ] {
            let real = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap();
            let real = String::from_utf8_lossy(&real.stdout).trim().to_owned();
            std::os::unix::fs::symlink(real, no_openssl.join(tool)).unwrap();
        }
        let everywhere = std::env::var("PATH").unwrap();
        for path in [everywhere.as_str(), no_openssl.to_str().unwrap()] {
            assert_eq!(run(&next, prev_s, &sums, path), None, "PATH={path}");
            // A changed file is read: corrupting it is found.
            std::fs::write(next.join("changed.txt"), "bad").unwrap();
            let bad = run(&next, prev_s, &sums, path).expect("corruption found");
            assert!(bad.contains("changed.txt"), "{bad}");
            std::fs::write(next.join("changed.txt"), "new").unwrap();
            // A marked file that is not the linked one is read too.
            std::fs::remove_file(next.join("a b/same.txt")).unwrap();
            std::fs::write(next.join("a b/same.txt"), "smae").unwrap();
            let bad = run(&next, prev_s, &sums, path).expect("an unlinked copy is read");
            assert!(bad.contains("same.txt"), "{bad}");
            // A missing file fails.
            std::fs::remove_file(next.join("a b/same.txt")).unwrap();
            assert!(run(&next, prev_s, &sums, path).is_some(), "missing file");
            std::fs::hard_link(prev.join("a b/same.txt"), next.join("a b/same.txt")).unwrap();
            // Without the linked release, every file is read (and all match).
            assert_eq!(run(&next, "", &sums, path), None);
        }
        // The linked file is not read: changed through the link (both releases), it passes.
        std::fs::write(prev.join("a b/same.txt"), "smae").unwrap();
        assert_eq!(run(&next, prev_s, &sums, &everywhere), None);
        assert!(run(&next, "", &sums, &everywhere).is_some());
        assert!(run(&tmp.path().join("nowhere"), "", &sums, &everywhere).is_some());
    }
}
