//! The console's OpenSSH client: its own key pair, one pinned `known_hosts` file per host, a
//! reused connection per host (ControlMaster), and every remote command an argument list
//! quoted for the remote shell by [`remote_command`].
//!
//! Written over the system `ssh` rather than an SSH crate: the teams we replace already run
//! OpenSSH, its host-key checking and multiplexing are the ones they audit, and rsync needs
//! the same `ssh` anyway (`-e`), so one set of options serves both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::host::Host;

/// What a remote command did.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Exit status 0.
    pub ok: bool,
    /// stdout.
    pub stdout: String,
    /// stderr, trimmed.
    pub stderr: String,
}

/// Why a host could not be asked at all (as opposed to a command that ran and failed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    /// The host's key is not the pinned one.
    #[error("the host key of {0} has changed since it was confirmed: this may be a different machine (or the host was reinstalled). Nothing was done on it. If the change is expected, remove the host and add it again to confirm the new key.")]
    KeyChanged(String),
    /// The host refused our key.
    #[error("{0} refused Cutover's SSH key: install the line from `cutover ssh-key` in the login user's ~/.ssh/authorized_keys.")]
    KeyRefused(String),
    /// No answer in time.
    #[error("{0} did not answer within {1} s (the host may be down or hung).")]
    TimedOut(String, u64),
    /// Could not connect (refused, unreachable, DNS) or the connection broke.
    #[error("{0} could not be reached over SSH: {1}")]
    Unreachable(String, String),
}

pub use super::quote::remote_command;

/// The ciphers offered, in order (see [`Ssh::options`]).
const CIPHERS: &str = "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr";

/// Those of [`CIPHERS`] this machine's `ssh` has (`ssh -Q cipher`, asked once; a FIPS build
/// lacks chacha20, say), in that order; `None`: OpenSSH's own list.
fn ciphers() -> Option<&'static str> {
    static KNOWN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| {
            let out = std::process::Command::new("ssh")
                .args(["-Q", "cipher"])
                .output()
                .ok()?;
            let known = String::from_utf8_lossy(&out.stdout);
            let known: Vec<&str> = known.lines().map(str::trim).collect();
            let ours: Vec<&str> = CIPHERS.split(',').filter(|c| known.contains(c)).collect();
            (out.status.success() && !ours.is_empty()).then(|| ours.join(","))
        })
        .as_deref()
}

/// One connection being opened, and how the last attempt failed if it did.
type Opening = Arc<tokio::sync::Mutex<Option<SshError>>>;

/// The console's SSH client, under `<data>/ssh`.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub(super) dir: PathBuf,
    /// Every remote operation's time limit (connect included).
    pub timeout: Duration,
    /// One connection being opened per host at a time (two masters for one host would leave
    /// the second one running without a socket).
    /// Each holds how the last attempt failed, if it did.
    opening: Arc<Mutex<HashMap<PathBuf, Opening>>>,
}

impl Ssh {
    /// The client keeping its key and connections in `dir`.
    pub fn new(dir: PathBuf, timeout: Duration) -> Self {
        Self {
            dir,
            timeout,
            opening: Default::default(),
        }
    }

    fn known_hosts(&self, host: &Host) -> PathBuf {
        self.dir
            .join("known_hosts")
            .join(format!("{}-{}", host.site_id, host.name))
    }

    /// The options every `ssh` (and rsync's) gets for `host`: our key only, the pinned key
    /// only (StrictHostKeyChecking=yes, no global file), no prompts, a shared connection.
    pub fn options(&self, host: &Host) -> anyhow::Result<Vec<String>> {
        let known = self.known_hosts(host);
        std::fs::create_dir_all(known.parent().unwrap_or(&self.dir))?;
        super::host::pin(&known, &host.known_hosts_line())?;
        let control = self.dir.join("cm");
        std::fs::create_dir_all(&control)?;
        restrict(&control, 0o700)?;
        let secs = self.timeout.as_secs().clamp(1, 600);
        let o = |s: String| ["-o".to_owned(), s];
        let mut args = vec!["-F".to_owned(), "/dev/null".to_owned()];
        args.extend(["-i".to_owned(), self.key_path().display().to_string()]);
        for opt in [
            "IdentitiesOnly=yes".to_owned(),
            "BatchMode=yes".to_owned(),
            "StrictHostKeyChecking=yes".to_owned(),
            format!("UserKnownHostsFile={}", known.display()),
            "GlobalKnownHostsFile=/dev/null".to_owned(),
            "CheckHostIP=no".to_owned(),
            format!("ControlPath={}", self.control_path(host).display()),
            "ControlPersist=60".to_owned(),
            format!("ConnectTimeout={secs}"),
            "ServerAliveInterval=5".to_owned(),
            "ServerAliveCountMax=2".to_owned(),
            "LogLevel=ERROR".to_owned(),
        ] {
            args.extend(o(opt));
        }
        // AES-GCM first (the CPU's AES instructions), then the rest of OpenSSH's own
        // list: OpenSSH puts chacha20-poly1305 first for machines without them. Measured
        // copying 600 MB over loopback: the client's CPU time 0.39 → 0.18 s, and a first
        // staging is mostly that copy. (The list in full, not OpenSSH's `^` form: rsync's
        // `-e` cannot carry the quoting `^` gets.)
        if let Some(ciphers) = ciphers() {
            args.extend(o(format!("Ciphers={ciphers}")));
        }
        args.extend([
            "-p".to_owned(),
            host.port.to_string(),
            "-l".to_owned(),
            host.user.clone(),
        ]);
        Ok(args)
    }

    fn control_path(&self, host: &Host) -> PathBuf {
        self.dir
            .join("cm")
            .join(format!("{}-{}", host.site_id, host.name))
    }

    /// Opens the shared connection to `host` unless one is open: a master started on its own
    /// (`-M -N -f`), its words to a log file, so that no later command waits on a pipe the
    /// backgrounded master still holds.
    async fn connect(&self, host: &Host, who: &str) -> Result<(), SshError> {
        let socket = self.control_path(host);
        let one = {
            let mut all = self.opening.lock().unwrap_or_else(|e| e.into_inner());
            all.entry(socket.clone()).or_default().clone()
        };
        // Waited for another attempt (the one an upload starts, say) that failed: its answer
        // is this one's too, rather than a second time-out on a hung host.
        let (mut last, waited) = match one.try_lock() {
            Ok(free) => (free, false),
            Err(_) => (one.lock().await, true),
        };
        if socket.exists() {
            return Ok(());
        }
        if let (true, Some(failed)) = (waited, last.as_ref()) {
            return Err(failed.clone());
        }
        let opened = self.open_master(host, who).await;
        *last = opened.clone().err();
        opened
    }

    /// Starts the master for `host` (see [`connect`](Self::connect)).
    async fn open_master(&self, host: &Host, who: &str) -> Result<(), SshError> {
        let unreachable =
            |e: anyhow::Error| SshError::Unreachable(who.to_owned(), format!("{e:#}"));
        let log = self
            .dir
            .join("cm")
            .join(format!("{}-{}.log", host.site_id, host.name));
        let _ = std::fs::remove_file(&log);
        // The master runs `true` and stays on in the background (ControlPersist), rather than
        // `-M -N -f`: a master started with -N is refused every shared session by a host
        // whose authorized_keys line says `restrict` (the line Cutover asks for), and each
        // command then silently opened a connection of its own (measured: 250 ms a command
        // instead of 12 ms).
        let mut args = self.options(host).map_err(unreachable)?;
        args.extend(["-o".into(), "ControlMaster=yes".into()]);
        args.extend([
            "-E".into(),
            log.display().to_string(),
            "--".into(),
            bare(&host.address).into(),
            "true".into(),
        ]);
        let status = tokio::process::Command::new("ssh")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(self.timeout, status).await {
            Err(_) => Err(SshError::TimedOut(who.to_owned(), self.timeout.as_secs())),
            Ok(Err(e)) => Err(unreachable(e.into())),
            Ok(Ok(s)) if s.success() => Ok(()),
            Ok(Ok(_)) => Err(classify(
                who,
                &std::fs::read_to_string(&log).unwrap_or_default(),
            )),
        }
    }

    /// Opens the shared connection to `host` ahead of its first use (an upload for a site on
    /// hosts: the SSH handshake, ~0.2 s, happens while the archive is still being unpacked
    /// instead of before the copy). A failure here is left for the real use to report.
    pub async fn warm(&self, host: &Host) {
        let _ = self.connect(host, &format!("host {}", host.name)).await;
    }

    /// Runs `argv` on `host` (quoted by [`remote_command`]), `stdin` fed to it, within the
    /// time limit. A command that ran and failed is `Ok` with `ok: false`.
    pub async fn run(
        &self,
        host: &Host,
        argv: &[String],
        stdin: Option<&[u8]>,
    ) -> Result<Remote, SshError> {
        let who = format!("host {}", host.name);
        let unreachable = |e: anyhow::Error| SshError::Unreachable(who.clone(), format!("{e:#}"));
        let line = remote_command(argv).map_err(unreachable)?;
        let work = async {
            self.connect(host, &who).await?;
            let mut cmd = self.client(host, &line, stdin.is_some())?;
            let mut child = cmd.spawn().map_err(|e| unreachable(e.into()))?;
            if let (Some(mut pipe), Some(bytes)) = (child.stdin.take(), stdin) {
                // A command that exits early closes its end: what it did is judged by its status.
                let _ = pipe.write_all(bytes).await;
            }
            child
                .wait_with_output()
                .await
                .map_err(|e| unreachable(e.into()))
        };
        let out = match tokio::time::timeout(self.timeout, work).await {
            Err(_) => return Err(SshError::TimedOut(who, self.timeout.as_secs())),
            Ok(out) => out?,
        };
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        // ssh exits 255 for its own failures; the remote command's status otherwise.
        if out.status.code() == Some(255) {
            return Err(classify(&who, &stderr));
        }
        Ok(Remote {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        })
    }

    /// `ssh … -- ADDRESS LINE` through the shared connection, stdout and stderr piped, stdin
    /// piped or closed; killed when dropped.
    fn client(
        &self,
        host: &Host,
        line: &str,
        stdin: bool,
    ) -> Result<tokio::process::Command, SshError> {
        let who = format!("host {}", host.name);
        let options = self
            .options(host)
            .map_err(|e| SshError::Unreachable(who, format!("{e:#}")))?;
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(options)
            .args(["-o", "ControlMaster=no", "--", bare(&host.address)])
            .arg(line)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Ok(cmd)
    }

    /// Starts `argv` on `host` for a conversation over its stdin and stdout (the armed switch
    /// of [`super::armed`]): only connecting is bounded here, the caller bounds each exchange.
    pub async fn spawn(
        &self,
        host: &Host,
        argv: &[String],
    ) -> Result<tokio::process::Child, SshError> {
        let who = format!("host {}", host.name);
        let unreachable = |e: anyhow::Error| SshError::Unreachable(who.clone(), format!("{e:#}"));
        let line = remote_command(argv).map_err(unreachable)?;
        match tokio::time::timeout(self.timeout, self.connect(host, &who)).await {
            Err(_) => return Err(SshError::TimedOut(who, self.timeout.as_secs())),
            Ok(r) => r?,
        }
        self.client(host, &line, true)?
            .spawn()
            .map_err(|e| unreachable(e.into()))
    }

    /// The `-e` of rsync for `host`: `ssh` with the same options, through the shared
    /// connection (the words quoted as rsync splits them).
    pub async fn rsync_shell(&self, host: &Host) -> Result<String, SshError> {
        let who = format!("host {}", host.name);
        self.connect(host, &who).await?;
        let mut words = vec!["ssh".to_owned()];
        words.extend(
            self.options(host)
                .map_err(|e| SshError::Unreachable(who.clone(), format!("{e:#}")))?,
        );
        words.extend(["-o".into(), "ControlMaster=no".into()]);
        remote_command(&words).map_err(|e| SshError::Unreachable(who, format!("{e:#}")))
    }

    /// Closes the shared connection to `host` (shutdown, or a host removed).
    pub async fn close(&self, host: &Host) {
        let Ok(mut args) = self.options(host) else {
            return;
        };
        args.extend([
            "-O".into(),
            "exit".into(),
            "--".into(),
            bare(&host.address).into(),
        ]);
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::process::Command::new("ssh")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status(),
        )
        .await;
    }
}

/// ssh's own failure, from its words.
fn classify(who: &str, stderr: &str) -> SshError {
    let s = stderr.to_ascii_lowercase();
    if s.contains("host key verification failed")
        || s.contains("remote host identification has changed")
        || s.contains("host key for")
    {
        SshError::KeyChanged(who.to_owned())
    } else if s.contains("permission denied") {
        SshError::KeyRefused(who.to_owned())
    } else if s.contains("timed out") {
        SshError::TimedOut(who.to_owned(), 0)
    } else {
        let last = stderr
            .lines()
            .last()
            .unwrap_or("the connection failed")
            .to_owned();
        SshError::Unreachable(who.to_owned(), last)
    }
}

/// An address as `ssh` takes it on its command line (no IPv6 brackets).
fn bare(address: &str) -> &str {
    address.trim_start_matches('[').trim_end_matches(']')
}

pub(super) fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}
