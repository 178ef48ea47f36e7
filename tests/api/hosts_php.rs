//! PHP sites and maintenance mode on several hosts (issue 17): each host's own PHP-FPM gets
//! the site's pool, and every host runs each release's code, never sending its source; in
//! maintenance every host answers 503 and a release still goes live behind it.

use serde_json::json;

use crate::hosts::{fleet, fleet_of, get, steps, NAME, SITE};

#[tokio::test]
async fn a_php_site_on_two_hosts_runs_each_release_s_code_on_both_and_never_sends_its_source() {
    let site = json!({"name": SITE, "server_name": NAME, "switch": "pinned", "runtime": "php"});
    let f = fleet_of(2, site, 20, true).await;
    let code = |n: &str| format!("<?php echo '{n}:' . (20 + 22);");
    let r1 = f
        .release(&[
            ("index.php", code("one").as_bytes()),
            ("lib.inc", b"<?php $secret = 1;"),
        ])
        .await;
    let report = f.activate(&r1).await;
    assert_eq!(report["ok"], true, "{report}");
    let names = steps(&report);
    for h in ["web1", "web2"] {
        for step in ["PHP-FPM reload", "configtest", "health check"] {
            let step = format!("{h}: {step}");
            assert!(names.contains(&step), "{step} in {names:?}");
        }
    }
    for h in &f.hosts {
        let pool = h.root.join(format!("php/pools/cutover-{SITE}.conf"));
        let text = std::fs::read_to_string(&pool).expect("the site's pool on the host");
        assert!(text.contains(&format!("[{SITE}]")), "{text}");
        assert_eq!(
            get(h, "/").await,
            (200, "one:42".to_owned()),
            "host {}",
            h.name
        );
        // The source is never sent: not the script, not an include.
        for path in ["/index.php", "/lib.inc"] {
            let (status, body) = get(h, path).await;
            assert!(
                !body.contains("<?php"),
                "{path} on {}: {status} {body}",
                h.name
            );
        }
    }
    // The next release's code runs at once on both (no stale opcode cache), with no reload of
    // PHP-FPM: its pool did not change.
    let r2 = f.release(&[("index.php", code("two").as_bytes())]).await;
    let report = f.activate(&r2).await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        !steps(&report).iter().any(|s| s.ends_with("PHP-FPM reload")),
        "{report}"
    );
    f.all_serve(&r2, "two:42").await;
    // A PHP setting changed on the live site reaches every host's pool, and its code.
    let r3 = f
        .release(&[("index.php", b"<?php echo ini_get('memory_limit');")])
        .await;
    assert_eq!(f.activate(&r3).await["ok"], true);
    let change = json!({"php": {"settings": {"memory_limit": "64M"}}, "runtime": "php"});
    let (status, body) = f.app.patch_site(&f.token, SITE, change).await;
    assert_eq!(status, 200, "{body}");
    f.all_serve(&r3, "64M").await;
    // A host taken off the site loses the site's pool with its vhost.
    let pool = f.hosts[1]
        .root
        .join(format!("php/pools/cutover-{SITE}.conf"));
    assert!(pool.is_file());
    let path = format!("/api/v1/sites/{SITE}/hosts/{}", f.hosts[1].name);
    let (status, body) = f.send(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(!pool.exists(), "the removed host kept the site's pool");
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_pool_one_host_refuses_switches_no_host() {
    let site = json!({"name": SITE, "server_name": NAME, "switch": "pinned", "runtime": "php"});
    let f = fleet_of(2, site, 20, true).await;
    // web2's PHP-FPM test now refuses every configuration.
    let pool = f.hosts[1].root.join("php/pools/broken.conf");
    std::fs::write(&pool, "[broken]\nlisten = \npm = nonsense\n").unwrap();
    let r1 = f.release(&[("index.php", b"<?php echo 1;")]).await;
    let report = f.activate(&r1).await;
    assert_eq!(report["ok"], false, "{report}");
    let message = report["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        message.contains("web2") && message.contains("PHP-FPM"),
        "{report}"
    );
    for h in &f.hosts {
        assert_eq!(h.current(SITE), None, "host {} switched", h.name);
        let ours = h.root.join(format!("php/pools/cutover-{SITE}.conf"));
        assert!(!ours.exists(), "the new pool was left on {}", h.name);
    }
    std::fs::remove_file(&pool).unwrap();
    f.goes_live(&r1, "1").await;
    f.app.shutdown().await;
}

#[tokio::test]
async fn maintenance_answers_503_on_every_host_and_a_release_goes_live_behind_it() {
    let f = fleet(2, "pinned").await;
    let (_, r2) = f.live_and_next().await;
    let on = json!({"maintenance": true});
    let (status, body) = f.app.patch_site(&f.token, SITE, on).await;
    assert_eq!(status, 200, "{body}");
    for (h, (status, page)) in f.hosts.iter().zip(f.served().await) {
        assert_eq!(status, 503, "host {}: {page}", h.name);
        assert!(page.contains("maintenance"), "host {}: {page}", h.name);
    }
    // The health check of every host gets past the page with the site's key.
    let report = f.activate(&r2).await;
    assert_eq!(report["ok"], true, "{report}");
    for (h, (status, _)) in f.hosts.iter().zip(f.served().await) {
        assert_eq!(status, 503, "host {}", h.name);
        assert_eq!(
            h.current(SITE).as_deref(),
            Some(r2.as_str()),
            "host {}",
            h.name
        );
    }
    let off = json!({"maintenance": false});
    let (status, body) = f.app.patch_site(&f.token, SITE, off).await;
    assert_eq!(status, 200, "{body}");
    f.all_serve(&r2, "two").await;
    f.app.shutdown().await;
}
