//! switch_downtime: failed and torn answers while a site is switched back and forth 200
//! times under load, by three methods on the same private Apache (the one `cutover serve`
//! manages):
//!
//! 1. the hand-run script (`rm current; ln -s releases/X current`), the baseline;
//! 2. Cutover, symlink mode (rename(2) of a fresh link over `current`);
//! 3. Cutover, pinned mode (vhost names the release folder, configtest, graceful reload).
//!
//! Cutover's switches go through the real API (`POST …/activate`). The two releases differ
//! in content and size: a small page and a ~100 KB file, each with a per-release marker, so
//! a response whose headers (Content-Length, or `X-Cutover-Release` in pinned mode) belong
//! to one release and whose body belongs to the other, or is short, is counted as torn.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::load::{self, Judge, Spec, Stats};
use common::raw::Response;
use common::{ms, BenchDir, Server};
use cutover::auth::Role;
use serde_json::json;

const SWITCHES: usize = 200;
const GAP: Duration = Duration::from_millis(50);
const RATE: f64 = 3000.0;

/// One release's files.
#[derive(Clone)]
struct Release {
    label: char,
    id: String,
    page: Vec<u8>,
    big: Vec<u8>,
}

impl Release {
    fn content(&self, path: &str) -> &[u8] {
        if path == "/" {
            &self.page
        } else {
            &self.big
        }
    }
}

/// The small page: ~1.2 KB (A) or ~2.3 KB (B), marker in the text.
fn page(label: char, size: usize) -> Vec<u8> {
    let mut s = format!(
        "<!doctype html>\n<title>release {label}</title>\n<p>cutover-bench release={label}</p>\n"
    );
    while s.len() < size {
        s.push_str(&format!("<!-- padding of release {label} -->\n"));
    }
    s.truncate(size);
    s.into_bytes()
}

/// The ~100 KB file: marker line, then incompressible bytes seeded by the release.
fn big(label: char, size: usize) -> Vec<u8> {
    let mut v = format!("cutover-bench release={label}\n").into_bytes();
    v.extend(common::noise(label as u64, size - v.len()));
    v
}

/// Which release a body comes from (by its first bytes), for the torn report.
fn body_label(rels: &[Release], path: &str, body: &[u8]) -> String {
    let n = body.len().min(64);
    rels.iter()
        .find(|r| r.content(path).len() >= n && r.content(path)[..n] == body[..n])
        .map(|r| r.label.to_string())
        .unwrap_or_else(|| "neither".into())
}

fn judge(rels: Vec<Release>) -> Judge {
    Arc::new(move |path: &str, r: &Response| {
        let by_headers = match r.header("x-cutover-release") {
            Some(id) => rels.iter().find(|x| x.id == id),
            None => rels
                .iter()
                .find(|x| Some(x.content(path).len()) == r.content_length),
        };
        let Some(h) = by_headers else {
            return Err(format!(
                "headers of neither release (length {:?})",
                r.content_length
            ));
        };
        if r.body == h.content(path) {
            return Ok(());
        }
        Err(format!(
            "headers of {} with body of {}",
            h.label,
            body_label(&rels, path, &r.body)
        ))
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Script,
    Symlink,
    Pinned,
}

impl Method {
    fn site(self) -> &'static str {
        match self {
            Method::Script => "script",
            Method::Symlink => "symlink",
            Method::Pinned => "pinned",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Method::Script => "hand-run script (rm + ln -s)",
            Method::Symlink => "Cutover, symlink mode",
            Method::Pinned => "Cutover, pinned mode",
        }
    }
    fn switch_mode(self) -> &'static str {
        if self == Method::Pinned {
            "pinned"
        } else {
            "symlink"
        }
    }
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
    let methods = [Method::Script, Method::Symlink, Method::Pinned];
    let mut sites = Vec::new();
    for m in methods {
        let site = m.site();
        let (status, body) = common::post_json(
            &http,
            &format!("{base}/api/v1/sites"),
            &token,
            Some(json!({"name": site, "server_name": format!("{site}.bench.test"), "switch": m.switch_mode()})),
        )
        .await?;
        anyhow::ensure!(status == 201, "creating {site}: {status} {body}");
        let mut rels = Vec::new();
        for (i, (p, b)) in files.iter().enumerate() {
            let archive = common::targz(&[("index.html", p), ("big.bin", b)]);
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

    let mut outcomes = Vec::new();
    for (method, rels) in &sites {
        let o = run(&server, &http, &token, *method, rels).await?;
        print_outcome(&o);
        outcomes.push(o);
    }

    println!();
    println!(
        "   {:<31} {:>8} {:>7} {:>8} {:>10} {:>6} {:>14} {:>12} {:>13}",
        "method",
        "requests",
        "req/s",
        "non-2xx",
        "conn errs",
        "torn",
        "idle KA closes",
        "switch p50",
        "request p99"
    );
    for o in &outcomes {
        println!(
            "   {:<31} {:>8} {:>7.0} {:>8} {:>10} {:>6} {:>14} {:>9.1} ms {:>10.1} ms",
            o.method.title(),
            o.stats.sent,
            o.stats.rate(),
            o.stats.non_2xx_total(),
            o.stats.conn_errors_total(),
            o.stats.torn_total(),
            o.stats.idle_closed_retried,
            common::median(&o.switch_ms),
            common::percentile(&o.stats.latencies_ms, 99.0)
        );
    }
    let get = |m: Method| outcomes.iter().find(|o| o.method == m).unwrap();
    let (script, symlink, pinned) = (
        get(Method::Script),
        get(Method::Symlink),
        get(Method::Pinned),
    );
    let pinned_ok = pinned.stats.failed() == 0
        && pinned.stats.torn_total() == 0
        && pinned.switches == SWITCHES
        && pinned.switch_errors.is_empty();
    let symlink_ok = symlink.stats.failed() == 0 && symlink.switch_errors.is_empty();
    println!(
        "   target pinned: 0 failed, 0 torn — {}; symlink: 0 failed — {}",
        common::verdict(pinned_ok),
        common::verdict(symlink_ok)
    );
    println!("   took {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "SUMMARY switch_downtime: script failed {} torn {} | symlink failed {} torn {} | pinned failed {} torn {} \
         (idle keep-alive closes retried: {}/{}/{}) — pinned target {}, symlink target {}",
        script.stats.failed(),
        script.stats.torn_total(),
        symlink.stats.failed(),
        symlink.stats.torn_total(),
        pinned.stats.failed(),
        pinned.stats.torn_total(),
        script.stats.idle_closed_retried,
        symlink.stats.idle_closed_retried,
        pinned.stats.idle_closed_retried,
        common::verdict(pinned_ok),
        common::verdict(symlink_ok)
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

async fn run(
    server: &Server,
    http: &reqwest::Client,
    token: &str,
    method: Method,
    rels: &[Release],
) -> anyhow::Result<Outcome> {
    let site = method.site();
    let site_dir = server.site_dir(site);
    let spec = Spec {
        addr: server.apache_addr(),
        host: format!("{site}.bench.test"),
        paths: vec!["/".into(), "/".into(), "/big.bin".into()],
        keep_alive_clients: 3,
        close_clients: 3,
        rate: RATE,
        max_duration: Duration::from_secs(200),
    };
    // Pinned switches take a reload each: give them more time, within the 5-minute budget.
    let budget = if method == Method::Pinned {
        Duration::from_secs(170)
    } else {
        Duration::from_secs(50)
    };
    let running = load::start(spec, judge(rels.to_vec()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deadline = Instant::now() + budget;
    let mut switch_ms = Vec::new();
    let mut switch_errors = Vec::new();
    let mut switches = 0;
    for i in 0..SWITCHES {
        if Instant::now() > deadline {
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
            Method::Symlink | Method::Pinned => {
                activate(http, &server.base, token, site, &to.id).await
            }
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
        "   request latency: {}; over 500 ms: {}",
        common::dist(&s.latencies_ms),
        s.latencies_ms.iter().filter(|l| **l > 500.0).count()
    );
    for e in &s.torn_examples {
        println!("   torn: {e}");
    }
}
