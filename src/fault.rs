//! Fault injection for the crash-safety suite (tests/faults). Off unless the environment
//! variable `CUTOVER_FAULT=<point>:pause` is set (or `<point>:kill-apache`, which kills the
//! private Apache there, once): with `pause`, on reaching that named point the
//! process writes the file named by `CUTOVER_FAULT_MARKER` and stops there, so the test can
//! SIGKILL it at exactly that moment. Normal runs never set it; a point is one comparison.

use std::sync::LazyLock;
use std::time::Duration;

static FAULT: LazyLock<Option<(String, String)>> = LazyLock::new(|| {
    let spec = std::env::var("CUTOVER_FAULT").ok()?;
    let (point, action) = spec.split_once(':')?;
    tracing::warn!(%point, %action, "fault injection is on");
    Some((point.to_owned(), action.to_owned()))
});

/// Every named point, for the suite to iterate over.
pub const POINTS: &[&str] = &[
    "upload_streaming",
    "extracting",
    "after_extract",
    "after_rename",
    "during_retention",
    "before_vhost",
    "after_vhost",
    "after_configtest",
    "after_switch",
    "after_reload",
    "before_record",
];

/// Marks a point where a crash is survivable by design; pauses forever when injected.
pub fn point(name: &str) {
    let Some((point, action)) = FAULT.as_ref() else {
        return;
    };
    if point != name {
        return;
    }
    if action == "kill-apache" {
        // Apache dies at this moment (as when a reload fails to bind): SIGKILL the process
        // group of the pid in the file CUTOVER_FAULT_PIDFILE names, once.
        static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let pid = std::env::var("CUTOVER_FAULT_PIDFILE")
            .ok()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let (Some(pid), false) = (pid, DONE.swap(true, std::sync::atomic::Ordering::SeqCst)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(-pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            // SIGKILL is delivered asynchronously: wait (bounded) until the process has
            // really gone, or the next step could still see it alive for a moment.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline && running(pid) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        return;
    }
    if let Ok(marker) = std::env::var("CUTOVER_FAULT_MARKER") {
        let _ = std::fs::write(marker, name);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// True while `pid` exists and is not a zombie (state `Z` in /proc/PID/stat).
fn running(pid: i32) -> bool {
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
