//! activation_latency: how long a pinned-mode activation takes through the API — until its
//! answer, and until Apache serves the new content — over 50 activations, against the
//! floor on the same Apache instance in the same run: rewrite a vhost, `apache2 -t`, then
//! `apache2 -k graceful`, until the new content is served. The two alternate, so machine
//! noise falls on both. No other load runs.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::raw::Conn;
use common::{dist, median, ms, BenchDir, Server};
use cutover::auth::Role;
use serde_json::json;

const ROUNDS: usize = 50;
const WARM_UP: usize = 3;
const SITE: &str = "lat";
const HOST: &str = "lat.bench.test";
const FLOOR_HOST: &str = "floor.bench.test";

/// Polls `GET /` on fresh connections until the body contains `marker`; the time since `t0`.
async fn visible(
    addr: std::net::SocketAddr,
    host: &'static str,
    marker: String,
    t0: Instant,
) -> Option<Duration> {
    let deadline = t0 + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut c = Conn::new(addr, host, false);
        if let Ok(r) = c.get("/").await {
            if r.status == 200 && String::from_utf8_lossy(&r.body).contains(&marker) {
                return Some(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

fn floor_vhost(root: &Path, which: &str) -> String {
    let r = root.display();
    format!(
        "<VirtualHost *:80 *:*>\n    ServerName {FLOOR_HOST}\n    DocumentRoot \"{r}/{which}\"\n    \
         <Directory \"{r}\">\n        Require all granted\n    </Directory>\n</VirtualHost>\n"
    )
}

struct Floor {
    root: PathBuf,
    vhost: PathBuf,
    conf: PathBuf,
    addr: std::net::SocketAddr,
}

impl Floor {
    /// One floor cycle: (time of `-t` + `-k graceful`, time until the new content is served).
    async fn switch(&self, which: &str) -> anyhow::Result<(Duration, Duration)> {
        let t0 = Instant::now();
        let tmp = self.vhost.with_extension("tmp");
        std::fs::write(&tmp, floor_vhost(&self.root, which))?;
        std::fs::rename(&tmp, &self.vhost)?;
        for args in [&["-t"][..], &["-k", "graceful"][..]] {
            let out = tokio::process::Command::new("/usr/sbin/apache2")
                .arg("-f")
                .arg(&self.conf)
                .args(args)
                .output()
                .await?;
            anyhow::ensure!(
                out.status.success(),
                "apache2 {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let commands = t0.elapsed();
        let seen = visible(self.addr, FLOOR_HOST, format!("floor={which}"), t0)
            .await
            .ok_or_else(|| anyhow::anyhow!("the floor's new content never showed"))?;
        Ok((commands, seen))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_by_cargo_bench("activation_latency") {
        return Ok(());
    }
    common::stop_everything_on_ctrl_c();
    common::heading("activation_latency");
    let started = Instant::now();
    let dir = BenchDir::new("latency");
    let mut settings = common::settings(dir.path(), true);
    common::seed_users(&settings, &[("bench", Role::Admin)]).await?;
    let token = common::token(&settings, "bench").await?;
    let server = Server::start(dir.path(), &mut settings).await?;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let addr = server.apache_addr();

    let (status, body) = common::post_json(
        &http,
        &format!("{base}/api/v1/sites"),
        &token,
        Some(json!({"name": SITE, "server_name": HOST, "switch": "pinned"})),
    )
    .await?;
    anyhow::ensure!(status == 201, "creating the site: {status} {body}");
    let mut ids = Vec::new();
    for label in ["A", "B"] {
        let page = format!("<!doctype html><p>cutover-bench release={label}</p>\n");
        let archive = common::targz(&[("index.html", page.as_bytes())]);
        ids.push((
            label,
            common::upload(&http, &base, &token, SITE, archive).await?,
        ));
    }

    // The floor: a vhost of our own on the same instance, switched between two folders.
    let root = dir.path().join("floor");
    for which in ["a", "b"] {
        let d = root.join(which);
        std::fs::create_dir_all(&d)?;
        std::fs::write(
            d.join("index.html"),
            format!("<!doctype html><p>floor={which}</p>\n"),
        )?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(d.join("index.html"), std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
    let floor = Floor {
        vhost: server.apache_dir().join("sites/zz-floor.conf"),
        conf: server.apache_dir().canonicalize()?.join("httpd.conf"),
        root,
        addr,
    };

    let mut answer = Vec::new();
    let mut shown = Vec::new();
    let mut floor_cmds = Vec::new();
    let mut floor_shown = Vec::new();
    let mut steps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..ROUNDS + WARM_UP {
        let counted = i >= WARM_UP;
        // Cutover: POST activate, while a poller watches for the new page.
        let (label, id) = &ids[(i + 1) % 2];
        let t0 = Instant::now();
        let watcher = tokio::spawn(visible(
            addr,
            HOST,
            format!("cutover-bench release={label}"),
            t0,
        ));
        let (status, body) = common::post_json(
            &http,
            &format!("{base}/api/v1/sites/{SITE}/releases/{id}/activate"),
            &token,
            None,
        )
        .await?;
        let answered = t0.elapsed();
        anyhow::ensure!(status == 200, "activation {i}: {status} {body}");
        let seen = watcher
            .await?
            .ok_or_else(|| anyhow::anyhow!("activation {i}: new content never showed"))?;
        // The floor, right after, on the same instance.
        let (cmds, fseen) = floor.switch(["a", "b"][i % 2]).await?;
        if counted {
            answer.push(ms(answered));
            shown.push(ms(seen));
            floor_cmds.push(ms(cmds));
            floor_shown.push(ms(fseen));
            for s in body["steps"].as_array().into_iter().flatten() {
                steps
                    .entry(s["step"].as_str().unwrap_or("?").to_owned())
                    .or_default()
                    .push(s["ms"].as_f64().unwrap_or(0.0));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!("   {ROUNDS} activations (pinned mode, alternating two releases) after {WARM_UP} warm-up rounds, no other load");
    println!("   Cutover: request → answer           {}", dist(&answer));
    println!("   Cutover: request → new content seen {}", dist(&shown));
    println!(
        "   floor:   apache2 -t + -k graceful    {}",
        dist(&floor_cmds)
    );
    println!(
        "   floor:   … → new content seen       {}",
        dist(&floor_shown)
    );
    println!("   Cutover's steps (medians, from the activation report):");
    for (name, v) in &steps {
        println!("      {:<28} {:7.1} ms", name, median(v));
    }
    let ratio = median(&answer) / median(&floor_shown);
    let ratio_seen = median(&shown) / median(&floor_shown);
    let met = ratio <= 1.5;
    println!(
        "   ratio (median answer / median floor): {ratio:.2}; new content seen: {ratio_seen:.2} — target ≤ 1.5: {}",
        common::verdict(met)
    );
    println!("   took {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "SUMMARY activation_latency: median answer {:.1} ms, new content {:.1} ms, floor {:.1} ms, ratio {ratio:.2} (seen {ratio_seen:.2}) — target ≤ 1.5 {}",
        median(&answer),
        median(&shown),
        median(&floor_shown),
        common::verdict(met)
    );
    drop(server);
    Ok(())
}
