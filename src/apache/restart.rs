//! A graceful restart that does not leave new connections waiting a second (issue 14).
//!
//! After `-k graceful`, Apache's parent tells the old processes to finish, re-reads its
//! configuration (2–9 ms here), then starts the new generation one process for each old
//! one it reaps. If none has exited by that first look (an idle old process takes 2–6 ms
//! to), it sleeps a whole second (`ap_wait_or_timeout` in server/mpm_common.c) before
//! starting any, while the old ones no longer accept: every new connection waits that
//! second. It is a race against the parse, so no sizing removes it (measured with 8×16,
//! 16×8 and 4×64 processes × threads, keep-alive off, the worker MPM: 10–30 % of restarts
//! stalled, with or without load). The parent's sleep ends on a signal, though: when no
//! new process shows up soon after the signal, a second graceful restart wakes the
//! parent, which by then finds the old processes gone and starts the new generation at once.
//! Measured on a private Apache (100 restarts 0.2 s apart, 160 1.5 s apart, light load):
//! no request over 250 ms (max 62 ms), 0 failed, 0 torn; the second restart was needed in
//! 19 of 260. Without it: 12–23 % of restarts had requests of ~1 s.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::command::run_command;
use super::{errorlog, process};

/// How long a parent that has said it resumes may take to start its first new process
/// before it is taken to be asleep (~0.1–0.3 ms when all is well; margin for a loaded machine).
const FIRST_PROCESS_WAIT: Duration = Duration::from_millis(15);

/// How long a restart may take to say it resumes (a long configuration to read; after it,
/// `confirm_restart` reports what happened).
const RESUME_WAIT: Duration = Duration::from_secs(10);

/// At most this many extra graceful restarts for one reload.
const MAX_WAKES: usize = 2;

/// The parent's child processes (old and new workers), from each of its threads' list.
pub(crate) fn children_of(parent: i32, conf: &Path) -> HashSet<i32> {
    let lists: Vec<String> = std::fs::read_dir(format!("/proc/{parent}/task"))
        .into_iter()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("children")).ok())
        .collect();
    if lists.is_empty() {
        // Kernels built without CONFIG_PROC_CHILDREN: the slower scan of /proc.
        return process::our_children(parent, conf).into_iter().collect();
    }
    lists
        .iter()
        .flat_map(|l| l.split_whitespace())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Where a restart can be followed: the parent's error log and its size before the first
/// signal.
pub(crate) struct Log<'a> {
    pub path: &'a Path,
    pub start: u64,
}

impl Log<'_> {
    /// Waits until the log says `n` restarts resumed (the parent has read its configuration
    /// and is in its main loop); false if it does not within [`RESUME_WAIT`], says one
    /// failed, or `parent` is gone.
    async fn resumed(&self, n: usize, parent: i32, conf: &Path) -> bool {
        let deadline = Instant::now() + RESUME_WAIT;
        loop {
            let text = errorlog::since(self.path, self.start);
            if errorlog::restart_outcome(&text) == Some(false) || !process::is_ours(parent, conf) {
                return false;
            }
            if errorlog::resumed_count(&text) >= n {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// After a graceful restart of `parent` (whose children were `before`): once the parent
/// says it resumes, waits briefly for a process of the new generation; while none comes,
/// checks the configuration with `check` (`apache2 -t`: another site's change may be
/// writing its vhost) and signals the verified parent again. The timing starts at the
/// parent's own word, not at the signal: a parent still reading a long configuration
/// (many certificates, a loaded machine) is not signalled, which would only make it read
/// again. Returns how many extra signals it sent.
pub(crate) async fn wake_new_generation(
    parent: i32,
    conf: &Path,
    before: &HashSet<i32>,
    log: &Log<'_>,
    check: &[String],
) -> usize {
    let mut wakes = 0;
    loop {
        if !log.resumed(wakes + 1, parent, conf).await {
            return wakes;
        }
        let deadline = Instant::now() + FIRST_PROCESS_WAIT;
        while Instant::now() < deadline {
            if children_of(parent, conf)
                .iter()
                .any(|c| !before.contains(c))
            {
                return wakes;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if wakes == MAX_WAKES {
            return wakes;
        }
        if !process::is_ours(parent, conf) {
            return wakes;
        }
        let checked = run_command(check).await.is_ok_and(|o| o.ok);
        // A raw signal to the verified pid, never `-k graceful`: with the parent gone
        // meanwhile, that would start a new Apache.
        if !checked || !process::signal_if_ours(parent, conf, Signal::SIGUSR1) {
            return wakes;
        }
        wakes += 1;
        tracing::info!(
            parent,
            wakes,
            "Apache started no new process after a graceful restart: signalled it again"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;
    use std::process::{Child, Command};

    use crate::apache::restart::*;

    /// A stand-in for Apache's parent, started with `-f <conf>` like ours: at each SIGUSR1
    /// it rewrites its pid file `<conf>.pid` and writes Apache's "resuming" line to
    /// `<conf>.log`, and from the `from`-th on it also starts a child. It says it is ready
    /// (its handler set) by creating `<conf>.ready`.
    fn stand_in(conf: &Path, from: &str) -> Child {
        let script = format!(
            "my $n = 0; $SIG{{USR1}} = sub {{ \
               open(my $p, '>', $ARGV[1] . '.pid') or die; print $p \"$$\\n\"; close($p); \
               open(my $l, '>>', $ARGV[1] . '.log') or die; \
               print $l \"AH00489: configured -- resuming normal operations\\n\"; close($l); \
               exec('sleep', '30') if ++$n >= {from} && fork() == 0 }}; \
             open(my $f, '>', $ARGV[1] . '.ready') or die; close($f); sleep 1 for 1..30"
        );
        let ready = conf.with_extension("conf.ready");
        let _ = std::fs::remove_file(&ready);
        let child = Command::new("perl")
            .args(["-e", &script, "--", "-f"])
            .arg(conf)
            .process_group(0)
            .spawn()
            .expect("perl (Debian's perl-base) runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "the stand-in never got ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    fn stop(mut child: Child) {
        let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    }

    /// What the test's "graceful" does: one signal, as `-k graceful` sends.
    fn signal(pid: i32) {
        let pid = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(pid, Signal::SIGUSR1).unwrap();
    }

    #[tokio::test]
    async fn a_parent_that_starts_nothing_is_signalled_again_until_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("httpd.conf");
        let log_path = conf.with_extension("conf.log");
        let marker = dir.path().join("checked");
        let check = ["touch".to_string(), marker.display().to_string()];
        // Asleep after the first signal: it resumes but starts nothing until signalled again.
        let asleep = stand_in(&conf, "2");
        let pid = asleep.id() as i32;
        let before = children_of(pid, &conf);
        assert!(before.is_empty(), "{before:?}");
        let log = Log {
            path: &log_path,
            start: errorlog::len(&log_path),
        };
        signal(pid);
        assert_eq!(
            wake_new_generation(pid, &conf, &before, &log, &check).await,
            1
        );
        assert!(marker.exists(), "the configuration was checked first");
        assert_eq!(
            children_of(pid, &conf).len(),
            1,
            "the second signal started one"
        );
        stop(asleep);

        // A parent that starts its new generation by itself is left alone.
        std::fs::remove_file(&marker).unwrap();
        let awake = stand_in(&conf, "1");
        let pid = awake.id() as i32;
        let log = Log {
            path: &log_path,
            start: errorlog::len(&log_path),
        };
        signal(pid);
        assert_eq!(
            wake_new_generation(pid, &conf, &HashSet::new(), &log, &check).await,
            0
        );
        assert!(!marker.exists(), "nothing was checked or signalled");
        stop(awake);

        // A parent that is gone is not waited for, checked or signalled.
        let log = Log {
            path: &log_path,
            start: errorlog::len(&log_path),
        };
        let t = Instant::now();
        assert_eq!(
            wake_new_generation(pid, &conf, &HashSet::new(), &log, &check).await,
            0
        );
        assert!(t.elapsed() < RESUME_WAIT, "not waited for");
        assert!(!marker.exists());
    }

    /// deploy/apache-graceful, the same for a system Apache, against a stand-in that starts
    /// nothing at the first signal, only at the second (and one that starts at the first).
    #[test]
    fn the_system_mode_script_reloads_again_only_when_nothing_started() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("httpd.conf");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/apache-graceful");
        for (from, signals) in [("2", 2), ("1", 1)] {
            let apache = stand_in(&conf, from);
            let pid = apache.id() as i32;
            // As Apache's: written at its last restart, a while ago.
            let pid_file = conf.with_extension("conf.pid");
            std::fs::write(&pid_file, format!("{pid}\n")).unwrap();
            let long_ago = std::time::SystemTime::now() - Duration::from_secs(60);
            let file = std::fs::File::options()
                .write(true)
                .open(&pid_file)
                .unwrap();
            file.set_modified(long_ago).unwrap();
            let out = Command::new("sh")
                .arg(script)
                .arg(&pid_file)
                .args(["kill", "-USR1", &pid.to_string()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let said = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                said.matches("reloading again").count(),
                signals - 1,
                "{said}"
            );
            // The last signal is sent as the script ends: the stand-in forks a moment later.
            let deadline = Instant::now() + Duration::from_secs(10);
            while children_of(pid, &conf).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            assert_eq!(children_of(pid, &conf).len(), 1, "one new process");
            stop(apache);
        }
    }

    #[test]
    fn the_children_of_a_process_are_listed() {
        let me = std::process::id() as i32;
        let conf = Path::new("/nonexistent.conf");
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let during = children_of(me, conf);
        let _ = child.kill();
        let _ = child.wait();
        assert!(during.contains(&(child.id() as i32)), "{during:?}");
    }
}
