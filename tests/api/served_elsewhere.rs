//! Issue 16, item 11 (system mode): a site name another VirtualHost on the machine already
//! serves (per `[apache] vhosts_command`, `apache2ctl -S`) is saved with a warning in the
//! answer and a banner on the site page; a listing that cannot be had is a warning too.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cutover::auth::Role;
use cutover::config::ApacheMode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

/// A fake `apache2ctl -S`: prints what the real one prints on a host with a default site,
/// another hand-written site, and Cutover's own file for `shop`.
fn fake_listing(dir: &Path, vhost_dir: &Path) -> String {
    let own = vhost_dir.join("cutover-shop.conf");
    let listing = format!(
        "VirtualHost configuration:
*:80                   is a NameVirtualHost
         default server example.org (/etc/apache2/sites-enabled/000-default.conf:1)
         port 80 namevhost example.org (/etc/apache2/sites-enabled/000-default.conf:1)
                 alias www.example.org
         port 80 namevhost shop.example.org ({}:1)
         port 80 namevhost blog.example.net (/etc/apache2/sites-enabled/blog.conf:1)
                 wild alias *.blog.example.net
ServerRoot: \"/etc/apache2\"
Main DocumentRoot: \"/var/www/html\"
",
        own.display()
    );
    let script = dir.join("fake-apache2ctl");
    std::fs::write(&script, format!("#!/bin/sh\ncat <<'EOF'\n{listing}EOF\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

async fn system_app(command: impl FnOnce(&Path, &Path) -> Vec<String>) -> (TestApp, String) {
    let app = spawn_app_with(move |s| {
        // Beside the data folder, in the test's own temporary folder.
        let root = s.data_dir.parent().unwrap().to_owned();
        let vhost_dir = root.join("sites-enabled");
        std::fs::create_dir_all(&vhost_dir).unwrap();
        s.apache.vhosts_command = command(&root, &vhost_dir);
        s.apache.mode = ApacheMode::System;
        s.apache.vhost_dir = Some(vhost_dir);
        s.apache.configtest = vec!["true".into()];
        s.apache.reload = vec!["true".into()];
    })
    .await;
    let token = app.admin_token().await;
    (app, token)
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/sites", app.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_name_served_by_another_vhost_is_saved_with_a_warning() {
    let (app, token) = system_app(|dir, vhosts| vec![fake_listing(dir, vhosts)]).await;
    // Its own file lists shop.example.org: no clash. www.example.org is the default site's.
    let site =
        json!({"name": "shop", "server_name": "shop.example.org", "aliases": ["www.example.org"]});
    let answer = create(&app, &token, site).await;
    assert_eq!(answer["name"], "shop", "{answer}");
    let warnings = answer["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{answer}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains("www.example.org is already served on port 80"),
        "{w}"
    );
    assert!(
        w.contains("/etc/apache2/sites-enabled/000-default.conf (line 1)"),
        "{w}"
    );
    assert!(w.contains("first VirtualHost whose name matches"), "{w}");
    // A wildcard alias elsewhere covers the name; a free name has no warning.
    let answer = create(
        &app,
        &token,
        json!({"name": "news", "server_name": "news.blog.example.net"}),
    )
    .await;
    assert!(
        answer["warnings"][0]
            .as_str()
            .unwrap()
            .contains("blog.conf"),
        "{answer}"
    );
    let answer = create(
        &app,
        &token,
        json!({"name": "free", "server_name": "free.example.com"}),
    )
    .await;
    assert_eq!(answer["warnings"], json!([]), "{answer}");
    // The site page shows it as a banner.
    let pw = app.add_user("boss", Role::Admin).await;
    let admin = app.logged_in("boss", &pw).await;
    let page = admin.page("/sites/shop").await;
    assert!(
        page.contains(r#"<p class="banner" role="alert">www.example.org is already served"#),
        "{page}"
    );
    assert!(!admin
        .page("/sites/free")
        .await
        .contains("is already served"));
    // Names changed on the settings page are checked again.
    let form = [
        ("server_name", "free.example.com"),
        ("aliases", "example.org"),
        ("keep_releases", "5"),
        ("switch", "pinned"),
        ("health_path", "/"),
    ];
    let res = admin.post("/sites/free/settings", &form).await;
    assert_eq!(res.status(), 303);
    let page = admin.page("/sites/free").await;
    assert!(
        page.contains("example.org is already served on port 80"),
        "{page}"
    );
}

#[tokio::test]
async fn a_listing_that_cannot_be_had_is_a_warning_never_a_refusal() {
    let (app, token) = system_app(|_, _| vec!["/nonexistent/apache2ctl".into(), "-S".into()]).await;
    let answer = create(
        &app,
        &token,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    let w = answer["warnings"][0].as_str().unwrap();
    assert!(
        w.contains("could not check whether another VirtualHost"),
        "{w}"
    );
    assert!(w.contains("/nonexistent/apache2ctl -S"), "{w}");
    // In managed mode (the usual test app) there is nothing to check.
    let app = crate::helpers::spawn_app().await;
    let token = app.admin_token().await;
    let answer = create(
        &app,
        &token,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    assert_eq!(answer["warnings"], json!([]), "{answer}");
}
