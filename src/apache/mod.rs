//! Everything Cutover says to Apache: input validation, VirtualHost rendering,
//! a private ("managed") Apache instance, and the system Apache's commands.

mod ctl;
mod errorlog;
pub mod livemap;
mod mainconf;
pub mod managed;
mod process;
mod reach;
pub mod system;
pub mod validate;
pub mod vhost;

#[cfg(test)]
mod tests;

pub use ctl::ApacheCtl;
pub use managed::ManagedApache;
pub use reach::WORKER_USER;
pub use system::SystemApache;
pub use vhost::{render, VhostSpec};

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long any one Apache command (configtest, graceful, stop, a system command) may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The result of one Apache command: whether it succeeded, what it said, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// True when the command exited with status 0.
    pub ok: bool,
    /// Its stdout followed by its stderr, trimmed (Apache writes "Syntax OK" and errors to stderr).
    pub output: String,
    /// Wall-clock time the command took.
    pub duration: Duration,
}

/// Runs `argv` (program then arguments, never through a shell) and collects its output.
///
/// Errors only when the command cannot be started or overruns [`COMMAND_TIMEOUT`];
/// a non-zero exit is reported as `ok: false`.
pub async fn run_command(argv: &[String]) -> anyhow::Result<CommandOutput> {
    let (program, args) = argv
        .split_first()
        .context("no command is configured (the command list is empty)")?;
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // If we time out and drop the future, the command must not linger.
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child)
        .await
        .with_context(|| {
            format!(
                "`{}` did not finish within {COMMAND_TIMEOUT:?}",
                argv.join(" ")
            )
        })?
        .with_context(|| format!("could not run `{}`", argv.join(" ")))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !text.trim().is_empty() && !stderr.trim().is_empty() {
        text.push('\n');
    }
    text.push_str(&stderr);
    Ok(CommandOutput {
        ok: out.status.success(),
        output: text.trim().to_string(),
        duration: started.elapsed(),
    })
}

/// Replaces `path` with `contents` atomically (temp file, fsync, rename, fsync of the folder).
///
/// Apache re-reads every `*.conf` on graceful and at start, so a half-written file
/// must never be visible under its real name; the temp name does not end in `.conf`.
pub fn write_config_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    // Unique per process and call, so two writers never share a temp file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}-{n}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename only survives a power loss once the folder itself is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
