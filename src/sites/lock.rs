//! The per-site lock: one change at a time (upload commit, clean-up, going live), shared by
//! `serve` and the CLI. It is an flock(2) on `<site>/.cutover.lock`, so a process that dies
//! holds nothing; the holder writes who and since when into the file for the "busy" answer.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::code;
use crate::error::AppError;

/// Who holds a site's lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    /// Audit actor.
    pub who: String,
    /// What they are doing ("going live", "upload"…).
    pub what: String,
    /// RFC 3339 UTC.
    pub since: String,
}

/// Serialises taking a lock with writing its holder note (see `try_lock`).
static NOTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A held lock; released when dropped (or when the process dies).
pub struct SiteLock {
    _file: Flock<File>,
}

fn lock_file(site_dir: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(site_dir.join(".cutover.lock"))
}

/// Room for a holder's note: notes are padded to this size with spaces (JSON allows them),
/// so each one overwrites the last in place. Truncating the file first cost ~140 µs a lock
/// here (ext4 journals the size change), on the path of every switch.
const NOTE_LEN: usize = 512;

fn write_note(file: &File, holder: &Holder) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt as _;
    let mut note = serde_json::to_string(holder).map_err(std::io::Error::other)?;
    let padded = note.len() <= NOTE_LEN;
    if padded {
        note.extend(std::iter::repeat_n(' ', NOTE_LEN - note.len()));
    }
    file.write_all_at(note.as_bytes(), 0)?;
    // A longer note (or an older, longer file) must not leave text after this one.
    if !padded || file.metadata()?.len() > note.len() as u64 {
        file.set_len(note.len() as u64)?;
    }
    Ok(())
}

fn read_holder(site_dir: &Path) -> Option<Holder> {
    let mut s = String::new();
    File::open(site_dir.join(".cutover.lock"))
        .ok()?
        .read_to_string(&mut s)
        .ok()?;
    serde_json::from_str(&s).ok()
}

/// The "busy" answer: who holds the lock and since when.
pub fn busy(holder: Option<Holder>) -> AppError {
    let message = match holder {
        Some(h) => format!(
            "Another change to this site is under way ({} by {}, since {}). Wait until it finishes, then try again.",
            h.what,
            h.who.trim_start_matches("user:"),
            h.since
        ),
        None => "Another change to this site is under way. Wait until it finishes, then try again.".into(),
    };
    AppError::Conflict {
        code: code::BUSY,
        message,
    }
}

/// Takes the lock now, or answers "busy".
pub fn try_lock(site_dir: &Path, who: &str, what: &str) -> Result<SiteLock, AppError> {
    let file = lock_file(site_dir).map_err(|e| {
        AppError::Internal(anyhow::anyhow!(
            "opening the site lock in {}: {e}",
            site_dir.display()
        ))
    })?;
    // Taking the lock and noting the holder happen under one in-process mutex, so a loser in
    // this process always finds the winner's note already written (no waiting on a worker).
    let _noting = NOTING.lock().unwrap_or_else(|e| e.into_inner());
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => {
            let holder = Holder {
                who: who.to_owned(),
                what: what.to_owned(),
                since: crate::audit::now_text(),
            };
            // Best effort: the note only improves the "busy" message.
            let _ = write_note(&locked, &holder);
            Ok(SiteLock { _file: locked })
        }
        Err((_, Errno::EWOULDBLOCK)) => Err(busy(read_holder(site_dir))),
        Err((_, e)) => Err(AppError::Internal(anyhow::anyhow!(
            "locking site {}: {e}",
            site_dir.display()
        ))),
    }
}

/// Takes the lock, waiting up to `patience` for another change to finish.
pub async fn lock_waiting(
    site_dir: &Path,
    who: &str,
    what: &str,
    patience: Duration,
) -> Result<SiteLock, AppError> {
    let deadline = Instant::now() + patience;
    loop {
        match try_lock(site_dir, who, what) {
            Err(AppError::Conflict { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sites::lock::*;

    #[test]
    fn second_holder_is_told_who_is_busy_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let held = try_lock(dir.path(), "user:ann", "going live").unwrap();
        match try_lock(dir.path(), "user:bob", "upload") {
            Err(AppError::Conflict {
                code: code::BUSY,
                message,
            }) => assert!(
                message.contains("ann") && message.contains("going live"),
                "{message}"
            ),
            other => panic!("expected busy, got {:?}", other.err()),
        }
        drop(held);
        assert!(try_lock(dir.path(), "user:bob", "upload").is_ok());
    }

    #[test]
    fn each_note_replaces_the_last_whatever_their_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(2 * NOTE_LEN);
        for (who, what) in [
            ("user:ann", long.as_str()),
            ("user:bob", "upload"),
            ("user:cy", "going live"),
        ] {
            let held = try_lock(dir.path(), who, what).unwrap();
            let h = read_holder(dir.path()).expect("the note reads back");
            assert_eq!((h.who.as_str(), h.what.as_str()), (who, what));
            drop(held);
        }
        let size = std::fs::metadata(dir.path().join(".cutover.lock"))
            .unwrap()
            .len();
        assert_eq!(
            size, NOTE_LEN as u64,
            "short notes are padded, the long one is gone"
        );
    }
}
