//! switch_downtime: failed and torn answers while a site is switched back and forth 200
//! times under load, by several methods on the same private Apache (the one `cutover serve`
//! manages), beside the same load with no switch at all:
//!
//! 0. no switch: the load alone, what the served rate of the others is compared with;
//! 1. the hand-run script (`rm current; ln -s releases/X current`), the baseline;
//! 2. Cutover, symlink mode (rename(2) of a fresh link over `current`);
//! 3. Cutover, pinned mode: the live-release map is replaced, no reload (issue 14);
//! 4. Cutover, pinned mode with a settings change before every switch: the vhost is
//!    rewritten, configtest, graceful reload (the reload-based switch pinned mode used to do
//!    for every release, and what a settings change still needs);
//! 5. and 6. Cutover with a PHP site (issue 12), pinned and symlink mode: `/` is an
//!    `index.php` that prints the release's page, through the console's own PHP-FPM (no
//!    switch reloads PHP-FPM: its pools resolve `current` on every request).
//!
//! Cutover's switches go through the real API (`POST …/activate`). The two releases differ
//! in content and size: a small page and a ~100 KB file, each with a per-release marker, so
//! a response whose headers (Content-Length, or `X-Cutover-Release` in pinned mode) belong
//! to one release and whose body belongs to the other, or is short, is counted as torn.

mod common;

use std::time::{Duration, Instant};

use common::load::{self, Spec, Stats};
use common::releases::{big, judge, judge_any, page, Release};
use common::{ms, BenchDir, Server};
use cutover::auth::Role;
use serde_json::json;

const SWITCHES: usize = 200;
const GAP: Duration = Duration::from_millis(50);
const RATE: f64 = 3000.0;

#[derive(Clone, Copy, PartialEq)]
enum Method {
    NoSwitch,
    Script,
    Symlink,
    Pinned,
    Reload,
    PhpPinned,
    PhpSymlink,
}

impl Method {
    fn site(self) -> &'static str {
        match self {
            Method::NoSwitch => "still",
            Method::Script => "script",
            Method::Symlink => "symlink",
            Method::Pinned => "pinned",
            Method::Reload => "reload",
            Method::PhpPinned => "phppinned",
            Method::PhpSymlink => "phpsymlink",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Method::NoSwitch => "no switch (same load)",
            Method::Script => "hand-run script (rm + ln -s)",
            Method::Symlink => "Cutover, symlink mode",
            Method::Pinned => "Cutover, pinned (live map)",
            Method::Reload => "Cutover, pinned + reload",
            Method::PhpPinned => "Cutover, PHP, pinned",
            Method::PhpSymlink => "Cutover, PHP, symlink",
        }
    }
    fn switch_mode(self) -> &'static str {
        match self {
            Method::Script | Method::Symlink | Method::PhpSymlink => "symlink",
            _ => "pinned",
        }
    }
    fn php(self) -> bool {
        matches!(self, Method::PhpPinned | Method::PhpSymlink)
    }
}

/// An `index.php` that prints `page` byte for byte.
fn php_source(page: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(page);
    format!("<?php echo base64_decode('{b64}');").into_bytes()
}

struct Outcome {
    method: Method,
    stats: Stats,
    switches: usize,
    switch_errors: Vec<String>,
    switch_ms: Vec<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_by_cargo_bench("switch_downtime") {
        return Ok(());
    }
    common::stop_everything_on_ctrl_c();
    common::heading("switch_downtime");
    let started = Instant::now();
    let dir = BenchDir::new("switch");
    let mut settings = common::settings(dir.path(), true);
    common::seed_users(&settings, &[("bench", Role::Admin)]).await?;
    let token = common::token(&settings, "bench").await?;
    let server = Server::start(dir.path(), &mut settings).await?;
    let http = reqwest::Client::new();
    let base = server.base.clone();

    let files = [
        (page('A', 1200), big('A', 100_000)),
        (page('B', 2300), big('B', 110_000)),
    ];
    let methods = [
        Method::NoSwitch,
        Method::Script,
        Method::Symlink,
        Method::Pinned,
        Method::Reload,
        Method::PhpPinned,
        Method::PhpSymlink,
    ];
    let mut sites = Vec::new();
    for m in methods {
        let site = m.site();
        let (status, body) = common::post_json(
            &http,
            &format!("{base}/api/v1/sites"),
            &token,
            Some(json!({"name": site, "server_name": format!("{site}.bench.test"), "switch": m.switch_mode(),
                "runtime": if m.php() { "php" } else { "static" }})),
        )
        .await?;
        anyhow::ensure!(status == 201, "creating {site}: {status} {body}");
        let mut rels = Vec::new();
        for (i, (p, b)) in files.iter().enumerate() {
            let source = php_source(p);
            let index = match m.php() {
                true => ("index.php", &source[..]),
                false => ("index.html", &p[..]),
            };
            let archive = common::targz(&[index, ("big.bin", b)]);
            let id = common::upload(&http, &base, &token, site, archive).await?;
            rels.push(Release {
                label: (b'A' + i as u8) as char,
                id,
                page: p.clone(),
                big: b.clone(),
            });
        }
        activate(&http, &base, &token, site, &rels[0].id).await?;
        sites.push((m, rels));
    }
    println!(
        "   load: 3 keep-alive + 3 Connection: close clients, {RATE} req/s aimed, paths /, /, /big.bin; \
         {SWITCHES} switches per method, {} ms apart",
        GAP.as_millis()
    );

    let core = cutover::app::Core::open(&settings).await?;
    let mut outcomes = Vec::new();
    // The no-switch load runs first and again last: the machine is shared, and its noise
    // drifts over the run, so the others are compared with the mean of both.
    for (method, rels) in sites.iter().chain(sites.first()) {
        let ctx = Ctx {
            server: &server,
            http: &http,
            token: &token,
            core: &core,
            settings: &settings,
        };
        let o = run(&ctx, *method, rels).await?;
        print_outcome(&o);
        outcomes.push(o);
    }

    println!();
    println!(
        "   {:<31} {:>8} {:>7} {:>8} {:>10} {:>6} {:>14} {:>12} {:>13} {:>10}",
        "method",
        "requests",
        "req/s",
        "non-2xx",
        "conn errs",
        "torn",
        "idle KA closes",
        "switch p50",
        "request p99",
        "max"
    );
    for o in &outcomes {
        println!(
            "   {:<31} {:>8} {:>7.0} {:>8} {:>10} {:>6} {:>14} {:>9.1} ms {:>10.1} ms {:>7.1} ms",
            o.method.title(),
            o.stats.sent,
            o.stats.rate(),
            o.stats.non_2xx_total(),
            o.stats.conn_errors_total(),
            o.stats.torn_total(),
            o.stats.idle_closed_retried,
            common::median(&o.switch_ms),
            common::percentile(&o.stats.latencies_ms, 99.0),
            max_latency(&o.stats)
        );
    }
    let get = |m: Method| outcomes.iter().find(|o| o.method == m).unwrap();
    let (script, symlink, pinned, reload) = (
        get(Method::Script),
        get(Method::Symlink),
        get(Method::Pinned),
        get(Method::Reload),
    );
    let stills: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.method == Method::NoSwitch)
        .collect();
    let still_rate = stills.iter().map(|o| o.stats.rate()).sum::<f64>() / stills.len() as f64;
    let share = |o: &Outcome| o.stats.rate() / still_rate;
    let whole = |o: &Outcome| {
        o.stats.failed() == 0
            && o.stats.torn_total() == 0
            && o.switches == SWITCHES
            && o.switch_errors.is_empty()
    };
    let pinned_ok = whole(pinned)
        && pinned.stats.idle_closed_retried == 0
        && share(pinned) >= 0.95
        && max_latency(&pinned.stats) <= 50.0;
    let reload_ok = whole(reload) && share(reload) >= 0.80 && max_latency(&reload.stats) <= 250.0;
    let symlink_ok = symlink.stats.failed() == 0 && symlink.switch_errors.is_empty();
    let (php_pinned, php_symlink) = (get(Method::PhpPinned), get(Method::PhpSymlink));
    let php_ok = whole(php_pinned) && whole(php_symlink);
    println!(
        "   served vs no switch ({:.0} req/s, mean of the two runs; their max latency {:.1} ms): \
         pinned (live map) {:.1} %, pinned + reload {:.1} %, symlink {:.1} %, script {:.1} %",
        still_rate,
        stills
            .iter()
            .map(|o| max_latency(&o.stats))
            .fold(0.0, f64::max),
        100.0 * share(pinned),
        100.0 * share(reload),
        100.0 * share(symlink),
        100.0 * share(script)
    );
    println!(
        "   target pinned (live map): 0 failed, 0 torn, 0 keep-alive closes, ≥ 95 % served, max ≤ 50 ms — {}",
        common::verdict(pinned_ok)
    );
    println!(
        "   target pinned + reload: 0 failed, 0 torn, ≥ 80 % served, max ≤ 250 ms — {}; symlink: 0 failed — {}",
        common::verdict(reload_ok),
        common::verdict(symlink_ok)
    );
    println!(
        "   target PHP (both modes): 0 failed, 0 torn — {}; PHP served {:.0} req/s pinned, {:.0} req/s symlink (static pinned {:.0} req/s)",
        common::verdict(php_ok),
        php_pinned.stats.rate(),
        php_symlink.stats.rate(),
        pinned.stats.rate()
    );
    println!("   took {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "SUMMARY switch_downtime: pinned (live map) failed {} torn {} KA closes {} served {:.1} % max {:.1} ms — target {} | \
         pinned + reload failed {} torn {} KA closes {} served {:.1} % max {:.1} ms — target {} | \
         symlink failed {} torn {} | script failed {} torn {} | PHP pinned failed {} torn {} {:.0} req/s, symlink failed {} torn {} {:.0} req/s — target {}",
        pinned.stats.failed(),
        pinned.stats.torn_total(),
        pinned.stats.idle_closed_retried,
        100.0 * share(pinned),
        max_latency(&pinned.stats),
        common::verdict(pinned_ok),
        reload.stats.failed(),
        reload.stats.torn_total(),
        reload.stats.idle_closed_retried,
        100.0 * share(reload),
        max_latency(&reload.stats),
        common::verdict(reload_ok),
        symlink.stats.failed(),
        symlink.stats.torn_total(),
        script.stats.failed(),
        script.stats.torn_total(),
        php_pinned.stats.failed(),
        php_pinned.stats.torn_total(),
        php_pinned.stats.rate(),
        php_symlink.stats.failed(),
        php_symlink.stats.torn_total(),
        php_symlink.stats.rate(),
        common::verdict(php_ok),
    );
    drop(server);
    Ok(())
}

async fn activate(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    site: &str,
    id: &str,
) -> anyhow::Result<()> {
    let (status, body) = common::post_json(
        http,
        &format!("{base}/api/v1/sites/{site}/releases/{id}/activate"),
        token,
        None,
    )
    .await?;
    anyhow::ensure!(
        status == 200 && body["active"] == id,
        "activating {id} on {site}: {status} {body}"
    );
    Ok(())
}

/// The slowest answered request, in milliseconds.
fn max_latency(s: &Stats) -> f64 {
    s.latencies_ms.iter().copied().fold(0.0, f64::max)
}

/// What every run needs.
struct Ctx<'a> {
    server: &'a Server,
    http: &'a reqwest::Client,
    token: &'a str,
    core: &'a cutover::app::Core,
    settings: &'a cutover::config::Settings,
}

async fn run(ctx: &Ctx<'_>, method: Method, rels: &[Release]) -> anyhow::Result<Outcome> {
    let (server, http, token) = (ctx.server, ctx.http, ctx.token);
    let site = method.site();
    let site_dir = server.site_dir(site);
    let spec = Spec {
        addr: server.apache_addr(),
        host: format!("{site}.bench.test"),
        // A PHP site's load is its PHP page: a static file read across a symlink switch can be
        // torn (symlink mode's known limit, measured on its own above); PHP's answer must not.
        paths: match method.php() {
            true => vec!["/".into()],
            false => vec!["/".into(), "/".into(), "/big.bin".into()],
        },
        keep_alive_clients: 3,
        close_clients: 3,
        rate: RATE,
        max_duration: Duration::from_secs(200),
    };
    // Reloads take longer: give them more time, within the 5-minute budget.
    let budget = if method == Method::Reload {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(50)
    };
    // A PHP answer has no Content-Length to name its release by (it is chunked): whole when
    // its body is exactly one release's.
    let judged = match method.php() {
        true => judge_any(rels.to_vec()),
        false => judge(rels.to_vec()),
    };
    let running = load::start(spec, judged);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deadline = Instant::now() + budget;
    let mut switch_ms = Vec::new();
    let mut switch_errors = Vec::new();
    let mut switches = 0;
    if method == Method::NoSwitch {
        // As long as a run of live-map switches takes, with nothing switched.
        tokio::time::sleep(SWITCHES as u32 * (GAP + Duration::from_millis(10))).await;
    }
    for i in 0..SWITCHES {
        if Instant::now() > deadline || method == Method::NoSwitch {
            break;
        }
        let to = &rels[(i + 1) % 2];
        let t = Instant::now();
        let result = match method {
            Method::Script => {
                // Exactly what a hand-run release script does.
                let status = tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("rm current; ln -s releases/{} current", to.id))
                    .current_dir(&site_dir)
                    .status()
                    .await?;
                if status.success() {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("the script exited with {status}"))
                }
            }
            Method::Symlink | Method::Pinned | Method::PhpPinned | Method::PhpSymlink => {
                activate(http, &server.base, token, site, &to.id).await
            }
            Method::Reload => match common::change_aliases(ctx.core, ctx.settings, site, i).await {
                Ok(()) => activate(http, &server.base, token, site, &to.id).await,
                Err(e) => Err(e),
            },
            Method::NoSwitch => Ok(()),
        };
        switch_ms.push(ms(t.elapsed()));
        switches += 1;
        if let Err(e) = result {
            switch_errors.push(format!("{e:#}"));
        }
        tokio::time::sleep(GAP).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stats = running.finish().await;
    Ok(Outcome {
        method,
        stats,
        switches,
        switch_errors,
        switch_ms,
    })
}

fn print_outcome(o: &Outcome) {
    let s = &o.stats;
    println!();
    println!("-- {}", o.method.title());
    println!(
        "   {} switches (median {:.1} ms, p99 {:.1} ms), {} switch errors{}",
        o.switches,
        common::median(&o.switch_ms),
        common::percentile(&o.switch_ms, 99.0),
        o.switch_errors.len(),
        o.switch_errors
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "   requests sent {} in {:.1} s ({:.0}/s): ok {}, non-2xx {} {:?}, connection errors {} {:?}, torn {} {:?}",
        s.sent,
        s.elapsed.as_secs_f64(),
        s.rate(),
        s.ok,
        s.non_2xx_total(),
        s.non_2xx,
        s.conn_errors_total(),
        s.conn_errors,
        s.torn_total(),
        s.torn
    );
    println!(
        "   idle keep-alive connections closed by the server before an answer (retried once, as browsers do): {}",
        s.idle_closed_retried
    );
    println!(
        "   request latency: {}; over 50 ms: {}, over 250 ms: {}, over 500 ms: {}",
        common::dist(&s.latencies_ms),
        s.latencies_ms.iter().filter(|l| **l > 50.0).count(),
        s.latencies_ms.iter().filter(|l| **l > 250.0).count(),
        s.latencies_ms.iter().filter(|l| **l > 500.0).count()
    );
    for e in &s.torn_examples {
        println!("   torn: {e}");
    }
}
