//! Switching several hosts at one moment (issue 17): each host is first *armed* — the new
//! `current` link and `live.map` written beside the live ones, the script then waiting on its
//! stdin — and only when every host is armed does each get the word `go`, which leaves it two
//! renames to do. So the hosts switch within a pipe write of each other instead of an SSH
//! session set-up apart (measured: 184–408 ms under load with one session per switch), and a
//! host that cannot be armed (down, hung, release missing) calls the switch off everywhere
//! before any host has switched: the armed scripts read end-of-file and remove what they wrote.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use super::host::Host;
use super::remote::sh_argv;
use super::ssh::Ssh;

/// Arms, waits for `go`, renames, says when (`date +%s%N`, the host's clock). Arming first
/// flushes the release's file system: a release is on disk before anything names it (staging
/// does not wait for that; the kernel writes it back meanwhile, so this is usually quick).
/// The map's mtime is kept increasing as [`crate::golive`] does locally (mod_rewrite re-reads
/// a map whose mtime changed).
const SCRIPT: &str = r#"set -e; cd "$1"; id=$2; map=$3; t=""
[ -d "releases/$id" ] || { echo "release $id is not on this host" >&2; exit 6; }
rm -f .current-tmp-* .live-map-tmp-*
if [ -n "$map" ]; then
  t=".live-map-tmp-$$"; printf '%s' "$map" > "$t"
  new=$(date +%s.%N)
  if [ -e live.map ]; then
    old=$(stat -c %.9Y live.map)
    new=$(awk -v o="$old" -v n="$new" 'BEGIN { if (o + 0.001 > n) printf "%.6f", o + 0.001; else printf "%.6f", n }')
  fi
  touch -d "@$new" "$t"
fi
sync -f "releases/$id" 2>/dev/null || true
ln -s "releases/$id" ".current-tmp-$$"
echo armed
if ! read -r go || [ "$go" != go ]; then
  rm -f ".current-tmp-$$" ${t:+"$t"}; echo "the switch was called off" >&2; exit 7
fi
mv -T ".current-tmp-$$" current
[ -z "$t" ] || mv -T "$t" live.map
echo "switched $(date +%s%N)"
sync -f . 2>/dev/null || true"#;

/// One host armed for the switch, its script waiting for `go`.
pub struct Armed {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<ChildStderr>,
    limit: Duration,
}

/// What the script said on stderr, or what happened to the connection.
async fn why(child: &mut Child, stderr: Option<ChildStderr>) -> String {
    let mut words = String::new();
    if let Some(mut e) = stderr {
        let _ = tokio::time::timeout(Duration::from_secs(2), e.read_to_string(&mut words)).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    let words = words.trim().to_owned();
    match status {
        Ok(Ok(s)) if s.code() == Some(255) => format!("the connection was lost ({words})"),
        _ if words.is_empty() => "the connection was lost".into(),
        _ => words,
    }
}

/// Arms `host` for release `id` (and the site's map text, for a pinned site), within the
/// time limit.
pub async fn arm(ssh: &Ssh, host: &Host, id: &str, map: Option<&str>) -> Result<Armed, String> {
    let argv = sh_argv(SCRIPT, &[&host.dir, id, map.unwrap_or("")]);
    let mut child = ssh.spawn(host, &argv).await.map_err(|e| e.to_string())?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let Some(stdout) = stdout else {
        return Err("no output from ssh".into());
    };
    let mut armed = Armed {
        child,
        stdin,
        stdout: BufReader::new(stdout),
        stderr,
        limit: ssh.timeout,
    };
    match tokio::time::timeout(armed.limit, armed.line()).await {
        Ok(Some(l)) if l == "armed" => Ok(armed),
        Ok(_) => Err(why(&mut armed.child, armed.stderr.take()).await),
        Err(_) => Err(format!(
            "host {} did not answer within {} s (the host may be down or hung).",
            host.name,
            armed.limit.as_secs()
        )),
    }
}

impl Armed {
    async fn line(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.stdout.read_line(&mut l).await {
            Ok(n) if n > 0 => Some(l.trim_end().to_owned()),
            _ => None,
        }
    }

    /// Says `go` (a pipe write: the host's part is two renames).
    pub async fn fire(&mut self) -> Result<(), String> {
        let Some(pipe) = self.stdin.as_mut() else {
            return Err("the switch was already called off".into());
        };
        pipe.write_all(b"go\n").await.map_err(|e| e.to_string())?;
        pipe.flush().await.map_err(|e| e.to_string())
    }

    /// Waits for the renames: when they were done, by the host's clock (ns since the epoch).
    pub async fn done(mut self) -> Result<i128, String> {
        let said = tokio::time::timeout(self.limit, self.line()).await;
        let at = said
            .ok()
            .flatten()
            .and_then(|l| l.strip_prefix("switched ")?.parse::<i128>().ok());
        match at {
            Some(at) => {
                drop(self.stdin.take());
                let _ = tokio::time::timeout(self.limit, self.child.wait()).await;
                Ok(at)
            }
            None => {
                let stderr = self.stderr.take();
                Err(why(&mut self.child, stderr).await)
            }
        }
    }

    /// Calls the switch off: end-of-file on the script's stdin, which removes what it wrote;
    /// waits (bounded) for it to have done so.
    pub async fn call_off(mut self) {
        drop(self.stdin.take());
        let _ = tokio::time::timeout(self.limit, self.child.wait()).await;
    }
}

/// Arms and switches one host at once (a put-back, where no other host waits on it).
pub async fn switch(ssh: &Ssh, host: &Host, id: &str, map: Option<&str>) -> Result<(), String> {
    let mut armed = arm(ssh, host, id, map).await?;
    armed.fire().await?;
    armed.done().await.map(drop)
}
