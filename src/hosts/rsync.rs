//! One rsync of a release folder to a host's staging folder over the host's shared SSH
//! connection: what it sent (its `--stats`) and what it wrote (its `--out-format` list).

use std::path::Path;
use std::time::Duration;

use super::host::Host;
use super::ssh::Ssh;

/// The longest one rsync may take; rsync's own `--timeout` stops it sooner on a silent host.
const RSYNC_LIMIT: Duration = Duration::from_secs(3600);

/// What one staging sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// Regular files rsync transferred (the rest were hard links to the previous release).
    pub files: i64,
    /// Bytes rsync sent over the connection.
    pub bytes: i64,
}

/// Marks the lines of rsync's output that name what it wrote (`--out-format`).
const WROTE: &str = "cutover-wrote:";

/// One `rsync -a --delete` of `local` into `staging` on `host`: what it sent, and the paths
/// it wrote or updated, as rsync names them (folders end with `/`; odd characters are
/// escaped as `\#ooo`).
/// With `listed` (a plan's `send`: NUL-separated paths), only those are compared and sent,
/// nothing is deleted (the host's prune did that). `fresh`: `staging` was made empty for this
/// copy (not seeded), so rsync writes each file in place (`--inplace`) instead of into a
/// temporary name renamed after: ~7% less CPU for a first copy of 20,000 files (measured on
/// loopback, three hosts at once), and nothing else can see the folder until it is verified
/// and renamed. Never into a seeded folder: its files are hard links to a staged release.
pub async fn rsync(
    ssh: &Ssh,
    host: &Host,
    (local, staging): (&Path, &str),
    listed: Option<&[u8]>,
    fresh: bool,
) -> Result<(Sent, Vec<String>), String> {
    let shell = ssh.rsync_shell(host).await.map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new("rsync");
    cmd.args(["-a", "--stats", "--numeric-ids"]);
    match listed {
        Some(_) => cmd.args(["--from0", "--files-from=-"]),
        None => cmd.arg("--delete"),
    };
    if fresh {
        cmd.arg("--inplace");
    }
    cmd.arg(format!("--out-format={WROTE}%n"))
        .arg(format!("--timeout={}", ssh.timeout.as_secs().max(5)))
        .arg("-e")
        .arg(shell)
        .arg(format!("{}/", local.display()))
        .arg(format!("{}@{}:{staging}", host.user, host.address))
        .stdin(match listed {
            Some(_) => std::process::Stdio::piped(),
            None => std::process::Stdio::null(),
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let run = async {
        let mut child = cmd.spawn()?;
        if let (Some(list), Some(mut stdin)) = (listed, child.stdin.take()) {
            use tokio::io::AsyncWriteExt as _;
            // A failed write (rsync gone) shows in its status.
            let _ = stdin.write_all(list).await;
        }
        child.wait_with_output().await
    };
    let out = match tokio::time::timeout(RSYNC_LIMIT, run).await {
        Err(_) => {
            return Err(format!(
                "copying to host {} took over an hour and was stopped.",
                host.name
            ))
        }
        Ok(out) => {
            out.map_err(|e| format!("rsync could not run ({e}): install rsync on this machine."))?
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(rsync_failure(&host.name, out.status.code(), &stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let sent = Sent {
        files: stat(&stdout, "Number of regular files transferred:"),
        bytes: stat(&stdout, "Total bytes sent:"),
    };
    let wrote = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(WROTE))
        .map(str::to_owned)
        .collect();
    Ok((sent, wrote))
}

/// A number from rsync's `--stats` (`1,234` or `1234`).
fn stat(stdout: &str, label: &str) -> i64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.replace(',', "").parse().ok())
        .unwrap_or(0)
}

/// rsync's failure as a sentence people can act on.
fn rsync_failure(host: &str, code: Option<i32>, stderr: &str) -> String {
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if stderr.contains("No space left on device") {
        format!("host {host} ran out of disk space while the release was copied: free space there, then stage again.")
    } else if stderr
        .to_ascii_lowercase()
        .contains("host key verification failed")
    {
        format!("host {host}'s key has changed since it was confirmed: nothing was copied. Remove the host and add it again if the change is expected.")
    } else if matches!(code, Some(30 | 35 | 12 | 255)) {
        format!("the connection to host {host} was lost while the release was copied ({last}); stage again once it is back.")
    } else {
        format!("copying to host {host} failed: {last}")
    }
}

#[cfg(test)]
mod tests {
    use crate::hosts::rsync::*;

    #[test]
    fn rsync_statistics_are_read() {
        let out = "Number of files: 2,001 (reg: 2,000, dir: 1)\nNumber of regular files transferred: 20\nTotal bytes sent: 1,234,567\n";
        assert_eq!(stat(out, "Number of regular files transferred:"), 20);
        assert_eq!(stat(out, "Total bytes sent:"), 1_234_567);
        assert_eq!(stat("", "Total bytes sent:"), 0);
    }

    #[test]
    fn a_full_disk_is_named() {
        let m = rsync_failure(
            "web2",
            Some(11),
            "rsync: write failed on \"x\": No space left on device (28)\n",
        );
        assert!(m.contains("ran out of disk space"), "{m}");
    }
}
