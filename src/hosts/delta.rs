//! A release copied as its change from the release the copy was seeded with (the newest one
//! staged and verified on the host): rsync is handed the files that changed and every folder
//! (`--files-from`), and the host removes from the seed what the new release does not have
//! ([`remote::prune`](super::remote::prune)), instead of rsync comparing all 20,000 files on
//! both sides (~0.25 s of CPU per host here for a 1% change: most of such a staging). Any doubt
//! (a name with a line break or that is not UTF-8, the modes of the release before unknown
//! since a restart) and rsync compares the whole tree, as before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::releases::archive::ManifestEntry;

/// What a release folder here holds: its manifest, each file's mode and every folder.
#[derive(Debug, Default)]
pub struct Layout {
    /// Its manifest.
    pub manifest: Arc<Vec<ManifestEntry>>,
    /// Mode bits of each file, by path.
    pub modes: HashMap<String, u32>,
    /// Every folder below the release's own, by path.
    pub dirs: Vec<String>,
    /// No name has a line break or is not UTF-8 (else no plan is made from it).
    pub plain: bool,
    /// Its files have their content-derived times (`stage.rs`), which only a copy that
    /// rsync compares whole needs.
    pub timed: bool,
}

/// The layouts noted lately, newest last (a few: each is ~3 MB for 20,000 files).
static NOTED: OnceLock<Mutex<Noted>> = OnceLock::new();
const KEPT: usize = 8;
type Noted = Vec<(PathBuf, Arc<Layout>)>;

fn noted() -> std::sync::MutexGuard<'static, Noted> {
    NOTED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The layout noted for `dir`, if any.
pub fn layout_of(dir: &Path) -> Option<Arc<Layout>> {
    noted()
        .iter()
        .find(|(d, _)| d == dir)
        .map(|(_, l)| l.clone())
}

/// Notes `layout` as `dir`'s.
pub fn note(dir: &Path, layout: Layout) -> Arc<Layout> {
    let layout = Arc::new(layout);
    let mut all = noted();
    all.retain(|(d, _)| d != dir);
    all.push((dir.to_owned(), layout.clone()));
    let extra = all.len().saturating_sub(KEPT);
    all.drain(..extra);
    layout
}

/// Every folder below `dir` (by its entries' types: no file is stat'ed); `None` if a name is
/// not plain.
pub fn folders(dir: &Path) -> std::io::Result<Option<Vec<String>>> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_owned(), String::new())];
    while let Some((at, rel)) = todo.pop() {
        for e in std::fs::read_dir(&at)? {
            let e = e?;
            if !e.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                return Ok(None);
            };
            if name.contains(['\n', '\r']) {
                return Ok(None);
            }
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            todo.push((e.path(), path.clone()));
            out.push(path);
        }
    }
    out.sort();
    Ok(Some(out))
}

/// What to send and what to keep.
#[derive(Debug)]
pub struct Plan {
    /// rsync's `--files-from` (NUL-separated, `--from0`): every folder, and each file whose
    /// content or mode differs from the release before.
    pub send: Vec<u8>,
    /// What the host keeps of the seed (one per line, `d <folder>` or `f <file>`, as
    /// `find -printf '%y %P'` names them): every folder and file of the new release.
    pub keep: Vec<u8>,
}

/// The plan for copying the release of `manifest` (`now` its layout) over a seed of the
/// release of `before` (`then` its layout); `None` when the whole tree must be compared.
pub fn plan(
    manifest: &[ManifestEntry],
    before: &[ManifestEntry],
    (now, then): (&Layout, &Layout),
) -> Option<Plan> {
    if !now.plain || !then.plain || manifest.iter().any(|f| f.path.contains(['\n', '\r'])) {
        return None;
    }
    let old = super::verify::shas(before);
    // Not `.`: listed, rsync compares every file of the top folder too (it is the seed's own
    // folder already).
    let (mut send, mut keep) = (Vec::new(), Vec::new());
    for d in &now.dirs {
        send.extend_from_slice(d.as_bytes());
        send.push(0);
        keep.extend_from_slice(format!("d {d}\n").as_bytes());
    }
    for f in manifest {
        let path = f.path.as_str();
        let same = old.get(path) == Some(&f.sha256.as_str())
            && now.modes.contains_key(path)
            && now.modes.get(path) == then.modes.get(path);
        if !same {
            send.extend_from_slice(path.as_bytes());
            send.push(0);
        }
        keep.extend_from_slice(format!("f {path}\n").as_bytes());
    }
    Some(Plan { send, keep })
}

/// A seed's `listing` (`find -printf '%y %P\0'`) against a plan's `keep`: what to remove
/// (NUL-separated paths, for `xargs -0`) and the lines of `keep` the seed lacks. `None` when
/// a name came back altered (it was not UTF-8: the listing was read lossily), or `keep` is
/// not text.
pub fn against(keep: &[u8], listing: &str) -> Option<(Vec<u8>, Vec<String>)> {
    let mut wanted: std::collections::HashSet<&str> =
        std::str::from_utf8(keep).ok()?.lines().collect();
    let mut gone = Vec::new();
    for entry in listing.split('\0').filter(|e| !e.is_empty()) {
        if entry.contains(char::REPLACEMENT_CHARACTER) {
            return None;
        }
        if !wanted.remove(entry) {
            gone.extend_from_slice(entry.get(2..).unwrap_or(entry).as_bytes());
            gone.push(0);
        }
    }
    let mut missing: Vec<String> = wanted.into_iter().map(str::to_owned).collect();
    missing.sort();
    Some((gone, missing))
}

#[cfg(test)]
mod tests {
    use crate::hosts::delta::*;

    fn m(path: &str, sha: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            size: 1,
            sha256: sha.into(),
        }
    }

    fn layout(modes: &[(&str, u32)], dirs: &[&str]) -> Layout {
        Layout {
            manifest: Default::default(),
            modes: modes.iter().map(|(p, m)| ((*p).into(), *m)).collect(),
            dirs: dirs.iter().map(|d| (*d).into()).collect(),
            plain: true,
            timed: true,
        }
    }

    #[test]
    fn only_what_changed_travels_and_only_the_new_release_is_kept() {
        let before = [
            m("a/x", "1"),
            m("a/y", "2"),
            m("gone", "3"),
            m("run.sh", "4"),
        ];
        let after = [
            m("a/x", "1"),
            m("a/y", "9"),
            m("b/new", "5"),
            m("run.sh", "4"),
        ];
        let then = layout(
            &[
                ("a/x", 0o644),
                ("a/y", 0o644),
                ("gone", 0o644),
                ("run.sh", 0o644),
            ],
            &["a"],
        );
        // run.sh became executable: same content, sent again (its mode is the file's own).
        let now = layout(
            &[
                ("a/x", 0o644),
                ("a/y", 0o644),
                ("b/new", 0o644),
                ("run.sh", 0o755),
            ],
            &["a", "b"],
        );
        let p = plan(&after, &before, (&now, &then)).unwrap();
        let send: Vec<&str> = std::str::from_utf8(&p.send)
            .unwrap()
            .split_terminator('\0')
            .collect();
        assert_eq!(send, ["a", "b", "a/y", "b/new", "run.sh"]);
        let keep = String::from_utf8(p.keep).unwrap();
        assert_eq!(keep, "d a\nd b\nf a/x\nf a/y\nf b/new\nf run.sh\n");
        // A name with a line break, or a layout with one: the whole tree is compared.
        assert!(plan(&[m("odd\nname", "1")], &before, (&now, &then)).is_none());
        let odd = Layout {
            plain: false,
            ..layout(&[], &[])
        };
        assert!(plan(&after, &before, (&odd, &then)).is_none());
    }

    #[test]
    fn folders_are_listed_below_the_release() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
        std::fs::write(tmp.path().join("a/file"), "x").unwrap();
        assert_eq!(
            folders(tmp.path()).unwrap(),
            Some(vec!["a".to_owned(), "a/b".into(), "empty".into()])
        );
        std::fs::create_dir_all(tmp.path().join("bad\nname")).unwrap();
        assert_eq!(folders(tmp.path()).unwrap(), None);
    }

    #[test]
    fn a_listing_names_what_goes_and_what_is_missing() {
        let keep = b"d a\nf a/x\nf a/y\nf top\n";
        let listing = "d a\0f a/x\0f a/stray\0d old\0f old/z\0l link\0f top\0";
        let (gone, missing) = against(keep, listing).unwrap();
        assert_eq!(gone, b"a/stray\0old\0old/z\0link\0");
        assert_eq!(missing, vec!["f a/y".to_owned()]);
        // Nothing to do for a seed that is what stays.
        let (gone, missing) = against(keep, "d a\0f a/x\0f a/y\0f top\0").unwrap();
        assert!(gone.is_empty() && missing.is_empty());
        // A name read lossily (not UTF-8) leaves the comparison to the host.
        assert!(against(keep, "f caf\u{FFFD}\0").is_none());
    }
}
