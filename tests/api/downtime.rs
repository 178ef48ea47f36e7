//! Zero downtime: a bounded load on 127.0.0.1 while 20 switches happen in each mode. No
//! request may fail; in pinned mode every body must belong wholly to one release, both when a
//! switch only replaces the live map (no reload) and when the site's settings change with
//! each switch (the vhost is rewritten and Apache reloads gracefully). PHP sites too, in both
//! modes: a page that names its release must always name one of the two, never fail, and no
//! switch reloads PHP-FPM.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::spawn_app_with_apache;

const HOST: &str = "load.example.test";

pub(crate) fn release_files(marker: u8, page_len: usize, big_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut page = format!("<html><body>release {}</body></html>", marker as char).into_bytes();
    page.resize(page_len, b' ');
    let big: Vec<u8> = (0..big_len)
        .map(|i| if i % 64 == 0 { b'\n' } else { marker })
        .collect();
    (page, big)
}

/// PHP that prints `page` exactly (its bytes are plain HTML and spaces).
fn php_page(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    format!(
        "<?php echo '{}';",
        text.replace('\\', "\\\\").replace('\'', "\\'")
    )
    .into_bytes()
}

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) torn: AtomicU64,
    pub(crate) retried: AtomicU64,
}

/// GETs the `expected` paths round-robin with `Host: host` until `stop` (bounded: 120 s and
/// 200,000 requests), counting answers that fail or are not wholly one of the bodies.
pub(crate) async fn load(
    (base, host): (String, &'static str),
    keep_alive: bool,
    expected: Arc<Vec<(String, Vec<Vec<u8>>)>>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(10));
    let client = if keep_alive {
        builder.build().unwrap()
    } else {
        builder.pool_max_idle_per_host(0).build().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && i < 200_000 {
        let (path, bodies) = &expected[i % expected.len()];
        i += 1;
        let mut req = client.get(format!("{base}{path}")).header("Host", host);
        if !keep_alive {
            req = req.header("Connection", "close");
        }
        tally.sent.fetch_add(1, Ordering::Relaxed);
        // A graceful reload closes idle keep-alive connections; a request that raced that
        // close never reached Apache, and browsers resend it on a new connection. We do the
        // same, once, and count it: a failure is an answer that is not 2xx, or no answer twice.
        let mut outcome = req.try_clone().expect("plain GET").send().await;
        for _ in 0..2 {
            let raced_a_close =
                matches!(&outcome, Err(e) if e.is_request() || e.is_connect() || e.is_body());
            if !(keep_alive && raced_a_close) {
                break;
            }
            tally.retried.fetch_add(1, Ordering::Relaxed);
            outcome = req.try_clone().expect("plain GET").send().await;
        }
        match outcome {
            Ok(res) if res.status().is_success() => match res.bytes().await {
                Ok(body) if bodies.iter().any(|b| b[..] == body[..]) => {}
                _ => {
                    tally.torn.fetch_add(1, Ordering::Relaxed);
                }
            },
            Ok(res) => {
                eprintln!("{path}: {}", res.status());
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                eprintln!("{path}: {e:?}");
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switching_under_load_drops_no_request() {
    // (label, switch mode, the settings change before every switch)
    // (label, switch mode, the settings change before every switch, a PHP site)
    let cases = [
        ("pinned", "pinned", false, false),
        ("pinned, settings changed", "pinned", true, false),
        ("symlink", "symlink", false, false),
        ("PHP, pinned", "pinned", false, true),
        ("PHP, symlink", "symlink", false, true),
    ];
    for (label, mode, change_settings, php) in cases {
        let app = spawn_app_with_apache(|_| {}).await;
        let token = app.admin_token().await;
        let runtime = if php { "php" } else { "static" };
        app.create_site(
            &token,
            json!({"name": "load", "server_name": HOST, "switch": mode, "runtime": runtime}),
        )
        .await;
        let (page_a, big_a) = release_files(b'A', 300, 100_000);
        let (page_b, big_b) = release_files(b'B', 500, 120_000);
        let mut ids = Vec::new();
        for (page, big) in [(&page_a, &big_a), (&page_b, &big_b)] {
            // A PHP page prints the same bytes from code, so its answer names its release.
            let source = php_page(page);
            let index = match php {
                true => ("index.php", &source[..]),
                false => ("index.html", &page[..]),
            };
            let res = app
                .upload(
                    &token,
                    "load",
                    "r.tgz",
                    targz(&[index, ("big.bin", big)]),
                    "",
                )
                .await;
            assert_eq!(res.status(), 201);
            ids.push(
                res.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let activate = |id: String| {
            let (base, token) = (app.base.clone(), token.clone());
            async move {
                let res = reqwest::Client::new()
                    .post(format!("{base}/api/v1/sites/load/releases/{id}/activate"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                assert_eq!(status, 200, "{label}: {body}");
                let steps = body["steps"].as_array().unwrap().iter();
                steps
                    .map(|s| s["step"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        activate(ids[0].clone()).await;
        let core = app.core().await;

        let mut paths = vec![("/".to_owned(), vec![page_a.clone(), page_b.clone()])];
        // A PHP site's load is its PHP page alone: a static file read across a symlink
        // switch can be torn (the known limit of symlink mode), PHP's answer must not be.
        if !php {
            paths.push(("/big.bin".to_owned(), vec![big_a.clone(), big_b.clone()]));
        }
        let expected = Arc::new(paths);
        let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
        let base = format!("http://{}", app.settings.apache.listen);
        let workers: Vec<_> = (0..4)
            .map(|n| {
                tokio::spawn(load(
                    (base.clone(), HOST),
                    n % 2 == 0,
                    expected.clone(),
                    stop.clone(),
                    tally.clone(),
                ))
            })
            .collect();
        let (mut reloads, mut php_reloads) = (0, 0);
        for round in 0..20 {
            if change_settings {
                change_aliases(&app, &core, round).await;
            }
            let steps = activate(ids[(round + 1) % 2].clone()).await;
            reloads += steps.iter().filter(|s| *s == "graceful reload").count();
            php_reloads += steps.iter().filter(|s| *s == "reload PHP-FPM").count();
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await.unwrap();
        }
        let (sent, failed, torn) = (
            tally.sent.load(Ordering::Relaxed),
            tally.failed.load(Ordering::Relaxed),
            tally.torn.load(Ordering::Relaxed),
        );
        let retried = tally.retried.load(Ordering::Relaxed);
        println!("{label}: {sent} requests, {failed} failed, {torn} torn, {retried} resent after a keep-alive close, during 20 switches ({reloads} Apache reloads, {php_reloads} PHP-FPM reloads)");
        assert!(sent > 200, "{label}: the load ran ({sent} requests)");
        assert_eq!(failed, 0, "{label}: no request may fail");
        if php {
            assert_eq!(torn, 0, "{label}: every page names one of the releases");
            // Neither mode reloads PHP-FPM to switch: no opcode cache can serve old code.
            assert_eq!(php_reloads, 0, "{label}: PHP-FPM reloads");
        }
        if mode == "pinned" {
            assert_eq!(torn, 0, "{label}: every body belongs wholly to one release");
            let want = if change_settings { 20 } else { 0 };
            assert_eq!(reloads, want, "{label}: reloads");
        }
    }
}

/// A settings change that rewrites the vhost (an alias more or less), as an admin makes it.
async fn change_aliases(app: &crate::helpers::TestApp, core: &cutover::app::Core, round: usize) {
    use cutover::sites::store;
    let site = store::get(&core.pool, "load").await.unwrap();
    let mut settings = site.settings.clone();
    settings.aliases = if round % 2 == 0 {
        vec![format!("alias{round}.load.example.test")]
    } else {
        Vec::new()
    };
    let source = cutover::audit::Source::default();
    store::update(
        &core.pool,
        &app.settings.sites_root(),
        "test",
        &source,
        &site,
        &settings,
    )
    .await
    .unwrap();
}
