//! The database's files on disk: private from their first byte, in a folder nobody else can
//! write to.
//!
//! SQLite creates `-wal` and `-shm` with the main file's permissions, so the main file is
//! created here, 0600, before SQLite opens it; files left by older versions are tightened too.
//! (A process-wide umask would also reach the release folders Apache's workers must read.)

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;

/// Creates `db` (0600) if missing, and restricts it and its `-wal`/`-shm` to this user.
pub fn make_private(db: &Path) -> anyhow::Result<()> {
    // Never open a database that exists: closing any descriptor of it drops every POSIX lock
    // this process holds on it, SQLite's included (another pool in the process may be using it).
    if !db.exists() {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
        {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(e)
                    .with_context(|| format!("creating the database file {}", db.display()))
            }
            _ => {}
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::metadata(&path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&path, PermissionsExt::from_mode(0o600))
                    .with_context(|| format!("restricting {}", path.display()))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a data folder anyone may write to (they could replace the database); warns when
/// anyone may list it.
pub fn check_data_dir(dir: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading the data folder {}", dir.display()))?
        .permissions()
        .mode();
    anyhow::ensure!(
        mode & 0o002 == 0,
        "the data folder {} is writable by every user (mode {:o}): run `chmod o-w {}` (0711 is right: Apache may pass through, nobody may list or write)",
        dir.display(),
        mode & 0o7777,
        dir.display()
    );
    if mode & 0o004 != 0 {
        tracing::warn!(
            "the data folder {} can be listed by every user (mode {:o}); 0711 is enough",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}
