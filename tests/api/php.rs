//! PHP sites (issue 12) against a real private Apache and the console's own PHP-FPM: pages
//! run and never show their source, each site's pool has its own settings, no stale code
//! after a switch with the opcode cache never revalidating, a page cannot read the console's
//! database or write into its release, and a health page that is PHP source fails.

use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{spawn_app_with_apache, TestApp};

async fn fetch(app: &TestApp, host: &str, path: &str) -> (u16, String, String) {
    let res = app.through_apache(host, path).await;
    let status = res.status().as_u16();
    let ty = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ty, res.text().await.unwrap())
}

async fn release(app: &TestApp, token: &str, site: &str, files: &[(&str, &[u8])]) -> String {
    let res = app.upload(token, site, "r.tgz", targz(files), "php").await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn activate(app: &TestApp, token: &str, site: &str, id: &str) -> (u16, Value) {
    app.activate(token, site, id).await
}

async fn rollback(app: &TestApp, token: &str, site: &str) -> (u16, Value) {
    let path = format!("/api/v1/sites/{site}/rollback");
    app.api_send(reqwest::Method::POST, &path, token, None)
        .await
}

fn page(marker: &str) -> Vec<u8> {
    format!("<?php echo 'release {marker} memory ' . ini_get('memory_limit');").into_bytes()
}

#[tokio::test]
async fn php_pages_run_in_their_own_pools_and_never_show_their_source() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    for (site, memory) in [("wiki", "64M"), ("shop", "96M")] {
        app.create_site(
            &token,
            json!({"name": site, "server_name": format!("{site}.test"), "runtime": "php",
            "shared_paths": ["data"], "php": {"settings": {"memory_limit": memory}}}),
        )
        .await;
    }
    let db = app
        .settings
        .data_dir
        .join("cutover.db")
        .display()
        .to_string();
    let probe = format!(
        "<?php $r = @file_get_contents('{db}'); $w = @file_put_contents(__DIR__ . '/written.txt', 'x'); \
         echo 'read:' . ($r === false ? 'no' : 'yes') . ' write:' . ($w === false ? 'no' : 'yes');"
    );
    let wiki = release(
        &app,
        &token,
        "wiki",
        &[
            ("index.php", &page("wiki-1")),
            ("conf/users.auth.php", b"<?php # admin:$2y$10$secret\n"),
            ("probe.php", probe.as_bytes()),
            ("img/x.jpg", b"<?php echo 'ran the jpeg'; ?>"),
            ("save.php", b"<?php echo file_put_contents(__DIR__ . '/data/note.txt', 'saved by PHP') === false ? 'fail' : 'ok';"),
        ],
    )
    .await;
    let (status, body) = activate(&app, &token, "wiki", &wiki).await;
    assert_eq!(status, 200, "{body}");
    let shop = release(&app, &token, "shop", &[("index.php", &page("shop-1"))]).await;
    assert_eq!(activate(&app, &token, "shop", &shop).await.0, 200);

    // `/` runs index.php, as HTML, with the pool's own setting; sites alternate cleanly.
    for _ in 0..3 {
        let (status, ty, body) = fetch(&app, "wiki.test", "/").await;
        assert_eq!((status, body.as_str()), (200, "release wiki-1 memory 64M"));
        assert!(ty.starts_with("text/html"), "{ty}");
        let (_, _, body) = fetch(&app, "shop.test", "/").await;
        assert_eq!(body, "release shop-1 memory 96M");
    }
    // No answer ever carries PHP source: not a config file, not a path-info trick, not a
    // PHP file uploaded into the shared folder.
    std::fs::write(
        app.site_dir("wiki").join("shared/data/evil.php"),
        "<?php echo 'ran evil';",
    )
    .unwrap();
    for path in [
        "/conf/users.auth.php",
        "/img/x.jpg/y.php",
        "/data/evil.php",
        "/index.php",
    ] {
        let (_, _, body) = fetch(&app, "wiki.test", path).await;
        assert!(
            !body.contains("<?php") && !body.contains("secret"),
            "{path}: {body}"
        );
        assert!(
            !body.contains("ran evil") && !body.contains("ran the jpeg"),
            "{path}: {body}"
        );
    }
    // A page cannot read the console's database, nor write into its own release.
    let (_, _, body) = fetch(&app, "wiki.test", "/probe.php").await;
    assert!(body.starts_with("read:no"), "{body}");
    if nix::unistd::geteuid().is_root() {
        assert_eq!(body, "read:no write:no");
    }
    // What the application writes into its shared folder survives the next release.
    assert_eq!(fetch(&app, "wiki.test", "/save.php").await.2, "ok");
    let next = release(
        &app,
        &token,
        "wiki",
        &[
            ("index.php", &page("wiki-2")),
            (
                "read.php",
                b"<?php echo file_get_contents(__DIR__ . '/data/note.txt');",
            ),
        ],
    )
    .await;
    assert_eq!(activate(&app, &token, "wiki", &next).await.0, 200);
    assert_eq!(
        fetch(&app, "wiki.test", "/read.php").await.2,
        "saved by PHP"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn no_stale_code_after_a_switch_in_either_mode_with_timestamps_never_checked() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    for (site, mode) in [("pinned", "pinned"), ("linked", "symlink")] {
        app.create_site(&token, json!({"name": site, "server_name": format!("{site}.test"), "runtime": "php",
            "switch": mode, "php": {"settings": {"opcache.validate_timestamps": false, "opcache.enable": true}}}))
            .await;
        let a = release(&app, &token, site, &[("index.php", &page("A"))]).await;
        let b = release(&app, &token, site, &[("index.php", &page("B"))]).await;
        let host = format!("{site}.test");
        let (status, body) = activate(&app, &token, site, &a).await;
        assert_eq!(status, 200, "{body}");
        for _ in 0..3 {
            assert!(fetch(&app, &host, "/").await.2.starts_with("release A"));
        }
        assert_eq!(activate(&app, &token, site, &b).await.0, 200);
        assert!(
            fetch(&app, &host, "/").await.2.starts_with("release B"),
            "{mode}: first request after A → B"
        );
        let (status, body) = rollback(&app, &token, site).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            fetch(&app, &host, "/").await.2.starts_with("release A"),
            "{mode}: first request after the rollback"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_health_page_that_is_php_source_fails_the_go_live() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    app.create_site(
        &token,
        json!({"name": "plain", "server_name": "plain.test", "health_path": "/health.txt"}),
    )
    .await;
    let good = release(
        &app,
        &token,
        "plain",
        &[("index.html", b"good"), ("health.txt", b"ok")],
    )
    .await;
    assert_eq!(activate(&app, &token, "plain", &good).await.0, 200);
    let bad = release(
        &app,
        &token,
        "plain",
        &[("index.html", b"bad"), ("health.txt", b"<?php echo 'ok';")],
    )
    .await;
    let (status, body) = activate(&app, &token, "plain", &bad).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("PHP source"),
        "{body}"
    );
    assert_eq!(fetch(&app, "plain.test", "/").await.2, "good");
    app.shutdown().await;
}

#[tokio::test]
async fn a_php_fpm_that_dies_is_recorded_and_started_again() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    app.create_site(
        &token,
        json!({"name": "wiki", "server_name": "wiki.test", "runtime": "php"}),
    )
    .await;
    let id = release(&app, &token, "wiki", &[("index.php", &page("w1"))]).await;
    assert_eq!(activate(&app, &token, "wiki", &id).await.0, 200);
    assert!(fetch(&app, "wiki.test", "/")
        .await
        .2
        .starts_with("release w1"));
    let pid_file = app.settings.data_dir.join("php/run/php-fpm.pid");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The master and its workers (its own process group) die at once, as on an OOM kill.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let restarted = crate::helpers::eventually(
        std::time::Duration::from_secs(30),
        "PHP-FPM started again",
        || async {
            let now: i32 = std::fs::read_to_string(&pid_file)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            let body = fetch(&app, "wiki.test", "/").await.2;
            (now != pid && body.starts_with("release w1")).then_some(now)
        },
    )
    .await;
    assert_ne!(restarted, pid);
    // The pool answers as soon as the new master is up; the watcher audits the restart
    // right after, so the audit row is polled for rather than read once.
    let again = crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the restart audited",
        || async {
            let (_, again) = app
                .api_send(
                    reqwest::Method::GET,
                    "/api/v1/audit?action=php_restart",
                    &token,
                    None,
                )
                .await;
            (!again["events"][0].is_null()).then_some(again)
        },
    )
    .await;
    assert_eq!(again["events"][0]["outcome"], "ok", "{again}");
    let (_, died) = app
        .api_send(
            reqwest::Method::GET,
            "/api/v1/audit?action=php_died",
            &token,
            None,
        )
        .await;
    assert_eq!(died["events"].as_array().unwrap().len(), 1, "{died}");
    app.shutdown().await;
}

#[tokio::test]
async fn php_runs_in_a_shared_folder_only_when_the_site_says_so() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    let (status, body) = app
        .api_send(
            reqwest::Method::POST,
            "/api/v1/sites",
            &token,
            Some(
                json!({"name": "cms", "server_name": "cms.test", "runtime": "php",
                "shared_paths": ["uploads", "plugins"], "php_in_shared": ["nope"]}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("php_in_shared: \"nope\" is not one of"),
        "{body}"
    );
    app.create_site(
        &token,
        json!({"name": "cms", "server_name": "cms.test", "runtime": "php",
            "shared_paths": ["uploads", "plugins"], "php_in_shared": ["plugins"]}),
    )
    .await;
    let id = release(
        &app,
        &token,
        "cms",
        &[
            ("index.php", &page("c1")),
            ("plugins/hello.php", b"<?php echo 'plugin ran';"),
            ("uploads/evil.php", b"<?php echo 'upload ran';"),
        ],
    )
    .await;
    assert_eq!(activate(&app, &token, "cms", &id).await.0, 200);
    let (status, _, body) = fetch(&app, "cms.test", "/plugins/hello.php").await;
    assert_eq!((status, body.as_str()), (200, "plugin ran"));
    let (status, _, body) = fetch(&app, "cms.test", "/uploads/evil.php").await;
    assert_eq!(status, 403);
    assert!(
        !body.contains("<?php") && !body.contains("upload ran"),
        "{body}"
    );
    // Taken back: the plugin folder refuses PHP like any other shared folder.
    let (status, body) = app
        .patch_site(&token, "cms", json!({"php_in_shared": []}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetch(&app, "cms.test", "/plugins/hello.php").await.0, 403);
    app.shutdown().await;
}

/// The modules the private Apache has loaded, in Apache's own words.
fn loaded_modules(app: &TestApp) -> String {
    let out = std::process::Command::new(crate::helpers::apache_binary())
        .args(["-t", "-D", "DUMP_MODULES", "-f"])
        .arg(app.settings.data_dir.join("apache/httpd.conf"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_private_apache_loads_php_s_modules_only_once_a_site_runs_php() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    app.create_site(
        &token,
        json!({"name": "plain", "server_name": "plain.test"}),
    )
    .await;
    let id = release(&app, &token, "plain", &[("index.html", b"static")]).await;
    assert_eq!(activate(&app, &token, "plain", &id).await.0, 200);
    let before = loaded_modules(&app);
    assert!(before.contains("rewrite_module"), "{before}");
    assert!(
        !before.contains("proxy_module") && !before.contains("proxy_fcgi_module"),
        "{before}"
    );
    app.create_site(
        &token,
        json!({"name": "wiki", "server_name": "wiki.test", "runtime": "php"}),
    )
    .await;
    let id = release(&app, &token, "wiki", &[("index.php", &page("w"))]).await;
    assert_eq!(activate(&app, &token, "wiki", &id).await.0, 200);
    let after = loaded_modules(&app);
    assert!(
        after.contains("proxy_module") && after.contains("proxy_fcgi_module"),
        "{after}"
    );
    assert!(fetch(&app, "wiki.test", "/")
        .await
        .2
        .starts_with("release w"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_site_s_own_access_rules_never_lift_the_refusal_of_php_source() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    // Without AuthMerging And, a later <Location>'s Require would replace the <FilesMatch>
    // refusal and send the source of every PHP file.
    let directives = "<Location />\nRequire all granted\n</Location>\n<LocationMatch \"\\.php$\">\nRequire ip 127.0.0.1\n</LocationMatch>";
    app.create_site(
        &token,
        json!({"name": "plain", "server_name": "plain.test", "directives": directives}),
    )
    .await;
    let id = release(
        &app,
        &token,
        "plain",
        &[
            ("index.html", b"home"),
            ("secret.php", b"<?php $password = 'hunter2';"),
        ],
    )
    .await;
    assert_eq!(activate(&app, &token, "plain", &id).await.0, 200);
    assert_eq!(fetch(&app, "plain.test", "/").await.2, "home");
    let (status, _, body) = fetch(&app, "plain.test", "/secret.php").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("hunter2"), "{body}");
    app.shutdown().await;
}
