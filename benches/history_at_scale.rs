//! history_at_scale: page and API latency over a big history — 1,000,000 audit events and
//! 10,000 releases of one site, generated directly with SQL — and a CSV export of every
//! event with the console's peak memory.
//!
//! The generated audit rows are realistic in shape (log-ins, uploads, activations with their
//! steps, configtests, reloads, health checks, refusals, over ~2 years, 50 users, 20 sites)
//! but their `hash`/`prev_hash` are placeholders, not a valid SHA-256 chain: computing a
//! million chained hashes would add nothing to page latency (`cutover audit verify` would
//! report the first event as bad on this database).
//!
//! Also measured: routes added alongside this bench (time-range filters on `/audit` and
//! `/api/v1/audit`, `GET /audit/export.csv` and `/audit/export.json`, `/sites/{site}/timeline`)
//! are measured when this build has them and reported as "not in this build" otherwise: no
//! switch to flip after the merge. If the time-range parameters are not named `from`/`to`,
//! change [`TIME_RANGE`].

mod common;

use std::time::{Duration, Instant};

use common::{dist, mib, ms, percentile, BenchDir, RssSampler, Server};
use cutover::auth::Role;
use futures_util::StreamExt as _;

const EVENTS: i64 = 1_000_000;
const RELEASES: i64 = 10_000;
const SITE: &str = "site-00";
/// Requests per route (fewer if a route is slow: at most [`PER_ROUTE_BUDGET`] each).
const SAMPLES: usize = 500;
const WARM_UP: usize = 10;
const PER_ROUTE_BUDGET: Duration = Duration::from_secs(15);
const P99_TARGET_MS: f64 = 50.0;

/// The time-range filter's query (one week, mid-log). Rename the
/// parameters here if the merged filter calls them something else.
const TIME_RANGE: &str = "from=2024-06-01T00:00:00Z&to=2024-06-08T00:00:00Z";
/// The same range, to check that the answer honours it.
const RANGE_FROM: &str = "2024-06-01T00:00:00Z";
const RANGE_TO: &str = "2024-06-08T00:00:00Z";

/// Audit events: ten kinds in turn, one a minute from 2023-11-14, 50 users, 20 sites.
/// Outcome `interrupted` is rare (10 rows): a filter on it finds almost nothing.
const GEN_EVENTS: &str = r#"
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
INSERT INTO audit_events (id, at, actor, ip, user_agent, action, site, release, outcome, detail,
                          request_id, prev_hash, hash)
SELECT x,
  strftime('%Y-%m-%dT%H:%M:%S.000Z', 1700000000 + x * 60, 'unixepoch'),
  CASE WHEN x % 10 = 7 THEN 'anonymous' ELSE printf('user:user%02d', (x / 10) % 50) END,
  '203.0.113.' || (x % 250),
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36',
  CASE x % 10 WHEN 0 THEN 'login' WHEN 1 THEN 'upload' WHEN 2 THEN 'activate' WHEN 3 THEN 'configtest'
    WHEN 4 THEN 'reload' WHEN 5 THEN 'health_check' WHEN 6 THEN 'activate' WHEN 7 THEN 'login'
    WHEN 8 THEN 'access_denied' ELSE 'logout' END,
  CASE WHEN x % 10 BETWEEN 1 AND 6 THEN printf('site-%02d', (x / 10) % 20) END,
  CASE WHEN x % 10 BETWEEN 1 AND 6 THEN
    strftime('%Y%m%d-%H%M%S', 1700000000 + (x / 10) * 600, 'unixepoch') || printf('-%04x', (x / 10) % 65536) END,
  CASE WHEN x % 100000 = 50003 THEN 'interrupted' WHEN x % 10 = 2 THEN 'started'
    WHEN x % 10 = 7 THEN 'failed' WHEN x % 10 = 8 THEN 'denied' ELSE 'ok' END,
  CASE x % 10
    WHEN 1 THEN '{"sha256":"' || printf('%064x', x) || '","archive_bytes":' || (x % 9000000)
      || ',"format":"tar.gz","files":' || (x % 3000) || ',"unpacked_bytes":' || (x % 20000000)
      || ',"unwrapped":false,"original_name":"site.tar.gz"}'
    WHEN 2 THEN '{"from":"20240101-000000-0001","to":"20240101-000000-0002"}'
    WHEN 3 THEN '{"output":"Syntax OK"}'
    WHEN 4 THEN '{"output":""}'
    WHEN 5 THEN '{"output":"/ answered 200 OK"}'
    WHEN 6 THEN '{"from":"20240101-000000-0001","to":"20240101-000000-0002","steps":[{"step":"check release files","ok":true,"ms":1,"detail":"412 files present"},{"step":"write Apache configuration","ok":true,"ms":0,"detail":"/var/lib/cutover/apache/sites/site.conf"},{"step":"configtest","ok":true,"ms":17,"detail":"Syntax OK"},{"step":"switch current","ok":true,"ms":0,"detail":"current → releases/20240101-000000-0002"},{"step":"graceful reload","ok":true,"ms":19,"detail":""},{"step":"Apache still running","ok":true,"ms":0,"detail":"yes"},{"step":"health check","ok":true,"ms":2,"detail":"/ answered 200 OK"}]}'
    WHEN 7 THEN '{"user":"user07","reason":"wrong user name or password"}'
    WHEN 8 THEN '{"needed_role":"admin"}'
    ELSE '{}' END,
  printf('%016x', x * 2654435761),
  printf('%064x', x - 1),
  printf('%064x', x)
FROM n
"#;

const GEN_SITES: &str = r#"
WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 19)
INSERT INTO sites (name, server_name, switch_mode, created_at, updated_at)
SELECT printf('site-%02d', x), printf('site-%02d.example.org', x), 'pinned',
       '2023-11-14T22:13:20.000Z', '2023-11-14T22:13:20.000Z' FROM n
"#;

/// Releases of site-00, one an hour: the newest 10 ready, every 97th failed, the rest deleted
/// by retention.
const GEN_RELEASES: &str = r#"
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
INSERT INTO releases (site_id, release_id, state, sha256, archive_bytes, unpacked_bytes, files, format,
                      uploaded_by, uploaded_at, note, original_name, failure_code, failure_message,
                      deleted_at, deleted_by)
SELECT (SELECT id FROM sites WHERE name = 'site-00'),
  strftime('%Y%m%d-%H%M%S', 1700000000 + x * 3600, 'unixepoch') || printf('-%04x', x),
  CASE WHEN x % 97 = 0 THEN 'failed' WHEN x > ?1 - 10 THEN 'ready' ELSE 'deleted' END,
  printf('%064x', x * 7), 4000000 + x, 12000000 + x, 400 + x % 50, 'tar.gz',
  printf('user:user%02d', x % 50),
  strftime('%Y-%m-%dT%H:%M:%S.000Z', 1700000000 + x * 3600, 'unixepoch'),
  'Release ' || x || ': new front page and updated price list', 'site-' || x || '.tar.gz',
  CASE WHEN x % 97 = 0 THEN 'corrupt_archive' END,
  CASE WHEN x % 97 = 0 THEN 'The archive is damaged: it ends in the middle of a file.' END,
  CASE WHEN x % 97 != 0 AND x <= ?1 - 10 THEN strftime('%Y-%m-%dT%H:%M:%S.000Z', 1700000000 + x * 3600 + 86400, 'unixepoch') END,
  CASE WHEN x % 97 != 0 AND x <= ?1 - 10 THEN 'system' END
FROM n
"#;

const GEN_ACTIVATIONS: &str = r#"
INSERT INTO activations (site_id, release_id, kind, activated_by, activated_at, ended_at, ended_how)
SELECT site_id, release_id, 'activate', uploaded_by, uploaded_at,
       CASE WHEN id = (SELECT max(id) FROM releases) THEN NULL ELSE uploaded_at END,
       CASE WHEN id = (SELECT max(id) FROM releases) THEN NULL ELSE 'replaced' END
FROM releases WHERE state != 'failed' ORDER BY id
"#;

async fn generate(settings: &cutover::config::Settings) -> anyhow::Result<()> {
    let core = cutover::app::Core::open(settings).await?;
    let mut conn = core.pool.acquire().await?;
    let t = Instant::now();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    sqlx::query(GEN_EVENTS)
        .bind(EVENTS)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO audit_head (singleton, last_id, last_hash) VALUES (1, ?1, printf('%064x', ?1))")
        .bind(EVENTS)
        .execute(&mut *conn)
        .await?;
    sqlx::query(GEN_SITES).execute(&mut *conn).await?;
    sqlx::query(GEN_RELEASES)
        .bind(RELEASES)
        .execute(&mut *conn)
        .await?;
    sqlx::query(GEN_ACTIVATIONS).execute(&mut *conn).await?;
    sqlx::query(
        "UPDATE sites SET active_release = (SELECT release_id FROM releases ORDER BY id DESC LIMIT 1) \
         WHERE name = 'site-00'",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await?;
    drop(conn);
    core.pool.close().await;
    let size = std::fs::metadata(settings.database_path())?.len();
    println!(
        "   generated {EVENTS} audit events, 20 sites, {RELEASES} releases and their activations in {:.1} s (database {:.0} MB)",
        t.elapsed().as_secs_f64(),
        size as f64 / 1e6
    );
    Ok(())
}

/// How a route is reached.
#[derive(Clone, Copy)]
enum Via {
    /// The logged-in browser (session cookie).
    Page,
    /// A bearer token.
    Api,
}

struct Clients {
    base: String,
    browser: reqwest::Client,
    api: reqwest::Client,
    token: String,
}

impl Clients {
    fn get(&self, via: Via, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.base);
        match via {
            Via::Page => self.browser.get(url),
            Via::Api => self.api.get(url).bearer_auth(&self.token),
        }
    }

    /// One request, body read in full; (status, milliseconds).
    async fn time(&self, via: Via, path: &str) -> anyhow::Result<(u16, f64)> {
        let t = Instant::now();
        let res = self.get(via, path).send().await?;
        let status = res.status().as_u16();
        let _ = res.bytes().await?;
        Ok((status, ms(t.elapsed())))
    }
}

struct Measured {
    name: String,
    samples: Vec<f64>,
    note: Option<String>,
}

/// Measures every route in turn, round after round (so that bursts of noise from other work
/// on the machine fall on all routes alike), until each has [`SAMPLES`] samples or has used
/// its [`PER_ROUTE_BUDGET`]. Routes that do not answer 200 are reported as not in this build.
async fn measure_all(c: &Clients, routes: &[(&str, Via, String)]) -> anyhow::Result<Vec<Measured>> {
    let mut out = Vec::new();
    for (name, via, path) in routes {
        let (status, _) = c.time(*via, path).await?;
        let note =
            (status != 200).then(|| format!("not in this build (GET {path} answered {status})"));
        if note.is_none() {
            for _ in 0..WARM_UP {
                c.time(*via, path).await?;
            }
        }
        out.push(Measured {
            name: (*name).to_owned(),
            samples: Vec::new(),
            note,
        });
    }
    let mut spent = vec![0.0; routes.len()];
    for _ in 0..SAMPLES {
        for (i, (_, via, path)) in routes.iter().enumerate() {
            if out[i].note.is_some() || spent[i] > ms(PER_ROUTE_BUDGET) {
                continue;
            }
            let (status, t) = c.time(*via, path).await?;
            anyhow::ensure!(status == 200, "{path} answered {status}");
            out[i].samples.push(t);
            spent[i] += t;
        }
    }
    Ok(out)
}

/// Whether the time-range filter is honoured: every event returned lies in the range.
async fn time_range_works(c: &Clients) -> anyhow::Result<bool> {
    let res = c
        .get(Via::Api, &format!("/api/v1/audit?{TIME_RANGE}&limit=500"))
        .send()
        .await?;
    if !res.status().is_success() {
        return Ok(false);
    }
    let v: serde_json::Value = res.json().await?;
    let events = v["events"].as_array().cloned().unwrap_or_default();
    Ok(!events.is_empty()
        && events.iter().all(|e| {
            let at = e["at"].as_str().unwrap_or("");
            (RANGE_FROM..RANGE_TO).contains(&at)
        }))
}

/// A streamed export, read in full while the console's memory is watched.
async fn export(c: &Clients, pid: i32, path: &str) -> anyhow::Result<Option<String>> {
    let rss_before = common::rss_kib(pid).unwrap_or(0);
    let can_reset = common::reset_peak(pid);
    let sampler = RssSampler::start(pid);
    let t = Instant::now();
    let res = c.get(Via::Page, path).send().await?;
    let status = res.status().as_u16();
    let first_byte = t.elapsed();
    if status != 200 {
        sampler.finish();
        return Ok(None);
    }
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut stream = res.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let took = t.elapsed();
    let sampled = sampler.finish();
    let hwm = if can_reset {
        common::peak_kib(pid).unwrap_or(0)
    } else {
        0
    };
    let peak = sampled.max(hwm);
    let growth = mib(peak.saturating_sub(rss_before));
    Ok(Some(format!(
        "{path}: {lines} lines, {:.0} MB in {:.1} s (first byte {:.0} ms), console RSS {:.1} → peak {:.1} MiB: growth {growth:.1} MiB — flat (< 50 MiB): {}",
        bytes as f64 / 1e6,
        took.as_secs_f64(),
        ms(first_byte),
        mib(rss_before),
        mib(peak),
        common::verdict(growth < 50.0)
    )))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_by_cargo_bench("history_at_scale") {
        return Ok(());
    }
    common::stop_everything_on_ctrl_c();
    common::heading("history_at_scale");
    let started = Instant::now();
    let dir = BenchDir::new("history");
    let mut settings = common::settings(dir.path(), false);
    generate(&settings).await?;
    common::seed_users(&settings, &[("reader", Role::Viewer)]).await?;
    let token = common::token(&settings, "reader").await?;
    let server = Server::start(dir.path(), &mut settings).await?;
    println!(
        "   console start-up with this database (spawn → /healthz answers): {:.2} s",
        server.started_in.as_secs_f64()
    );
    let browser = common::browser();
    let status = common::login(&browser, &server.base, "reader", common::PASSWORD).await?;
    anyhow::ensure!(status == 303, "log-in answered {status}");
    let c = Clients {
        base: server.base.clone(),
        browser,
        api: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?,
        token,
    };
    // A release row id deep in the history (for the "older releases" page).
    let deep_release_pk = RELEASES / 2;

    let range_ok = time_range_works(&c).await?;
    let mut routes: Vec<(&str, Via, String)> = vec![
        (
            "history page (newest releases)",
            Via::Page,
            format!("/sites/{SITE}"),
        ),
        (
            "history page, older releases",
            Via::Page,
            format!("/sites/{SITE}?before={deep_release_pk}"),
        ),
        ("audit page, first", Via::Page, "/audit".into()),
        (
            "audit page, deep (before=20000)",
            Via::Page,
            "/audit?before=20000".into(),
        ),
        ("audit API, first 50", Via::Api, "/api/v1/audit".into()),
        ("audit API, 500", Via::Api, "/api/v1/audit?limit=500".into()),
        (
            "filtered: site+action+outcome",
            Via::Page,
            "/audit?site=site-07&action=activate&outcome=ok".into(),
        ),
        (
            "filtered: actor (API)",
            Via::Api,
            "/api/v1/audit?actor=user:user07".into(),
        ),
        (
            "filtered: rare outcome",
            Via::Page,
            "/audit?outcome=interrupted".into(),
        ),
        // The per-site timeline page.
        (
            "site timeline page",
            Via::Page,
            format!("/sites/{SITE}/timeline"),
        ),
    ];
    if range_ok {
        // Time-range filters.
        routes.push((
            "filtered: one week (page)",
            Via::Page,
            format!("/audit?{TIME_RANGE}"),
        ));
        routes.push((
            "filtered: one week (API)",
            Via::Api,
            format!("/api/v1/audit?{TIME_RANGE}"),
        ));
    }

    println!(
        "   latency: one client, routes in turn, {SAMPLES} rounds after {WARM_UP} warm-up requests each (at most {} s per route):",
        PER_ROUTE_BUDGET.as_secs()
    );
    let results = measure_all(&c, &routes).await?;
    for m in &results {
        match &m.note {
            Some(n) => println!("   {:<33} {n}", m.name),
            None => println!(
                "   {:<33} {}  {}",
                m.name,
                dist(&m.samples),
                if percentile(&m.samples, 99.0) <= P99_TARGET_MS {
                    ""
                } else {
                    "← over 50 ms"
                }
            ),
        }
    }
    if !range_ok {
        println!(
            "   {:<33} not in this build (`{TIME_RANGE}` was ignored)",
            "filtered: time range"
        );
    }

    println!("   exports:");
    let mut export_lines = Vec::new();
    for path in ["/audit/export.csv", "/audit/export.json"] {
        match export(&c, server.pid(), path).await? {
            Some(line) => {
                println!("   {line}");
                export_lines.push(line);
            }
            None => println!("   {path}: not in this build"),
        }
    }

    let measured: Vec<&Measured> = results.iter().filter(|m| m.note.is_none()).collect();
    let over: Vec<String> = measured
        .iter()
        .filter(|m| percentile(&m.samples, 99.0) > P99_TARGET_MS)
        .map(|m| format!("{} p99 {:.0} ms", m.name, percentile(&m.samples, 99.0)))
        .collect();
    let pending: Vec<&str> = results
        .iter()
        .filter(|m| m.note.is_some())
        .map(|m| m.name.as_str())
        .chain((!range_ok).then_some("time-range filter"))
        .chain((export_lines.is_empty()).then_some("exports"))
        .collect();
    println!(
        "   target p99 ≤ {P99_TARGET_MS} ms per page: {}{}",
        common::verdict(over.is_empty()),
        if over.is_empty() {
            String::new()
        } else {
            format!(" ({})", over.join("; "))
        }
    );
    println!("   took {:.0} s", started.elapsed().as_secs_f64());
    let worst = measured
        .iter()
        .map(|m| (percentile(&m.samples, 99.0), m.name.as_str()))
        .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
    println!(
        "SUMMARY history_at_scale: {} routes measured, worst p99 {:.1} ms ({}), over 50 ms: {} — target {}; start-up {:.1} s; not in this build: {}",
        measured.len(),
        worst.0,
        worst.1,
        if over.is_empty() { "none".to_owned() } else { over.join(", ") },
        common::verdict(over.is_empty()),
        server.started_in.as_secs_f64(),
        if pending.is_empty() { "none".to_owned() } else { pending.join(", ") }
    );
    drop(server);
    Ok(())
}
