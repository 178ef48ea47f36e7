//! Deploy steps and crashes (issue 15): the real binary SIGKILLed while a step of each stage
//! runs leaves no step process behind (the step dies with the console, what it started is
//! stopped at the next start), records the interruption, and leaves a whole site; and a step
//! that prints 50 MB leaves the console's memory flat.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::faults::crash::check_invariants;
use crate::faults::env::Env;
use crate::memory::status_kib;

/// `PATCH /api/v1/sites/shop` on the running console; panics unless 200.
fn set_steps(env: &Env, steps: Value) {
    let res = Env::client_for(&env.base, &env.token)
        .client()
        .patch(format!("{}/api/v1/sites/shop", env.base))
        .bearer_auth(&env.token)
        .json(&json!({"steps": steps, "step_timeout_seconds": 600}))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().unwrap_or_default());
}

/// Running: not gone, and not a zombie waiting for its reaper.
fn alive(pid: i32) -> bool {
    !crate::support::is_gone(pid)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn pid_file(path: &std::path::Path) -> i32 {
    let mut pid = 0;
    wait_until(&format!("{}", path.display()), || {
        pid = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        pid > 0
    });
    pid
}

#[test]
fn sigkill_while_a_step_runs_leaves_no_step_process_and_records_the_interruption() {
    let mut env = Env::new("");
    env.start(None);
    let ids = env.two_releases_first_live();
    let home = env.data.join("steps/home/shop");
    let script = "sleep 300 & echo $! > \"$HOME/$CUTOVER_STAGE.child\"; echo $$ > \"$HOME/$CUTOVER_STAGE.parent\"; wait";
    for (trial, point) in cutover::fault::STEP_POINTS.iter().enumerate() {
        let stage = point.strip_prefix("step_").unwrap();
        set_steps(&env, json!({ stage: [["sh", "-c", script]] }));
        env.stop();
        for f in ["child", "parent"] {
            let _ = std::fs::remove_file(home.join(format!("{stage}.{f}")));
        }
        env.start(Some(point));
        let remote = Env::client_for(&env.base, &env.token);
        let action = if stage == "after_unpack" {
            let name = format!("release-step-{trial}");
            std::thread::spawn(move || remote.upload(&name))
        } else {
            let live = env.get("/api/v1/sites/shop")["active_release"]
                .as_str()
                .unwrap()
                .to_owned();
            let other = ids.iter().find(|i| **i != live).unwrap().clone();
            std::thread::spawn(move || remote.activate(&other))
        };
        env.wait_for_marker(point);
        let parent = pid_file(&home.join(format!("{stage}.parent")));
        let child = pid_file(&home.join(format!("{stage}.child")));
        assert!(alive(parent) && alive(child), "{stage}: the step runs");
        env.kill();
        let _ = action.join();
        // The step itself dies with the console (its parent-death signal)…
        wait_until(&format!("{stage}: step {parent} gone"), || !alive(parent));
        // …and what it started is stopped by the next start.
        env.start(None);
        wait_until(&format!("{stage}: child {child} gone"), || !alive(child));
        let events = env.get("/api/v1/audit?action=step&limit=5");
        let last = &events["events"][0];
        assert_eq!(last["outcome"], "interrupted", "{stage}: {last}");
        assert_eq!(last["detail"]["stage"], stage, "{last}");
        assert_eq!(last["detail"]["stopped_leftovers"], true, "{last}");
        set_steps(&env, json!({}));
        check_invariants(&mut env, trial, point);
    }
    env.stop();
}

#[test]
fn a_step_that_prints_50_mb_leaves_the_console_s_memory_flat() {
    let mut env = Env::new("");
    env.start(None);
    // Warm up: one upload with a small step, so the baseline has every path in memory.
    set_steps(&env, json!({"after_unpack": [["sh", "-c", "echo warm"]]}));
    assert_eq!(env.upload("release-warm").0, 201);
    let pid = env.server.as_ref().unwrap().0.id();
    let before = status_kib(pid, "VmHWM:");
    set_steps(
        &env,
        json!({"after_unpack": [["sh", "-c", "head -c 50000000 /dev/urandom | base64 -w 0; echo; echo done"]]}),
    );
    let (status, body) = env.upload("release-loud");
    assert_eq!(status, 201, "{body}");
    let after = status_kib(pid, "VmHWM:");
    let grown = after.saturating_sub(before);
    println!("VmHWM before {before} KiB, after a 67 MB step output {after} KiB (+{grown} KiB)");
    assert!(
        grown < 24 * 1024,
        "peak memory grew by {grown} KiB for a step's 67 MB of output"
    );
    env.stop();
}
