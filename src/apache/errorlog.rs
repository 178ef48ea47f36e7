//! Reading what Apache wrote to its main error log after a given moment.
//!
//! Once daemonized, Apache only speaks through this log: the outcome of a graceful
//! restart (which `-k graceful` itself does not wait for) is only visible here.

use std::path::Path;

/// Apache's notice when a (re)start has bound its ports and serves (AH00489).
const RESUMED: &str = "resuming normal operations";
/// Apache's words when a (re)start failed and the parent exits.
const FAILED: [&str; 3] = ["AH00019", "AH00015", "shutting down"];

/// The log's current size, to read only what a command adds after it.
pub(crate) fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The text written after offset `from` (whole log if it was truncated meanwhile). Only
/// that part is read: reloads poll this every few ms, and the log only grows.
pub(crate) fn since(path: &Path, from: u64) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let read = || -> std::io::Result<Vec<u8>> {
        let mut file = std::fs::File::open(path)?;
        let from = if from > file.metadata()?.len() {
            0
        } else {
            from
        };
        file.seek(SeekFrom::Start(from))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    String::from_utf8_lossy(&read().unwrap_or_default()).into_owned()
}

/// The last `n` lines of `text`, trimmed, for error messages.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .join("\n")
        .trim()
        .to_string()
}

/// How many (re)starts `text` says resumed.
pub(crate) fn resumed_count(text: &str) -> usize {
    text.matches(RESUMED).count()
}

/// What the log says about the latest (re)start: `Some(true)` done, `Some(false)` failed.
pub(crate) fn restart_outcome(text: &str) -> Option<bool> {
    if FAILED.iter().any(|f| text.contains(f)) {
        Some(false)
    } else if text.contains(RESUMED) {
        Some(true)
    } else {
        None
    }
}

/// `s`, or `fallback` when `s` is blank.
pub(crate) fn nonempty<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.trim().is_empty() {
        fallback
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use crate::apache::errorlog::*;

    #[test]
    fn only_what_was_written_after_the_offset_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        std::fs::write(&log, "old line\n").unwrap();
        let start = len(&log);
        std::fs::write(&log, "old line\nresuming normal operations\n").unwrap();
        assert_eq!(since(&log, start), "resuming normal operations\n");
        // Truncated meanwhile (rotated): all of it.
        std::fs::write(&log, "new\n").unwrap();
        assert_eq!(since(&log, start), "new\n");
        assert_eq!(since(&dir.path().join("none"), 0), "");
    }
}
