//! Running one step: its own process group (so a time-out or a crash stops its children too),
//! the parent-death signal (a console killed mid-step takes the step with it), standard input
//! closed, stdout and stderr on one pipe (so they interleave in the order written), a clean
//! environment, an unprivileged user, a time limit, and output kept within a fixed size
//! however much the step writes.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::io::AsyncReadExt;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Exit status 0.
    Ok,
    /// A non-zero exit status, a signal, or the program could not be started.
    Failed,
    /// Killed (with its whole process group) at the time limit.
    TimedOut,
}

impl Outcome {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
        }
    }
}

/// What came of a step.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// How it ended.
    pub outcome: Outcome,
    /// Its exit status, when it exited (not when killed by a signal or never started).
    pub exit: Option<i32>,
    /// One sentence: "exit status 0", "timed out after 5 min", "killed by signal 9".
    pub summary: String,
    /// Its output as kept (beginning and end; see [`Output`]).
    pub output: String,
    /// Every byte it wrote, kept or not.
    pub output_bytes: u64,
    /// How long it ran.
    pub ms: u64,
}

/// A step's output within `max` bytes: the first quarter and the last three quarters of
/// what was written, the middle cut and counted. Memory stays flat whatever the step writes.
#[derive(Debug, Default)]
pub struct Output {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl Output {
    /// Keeps at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            head_cap: max / 4,
            tail_cap: max - max / 4,
            ..Self::default()
        }
    }

    /// Adds what the step wrote.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            bytes = &bytes[bytes.len() - self.tail_cap..];
        }
        let over = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..over);
        self.tail.extend(bytes);
    }

    /// Bytes written so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The text kept, with a line saying how much was cut.
    pub fn text(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            let cut = self.total - kept;
            out.push_str(&format!(
                "\n[… {} of output not kept …]\n",
                crate::units::human_bytes(cut)
            ));
        }
        let (a, b) = self.tail.as_slices();
        out.push_str(&String::from_utf8_lossy(&[a, b].concat()));
        out
    }
}

/// The last `n` characters of `text` (the audit event keeps only the end of the output).
pub fn tail(text: &str, n: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(n)).collect()
}

/// One step to run.
pub struct Run<'a> {
    /// Program and arguments.
    pub command: &'a [String],
    /// The working folder (the release).
    pub dir: &'a Path,
    /// The whole environment of the step.
    pub env: Vec<(String, String)>,
    /// Who it runs as (uid, gid); `None`: as the console.
    pub user: Option<(u32, u32)>,
    /// Its time limit.
    pub limit: Duration,
}

/// A started step: its process group, and the pipe its output arrives on.
pub struct Started {
    child: tokio::process::Child,
    /// Its process group id (the leader's pid), recorded so a later start can stop it.
    pub pgid: i32,
    pipe: Option<tokio::net::unix::pipe::Receiver>,
    started: Instant,
}

impl Drop for Started {
    /// A step abandoned (the console shutting down, the request's task dropped) takes its
    /// whole process group with it.
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
    }
}

impl Run<'_> {
    /// Starts the step. Fails when the program cannot be started at all.
    pub fn start(&self) -> std::io::Result<Started> {
        let (tx, rx) = tokio::net::unix::pipe::pipe()?;
        let write = tx.into_blocking_fd()?;
        let mut cmd = tokio::process::Command::new(&self.command[0]);
        cmd.args(&self.command[1..])
            .current_dir(self.dir)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(write.try_clone()?))
            .stderr(Stdio::from(write))
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        set_parent_death_signal(&mut cmd);
        let started = Instant::now();
        let child = cmd.spawn()?;
        // The Command holds the pipe's write end until dropped: EOF needs every copy closed.
        drop(cmd);
        let pgid = child.id().unwrap_or(0) as i32;
        Ok(Started {
            child,
            pgid,
            pipe: Some(rx),
            started,
        })
    }
}

/// The child gets SIGKILL when the console's thread that started it dies (the console was
/// killed): std and tokio offer no safe way to set this, and nix's wrapper is the one call.
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure runs between fork and exec and only makes one prctl(2) system call,
    // which is async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

impl Started {
    /// Waits for the step within `limit`, reading its output into `output` as it arrives.
    /// At the limit the whole process group is killed; when the step's own process ends,
    /// whatever it left running in its group is killed too.
    pub async fn finish(mut self, limit: Duration, output: Arc<Mutex<Output>>) -> StepResult {
        let pipe = self.pipe.take();
        let sink = output.clone();
        let mut reading = tokio::spawn(async move {
            let Some(mut pipe) = pipe else { return };
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(&buf[..n]);
            }
        });
        let deadline = tokio::time::Instant::from_std(self.started + limit);
        let waited = tokio::time::timeout_at(deadline, self.child.wait()).await;
        let group = Pid::from_raw(self.pgid);
        let (status, timed_out) = match waited {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                let _ = killpg(group, Signal::SIGKILL);
                (self.child.wait().await.ok(), true)
            }
        };
        // ESRCH when the group is empty: nothing was left behind.
        let leftovers = !timed_out && killpg(group, Signal::SIGKILL).is_ok();
        // EOF comes once every holder of the pipe is gone; one that left the group (setsid)
        // may still hold it, so reading stops after a short wait rather than hang the switch.
        if tokio::time::timeout(Duration::from_secs(2), &mut reading)
            .await
            .is_err()
        {
            reading.abort();
        }
        let ms = self.started.elapsed().as_millis() as u64;
        let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
        if leftovers {
            out.push(b"\n[Cutover stopped the processes this step left running.]\n");
        }
        let (outcome, exit, summary) = judge(status, timed_out, limit);
        StepResult {
            outcome,
            exit,
            summary,
            output: out.text(),
            output_bytes: out.total(),
            ms,
        }
    }
}

fn judge(
    status: Option<ExitStatus>,
    timed_out: bool,
    limit: Duration,
) -> (Outcome, Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    if timed_out {
        let after = match limit.as_secs() {
            s if s < 60 || s % 60 != 0 => format!("{s} s"),
            s => format!("{} min", s / 60),
        };
        let m =
            format!("timed out after {after}: the step and every process it started were stopped");
        return (Outcome::TimedOut, None, m);
    }
    match status {
        None => (
            Outcome::Failed,
            None,
            "its end could not be observed".into(),
        ),
        Some(s) if s.success() => (Outcome::Ok, Some(0), "exit status 0".into()),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => (Outcome::Failed, Some(c), format!("exit status {c}")),
            (None, Some(sig)) => (Outcome::Failed, None, format!("killed by signal {sig}")),
            _ => (Outcome::Failed, None, format!("ended with {s}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_its_beginning_and_end_within_its_size() {
        let mut o = Output::new(1024);
        o.push(b"start\n");
        for _ in 0..10_000 {
            o.push(&[b'x'; 100]);
        }
        o.push(b"\nthe end");
        let text = o.text();
        assert!(text.starts_with("start\n"), "{text}");
        assert!(text.ends_with("the end"), "{text}");
        assert!(text.contains("of output not kept"), "{text}");
        assert!(text.len() < 1200, "{}", text.len());
        assert_eq!(o.total(), 6 + 1_000_000 + 8);
        let mut small = Output::new(1024);
        small.push(b"all of it");
        assert_eq!(small.text(), "all of it");
    }
}
