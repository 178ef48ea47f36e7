//! Anchors outside the database. The chain is an unkeyed SHA-256 and its head lives beside it,
//! so whoever can write the database can rewrite history and recompute everything. A checkpoint
//! — the newest event's id and hash, `ID:HASH` — kept somewhere else (a file outside the data
//! folder, the system log) lets `audit verify --checkpoint` prove that the log still holds that
//! exact prefix: an event cut, edited, inserted or wiped before it changes the hash at ID.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::SqlitePool;

/// An event id and the chain hash it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The event id.
    pub id: i64,
    /// Its chain hash (64 lowercase hex digits).
    pub hash: String,
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.id, self.hash)
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (id, hash) = s
            .trim()
            .split_once(':')
            .context("a checkpoint looks like ID:HASH")?;
        let id: i64 = id.parse().ok().filter(|n| *n > 0).with_context(|| {
            format!("{id:?} is not an event id (a checkpoint looks like ID:HASH)")
        })?;
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        anyhow::ensure!(
            hash.len() == 64 && hash.chars().all(hex),
            "the hash of a checkpoint is 64 lowercase hex digits"
        );
        Ok(Self {
            id,
            hash: hash.to_owned(),
        })
    }
}

/// The log's newest event as a checkpoint, `None` for an empty log.
pub async fn current(pool: &SqlitePool) -> anyhow::Result<Option<Checkpoint>> {
    let head: Option<(i64, String)> = sqlx::query_as("SELECT last_id, last_hash FROM audit_head")
        .fetch_optional(pool)
        .await
        .context("reading the audit log head")?;
    Ok(head.map(|(id, hash)| Checkpoint { id, hash }))
}

/// Every checkpoint in a file of them: the last `ID:HASH` word of each line (so syslog lines,
/// RFC 5424 lines written by the console and bare `ID:HASH` lines all work).
pub fn read_file(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading checkpoints from {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().rev().find_map(|w| w.parse().ok()))
        .collect())
}

/// One RFC 5424 line: `<86>1 TIME HOST cutover PID audit-checkpoint - MSG` (authpriv.info).
pub fn rfc5424(cp: &Checkpoint) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty() && h.is_ascii())
        .unwrap_or_else(|| "-".into());
    format!(
        "<86>1 {} {host} cutover {} audit-checkpoint - audit checkpoint {cp}",
        super::event::now_text(),
        std::process::id()
    )
}

/// Appends the checkpoint to `file` (created 0600) and hands it to the system log through
/// `logger` when there is one. A problem with the file is returned; one with the system log
/// is only warned about (there may be no syslog daemon, and the file is the record we asked for).
pub async fn publish(cp: &Checkpoint, file: Option<&Path>, syslog: bool) -> anyhow::Result<()> {
    if syslog {
        if let Err(e) = to_syslog(cp).await {
            tracing::warn!(error = ?e, "could not hand the audit checkpoint to the system log");
        }
    }
    let Some(path) = file else {
        return Ok(());
    };
    use std::os::unix::fs::OpenOptionsExt;
    let line = rfc5424(cp);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the checkpoint file {}", path.display()))?;
    writeln!(f, "{line}")
        .and_then(|_| f.sync_data())
        .with_context(|| format!("writing to the checkpoint file {}", path.display()))
}

/// `logger --rfc5424 -p authpriv.info -t cutover "audit checkpoint ID:HASH"`, when installed.
async fn to_syslog(cp: &Checkpoint) -> anyhow::Result<()> {
    let Some(logger) = ["/usr/bin/logger", "/bin/logger"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
    else {
        return Ok(());
    };
    let run = tokio::process::Command::new(logger)
        .args(["--rfc5424", "-p", "authpriv.info", "-t", "cutover"])
        .arg(format!("audit checkpoint {cp}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .context("logger took more than 10 s")?
        .context("running logger")?;
    anyhow::ensure!(
        out.status.success(),
        "logger failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Publishes the head now and every `interval` when it has moved, until dropped.
pub async fn run(
    pool: SqlitePool,
    file: Option<std::path::PathBuf>,
    syslog: bool,
    interval: Duration,
) {
    let mut last: Option<Checkpoint> = None;
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let head = match current(&pool).await {
            Ok(Some(h)) => h,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = ?e, "could not read the audit log head");
                continue;
            }
        };
        if last.as_ref() == Some(&head) {
            continue;
        }
        match publish(&head, file.as_deref(), syslog).await {
            Ok(()) => last = Some(head),
            Err(e) => tracing::warn!(error = ?e, "could not write the audit checkpoint"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::checkpoint::*;

    #[test]
    fn checkpoints_parse_from_their_own_lines() {
        let h = "ab".repeat(32);
        let cp: Checkpoint = format!("12:{h}").parse().unwrap();
        assert_eq!(cp.to_string(), format!("12:{h}"));
        assert!("0:00".parse::<Checkpoint>().is_err());
        assert!(format!("x:{h}").parse::<Checkpoint>().is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        std::fs::write(&p, format!("{}\nnoise\n7:{h}\n", rfc5424(&cp))).unwrap();
        let all = read_file(&p).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], cp);
        assert_eq!(all[1].id, 7);
    }
}
