//! Finding, probing and stopping our own Apache by PID (never by name).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::mainconf::DEFAULT_HOST;

/// Reads a PID file; `None` if it is missing, empty or not a positive number.
pub(crate) fn read_pid_file(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse::<i32>().ok().filter(|p| *p > 1)
}

/// True if `pid` exists (a process we may signal, or one owned by another user).
pub(crate) fn exists(pid: i32) -> bool {
    matches!(kill(Pid::from_raw(pid), None), Ok(()) | Err(Errno::EPERM))
}

/// True while `pid` exists and is not a zombie (state `Z` in /proc/PID/stat): a child that
/// was killed but not yet reaped still answers `kill(pid, 0)`.
pub fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// The argument list of `pid`, from /proc (empty for zombies and kernel threads).
fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// True if `pid` is alive and is an Apache started with `-f <conf>` (our config, exactly).
///
/// A recycled PID belongs to some other program and fails this check, and so does a
/// zombie (its cmdline is empty), so we never signal anything that is not ours.
pub(crate) fn is_ours(pid: i32, conf: &Path) -> bool {
    if !exists(pid) {
        return false;
    }
    let args = cmdline(pid);
    let conf = conf.to_string_lossy();
    args.windows(2).any(|w| w[0] == "-f" && w[1] == conf)
}

/// Our running Apache found without its pid file: the daemon (it leads its own process
/// group; the `-k start` launcher and the workers do not) started with `-f <conf>`. Apache
/// truncates and rewrites its pid file at every graceful restart, so a read can find it
/// empty for a moment; and a pid file can be lost. Neither may make us lose track of it.
pub(crate) fn find_daemon(conf: &Path) -> Option<i32> {
    ours_running(conf).filter(|pid| leads_group(*pid)).min()
}

/// True if `pid` is the leader of its process group (a daemon after `setsid`).
fn leads_group(pid: i32) -> bool {
    nix::unistd::getpgid(Some(Pid::from_raw(pid))) == Ok(Pid::from_raw(pid))
}

/// The PIDs whose parent is `parent` and whose command line names our config.
pub(crate) fn our_children(parent: i32, conf: &Path) -> Vec<i32> {
    ours_running(conf)
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// Every running process started with `-f <conf>` (see [`is_ours`]), from /proc.
fn ours_running(conf: &Path) -> impl Iterator<Item = i32> + '_ {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(move |pid| is_ours(*pid, conf))
}

/// The parent PID of `pid`, from /proc/PID/stat (the field after the `(comm)`).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields resume after the LAST ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `sig` to `pid` if it is still ours; returns whether it was sent.
pub(crate) fn signal_if_ours(pid: i32, conf: &Path, sig: Signal) -> bool {
    is_ours(pid, conf) && kill(Pid::from_raw(pid), sig).is_ok()
}

/// Polls until `pid` is no longer our Apache, or the deadline passes; true if it is gone.
pub(crate) async fn wait_gone(pid: i32, conf: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !is_ours(pid, conf) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Blocking variant of [`wait_gone`] for synchronous callers (e.g. a guard's `Drop`).
pub(crate) fn wait_gone_blocking(pid: i32, conf: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while is_ours(pid, conf) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Stops our Apache `pid` without its cooperation: SIGTERM, then SIGKILL of it and its workers.
///
/// Used when `-k stop` cannot run (e.g. the config no longer parses) or did not work.
pub(crate) fn terminate_blocking(pid: i32, conf: &Path) -> bool {
    if signal_if_ours(pid, conf, Signal::SIGTERM)
        && wait_gone_blocking(pid, conf, Duration::from_secs(10))
    {
        return true;
    }
    // Workers outlive a SIGKILLed parent for a while and keep the port: kill them too.
    let children = our_children(pid, conf);
    signal_if_ours(pid, conf, Signal::SIGKILL);
    for child in children {
        signal_if_ours(child, conf, Signal::SIGKILL);
    }
    wait_gone_blocking(pid, conf, Duration::from_secs(5))
}

/// True if something at `addr` answers an HTTP request with an HTTP status line.
///
/// A bare TCP connect is not enough: the kernel accepts into the listen backlog
/// before any Apache worker is ready to serve.
pub(crate) async fn answers_http(addr: SocketAddr) -> bool {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        // The catch-all vhost answers this with a 404 that leaves no trace in the logs.
        let request =
            format!("HEAD / HTTP/1.0\r\nHost: {DEFAULT_HOST}\r\nUser-Agent: cutover-probe\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"HTTP/")
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), attempt).await,
        Ok(Some(true))
    )
}
