//! What changed from one release to another, by their manifests.

use serde::Serialize;

use crate::releases::archive::ManifestEntry;

/// Files added, removed and changed from `a` to `b`.
#[derive(Debug, Default, Serialize)]
pub struct Comparison {
    /// In b only.
    pub added: Vec<String>,
    /// In a only.
    pub removed: Vec<String>,
    /// In both, different content.
    pub changed: Vec<String>,
    /// In both, same content.
    pub unchanged: usize,
}

/// Compares two manifests (both sorted by path).
pub fn compare(a: &[ManifestEntry], b: &[ManifestEntry]) -> Comparison {
    let mut out = Comparison::default();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.path == y.path => {
                if x.sha256 == y.sha256 {
                    out.unchanged += 1
                } else {
                    out.changed.push(x.path.clone())
                }
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.path < y.path => {
                out.removed.push(x.path.clone());
                i += 1;
            }
            (Some(_), Some(y)) => {
                out.added.push(y.path.clone());
                j += 1;
            }
            (Some(x), None) => {
                out.removed.push(x.path.clone());
                i += 1;
            }
            (None, Some(y)) => {
                out.added.push(y.path.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::releases::compare::*;

    fn m(path: &str, hash: &str) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            size: 1,
            sha256: hash.into(),
        }
    }

    #[test]
    fn comparison_finds_added_removed_changed() {
        let a = [m("a", "1"), m("b", "2"), m("d", "4")];
        let b = [m("b", "2"), m("c", "3"), m("d", "5")];
        let c = compare(&a, &b);
        assert_eq!(c.added, ["c"]);
        assert_eq!(c.removed, ["a"]);
        assert_eq!(c.changed, ["d"]);
        assert_eq!(c.unchanged, 1);
    }
}
