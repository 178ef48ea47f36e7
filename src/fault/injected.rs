//! The injected faults themselves (feature `fault-injection` only).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

static FAULT: LazyLock<Option<(String, String)>> = LazyLock::new(|| {
    let spec = std::env::var("CUTOVER_FAULT").ok()?;
    let (point, action) = spec.split_once(':')?;
    tracing::warn!(%point, %action, "fault injection is on");
    Some((point.to_owned(), action.to_owned()))
});

/// What to do at a point.
enum Action {
    Nothing,
    Pause,
}

fn act(name: &str) -> Action {
    let Some((point, action)) = FAULT.as_ref() else {
        return Action::Nothing;
    };
    if point != name {
        return Action::Nothing;
    }
    if action == "kill-apache" {
        kill_apache_once();
        return Action::Nothing;
    }
    if let Ok(marker) = std::env::var("CUTOVER_FAULT_MARKER") {
        let _ = std::fs::write(marker, name);
    }
    Action::Pause
}

/// Marks a point where a crash is survivable by design; pauses for good when injected,
/// without holding a runtime worker.
pub async fn point(name: &'static str) {
    if let Action::Pause = act(name) {
        std::future::pending::<()>().await;
    }
}

/// [`point`] for code already on a blocking thread (extraction), where sleeping is fine.
pub fn point_blocking(name: &'static str) {
    if let Action::Pause = act(name) {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// Apache dies at this moment (as when a reload fails to bind): SIGKILL the process group of
/// the pid in the file `CUTOVER_FAULT_PIDFILE` names, once.
fn kill_apache_once() {
    static DONE: AtomicBool = AtomicBool::new(false);
    let pid = std::env::var("CUTOVER_FAULT_PIDFILE")
        .ok()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|p| p.trim().parse::<i32>().ok());
    let (Some(pid), false) = (pid, DONE.swap(true, Ordering::SeqCst)) else {
        return;
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    // SIGKILL is delivered asynchronously: wait (bounded, a few ms at a time; this runs once,
    // in a test) until the process has really gone, or the next step could still see it alive.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && crate::apache::running(pid) {
        std::thread::sleep(Duration::from_millis(5));
    }
}
