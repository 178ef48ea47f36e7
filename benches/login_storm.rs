//! login_storm: 50 people log in at once (argon2id, m = 19 MiB, t = 2: the console allows one
//! hash per core at a time) while another client keeps loading cheap pages; those pages'
//! latency with and without the storm. Ten storms, a quiet baseline before them.
//!
//! Cheap pages, in turn, every ~5 ms: `GET /healthz`, `GET /login` (the form), and `GET /`
//! (the site list) for a logged-in viewer; the first two from a client without a session.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{dist, ms, percentile, BenchDir, Server};
use cutover::auth::Role;

const USERS: usize = 50;
const STORMS: usize = 10;
const BASELINE: Duration = Duration::from_secs(5);
const PAGES: [&str; 3] = ["/healthz", "/login", "/"];
const P99_TARGET_MS: f64 = 100.0;

/// (page index, during a storm, milliseconds).
type Sample = (usize, bool, f64);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_by_cargo_bench("login_storm") {
        return Ok(());
    }
    common::stop_everything_on_ctrl_c();
    common::heading("login_storm");
    let started = Instant::now();
    let dir = BenchDir::new("login");
    let mut settings = common::settings(dir.path(), false);
    let names: Vec<String> = (0..USERS).map(|i| format!("storm{i:02}")).collect();
    let mut users: Vec<(&str, Role)> = names.iter().map(|n| (n.as_str(), Role::Viewer)).collect();
    users.push(("watcher", Role::Viewer));
    common::seed_users(&settings, &users).await?;
    let server = Server::start(dir.path(), &mut settings).await?;
    let base = server.base.clone();

    // The measuring client, logged in (for `/`).
    let watcher = common::browser();
    let status = common::login(&watcher, &base, "watcher", common::PASSWORD).await?;
    anyhow::ensure!(status == 303, "watcher log-in answered {status}");
    let storm = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    // `/login` redirects a logged-in browser: the form is loaded by a client without a session.
    let anonymous = common::browser();
    let measuring = {
        let (storm, stop, base) = (storm.clone(), stop.clone(), base.clone());
        tokio::spawn(async move {
            let mut samples: Vec<Sample> = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let page = i % PAGES.len();
                i += 1;
                let during = storm.load(Ordering::Relaxed);
                let t = Instant::now();
                let client = if PAGES[page] == "/" {
                    &watcher
                } else {
                    &anonymous
                };
                let res = client.get(format!("{base}{}", PAGES[page])).send().await?;
                let status = res.status();
                let _ = res.bytes().await?;
                let took = ms(t.elapsed());
                anyhow::ensure!(status == 200, "{} answered {status}", PAGES[page]);
                samples.push((page, during || storm.load(Ordering::Relaxed), took));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, anyhow::Error>(samples)
        })
    };

    tokio::time::sleep(BASELINE).await;
    let mut storm_secs = Vec::new();
    let mut login_ms = Vec::new();
    let mut refused = 0;
    for _ in 0..STORMS {
        let gate = Arc::new(tokio::sync::Barrier::new(USERS));
        storm.store(true, Ordering::Relaxed);
        let t = Instant::now();
        let tasks: Vec<_> = names
            .iter()
            .map(|name| {
                let (gate, base, name) = (gate.clone(), base.clone(), name.clone());
                tokio::spawn(async move {
                    let client = common::browser();
                    gate.wait().await;
                    let t = Instant::now();
                    let status = common::login(&client, &base, &name, common::PASSWORD).await?;
                    Ok::<_, anyhow::Error>((status, ms(t.elapsed())))
                })
            })
            .collect();
        for task in tasks {
            let (status, took) = task.await??;
            if status != 303 {
                refused += 1;
            }
            login_ms.push(took);
        }
        storm_secs.push(t.elapsed().as_secs_f64());
        storm.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let samples = measuring.await??;

    println!(
        "   {STORMS} storms of {USERS} simultaneous log-ins (GET /login + POST /login each): {} s each; \
         log-in {}; {refused} not answered 303",
        storm_secs
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" / "),
        dist(&login_ms)
    );
    let pick = |page: usize, during: bool| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.0 == page && s.1 == during)
            .map(|s| s.2)
            .collect()
    };
    let mut worst_storm_p99: f64 = 0.0;
    let mut parts = Vec::new();
    for (i, page) in PAGES.iter().enumerate() {
        let (quiet, busy) = (pick(i, false), pick(i, true));
        let p99 = percentile(&busy, 99.0);
        worst_storm_p99 = worst_storm_p99.max(p99);
        println!("   GET {page:<9} quiet: {}", dist(&quiet));
        println!("   GET {page:<9} storm: {}", dist(&busy));
        parts.push(format!(
            "{page} p99 {:.1} → {:.1} ms",
            percentile(&quiet, 99.0),
            p99
        ));
    }
    let met = worst_storm_p99 <= P99_TARGET_MS && refused == 0;
    println!(
        "   target p99 during the storm ≤ {P99_TARGET_MS} ms: {}",
        common::verdict(met)
    );
    println!("   took {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "SUMMARY login_storm: {} (quiet → storm); {USERS} log-ins took {:.2} s median — target {}",
        parts.join(", "),
        common::median(&storm_secs),
        common::verdict(met)
    );
    drop(server);
    Ok(())
}
