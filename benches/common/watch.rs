//! Waiting for a file to be renamed into a folder without asking for it over and over:
//! inotify's `IN_MOVED_TO`, read by a blocking thread that sleeps in poll(2) until the
//! kernel has the event.
//!
//! Why: activation_latency times "request → new release answers". A client that asks Apache
//! every 0.25 ms on fresh connections takes about one of this machine's two CPUs while it
//! runs, and the console it waits for runs slower for it (measured: its switch ~0.9 ms later
//! than with nobody asking). Woken by the rename itself, one request then shows the new
//! release: the same shape as the floor (one rename, one request). The request is made from
//! the same blocking thread ([`get_closing`]): handing it to an async task first cost up to
//! 13 ms in a bench whose runtime was otherwise idle.

use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// A watch on one folder, set before what it waits for starts.
pub struct Renames(Inotify);

impl Renames {
    /// Watches `dir` for files renamed (or moved) into it.
    pub fn watch(dir: &Path) -> anyhow::Result<Self> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        ino.add_watch(dir, AddWatchFlags::IN_MOVED_TO)?;
        Ok(Self(ino))
    }

    /// Blocks until a file named `name` is renamed in (true), or `limit` passes (false).
    pub fn wait_for(&self, name: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
            // At most 100 ms per poll: the deadline is checked between them.
            if poll(&mut fds, PollTimeout::from(100u16)).is_err() {
                return false;
            }
            let Ok(events) = self.0.read_events() else {
                continue;
            };
            if events
                .iter()
                .any(|e| e.name.as_deref() == Some(OsStr::new(name)))
            {
                return true;
            }
        }
        false
    }
}

/// `GET path` with `Connection: close` on a new connection, blocking: the whole answer
/// (head and body), or `None` if the connection failed.
pub fn get_closing(addr: std::net::SocketAddr, host: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_nodelay(true).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}
