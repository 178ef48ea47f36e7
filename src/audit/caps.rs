//! Caps on what one audit event may store, so no request can make a row big: every field is
//! cut to a documented size (README, "Audit log") before it is hashed and written.

use serde_json::Value;

/// Longest actor, action, site, release, address or request id kept (bytes).
pub const MAX_NAME: usize = 256;
/// Longest User-Agent kept (bytes).
pub const MAX_USER_AGENT: usize = 256;
/// Longest text value inside `detail` (bytes); Apache's output is already a tail of this order.
pub const MAX_DETAIL_TEXT: usize = 4096;
/// Longest `detail` as stored JSON (bytes); beyond it only a note of its size is kept.
pub const MAX_DETAIL: usize = 32 * 1024;

/// `s` cut to at most `max` bytes on a character boundary, with a note of what was cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(24);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} bytes cut]", &s[..end], s.len() - end)
}

/// An optional field, cut.
pub fn cut_opt(s: Option<&str>, max: usize) -> Option<String> {
    s.map(|s| cut(s, max))
}

/// `detail` with every text value (and key) cut, and the whole bounded.
pub fn bounded_detail(detail: &Value) -> String {
    let text = cut_values(detail).to_string();
    if text.len() <= MAX_DETAIL {
        return text;
    }
    serde_json::json!({"truncated": true, "bytes": text.len(), "head": cut(&text, MAX_DETAIL_TEXT)})
        .to_string()
}

fn cut_values(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(cut(s, MAX_DETAIL_TEXT)),
        Value::Array(a) => Value::Array(a.iter().map(cut_values).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (cut(k, MAX_NAME), cut_values(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::caps::*;

    #[test]
    fn long_values_are_cut_on_character_boundaries() {
        let s = "é".repeat(10_000);
        let c = cut(&s, 300);
        assert!(c.len() <= 300 + 30, "{}", c.len());
        assert!(c.ends_with("bytes cut]"));
        assert_eq!(cut("short", 300), "short");
    }

    #[test]
    fn a_huge_detail_is_bounded() {
        let d =
            serde_json::json!({"path": "a".repeat(100_000), "many": vec!["b".repeat(4000); 100]});
        let stored = bounded_detail(&d);
        assert!(stored.len() <= MAX_DETAIL, "{}", stored.len());
        let small = bounded_detail(&serde_json::json!({"path": "a".repeat(100_000)}));
        assert!(small.len() < MAX_DETAIL_TEXT + 100);
    }
}
