//! The two releases switch_downtime alternates between, and the judge that tells a torn
//! answer (headers of one release, body of the other, or a short body) from a whole one.

use std::sync::Arc;

use super::load::Judge;
use super::raw::Response;

/// One release's files.
#[derive(Clone)]
pub struct Release {
    /// A, B.
    pub label: char,
    /// Its id on the server.
    pub id: String,
    /// `/`.
    pub page: Vec<u8>,
    /// `/big.bin`.
    pub big: Vec<u8>,
}

impl Release {
    /// The body `path` must have.
    pub fn content(&self, path: &str) -> &[u8] {
        if path == "/" {
            &self.page
        } else {
            &self.big
        }
    }
}

/// The small page: ~1.2 KB (A) or ~2.3 KB (B), marker in the text.
pub fn page(label: char, size: usize) -> Vec<u8> {
    let mut s = format!(
        "<!doctype html>\n<title>release {label}</title>\n<p>cutover-bench release={label}</p>\n"
    );
    while s.len() < size {
        s.push_str(&format!("<!-- padding of release {label} -->\n"));
    }
    s.truncate(size);
    s.into_bytes()
}

/// The ~100 KB file: marker line, then incompressible bytes seeded by the release.
pub fn big(label: char, size: usize) -> Vec<u8> {
    let mut v = format!("cutover-bench release={label}\n").into_bytes();
    v.extend(super::noise(label as u64, size - v.len()));
    v
}

/// Which release a body comes from (by its first bytes), for the torn report.
fn body_label(rels: &[Release], path: &str, body: &[u8]) -> String {
    let n = body.len().min(64);
    rels.iter()
        .find(|r| r.content(path).len() >= n && r.content(path)[..n] == body[..n])
        .map(|r| r.label.to_string())
        .unwrap_or_else(|| "neither".into())
}

/// Whole when the body is exactly the content of the release its headers name.
pub fn judge(rels: Vec<Release>) -> Judge {
    Arc::new(move |path: &str, r: &Response| {
        let by_headers = match r.header("x-cutover-release") {
            Some(id) => rels.iter().find(|x| x.id == id),
            None => rels
                .iter()
                .find(|x| Some(x.content(path).len()) == r.content_length),
        };
        let Some(h) = by_headers else {
            return Err(format!(
                "headers of neither release (length {:?})",
                r.content_length
            ));
        };
        if r.body == h.content(path) {
            return Ok(());
        }
        Err(format!(
            "headers of {} with body of {}",
            h.label,
            body_label(&rels, path, &r.body)
        ))
    })
}

/// Whole when the body is exactly one release's content for the path (answers that carry no
/// length or release header, such as PHP's chunked ones).
pub fn judge_any(rels: Vec<Release>) -> Judge {
    Arc::new(move |path: &str, r: &Response| {
        if rels.iter().any(|x| r.body == x.content(path)) {
            return Ok(());
        }
        Err(format!("body of {}", body_label(&rels, path, &r.body)))
    })
}
