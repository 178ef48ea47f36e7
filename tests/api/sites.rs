//! Sites: creation through the API, the CLI and the pages; strict validation; audited changes.

use cutover::auth::Role;
use serde_json::json;

use crate::helpers::{run_cli, spawn_app};

#[tokio::test]
async fn admins_create_sites_and_everyone_reads_them() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let site = app.create_site(&admin, json!({"name": "shop", "server_name": "Shop.Example.org", "aliases": ["*.shop.example.org"], "keep_releases": 3, "switch": "symlink"})).await;
    assert_eq!(site["name"], "shop");
    assert_eq!(site["server_name"], "shop.example.org");
    assert_eq!(site["aliases"], json!(["*.shop.example.org"]));
    assert_eq!(site["keep_releases"], 3);
    assert_eq!(site["switch"], "symlink");
    assert_eq!(site["active_release"], serde_json::Value::Null);
    for sub in ["releases", "shared"] {
        assert!(app.site_dir("shop").join(sub).is_dir(), "{sub} folder");
    }
    let defaults = app
        .create_site(
            &admin,
            json!({"name": "blog", "server_name": "blog.example.org"}),
        )
        .await;
    assert_eq!(defaults["switch"], "pinned");
    assert_eq!(defaults["keep_releases"], 5);
    assert_eq!(defaults["health_path"], "/");

    app.add_user("vic", Role::Viewer).await;
    let viewer = app.token_for("vic").await;
    let list: serde_json::Value = app
        .api_get("/api/v1/sites", &viewer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let denied = reqwest::Client::new()
        .post(format!("{}/api/v1/sites", app.base))
        .bearer_auth(&viewer)
        .json(&json!({"name": "x", "server_name": "x.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let clash = reqwest::Client::new()
        .post(format!("{}/api/v1/sites", app.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "ashop", "server_name": "ashop.example.org", "aliases": ["shop.example.org"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(clash.status(), 409);
    let err: serde_json::Value = clash.json().await.unwrap();
    assert_eq!(err["error"]["code"], "host_in_use");
    assert!(err["error"]["message"].as_str().unwrap().contains("shop"));
    let dup = reqwest::Client::new()
        .post(format!("{}/api/v1/sites", app.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "shop", "server_name": "x.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    assert_eq!(
        dup.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "site_exists"
    );
}

#[tokio::test]
async fn hostile_settings_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let attacks = [
        (
            json!({"name": "ok", "server_name": "a.org\nCustomLog \"|/bin/sh\" common"}),
            "invalid_server_name",
        ),
        (
            json!({"name": "ok", "server_name": "a.org\r\nInclude /etc/passwd"}),
            "invalid_server_name",
        ),
        (
            json!({"name": "ok", "server_name": "a.org\\"}),
            "invalid_server_name",
        ),
        (
            json!({"name": "ok", "server_name": "${HOME}"}),
            "invalid_server_name",
        ),
        (
            json!({"name": "ok", "server_name": "</VirtualHost>"}),
            "invalid_server_name",
        ),
        (
            json!({"name": "ok", "server_name": "a\u{0}.org"}),
            "invalid_server_name",
        ),
        (
            json!({"name": "ok", "server_name": "*.a.org"}),
            "invalid_server_name",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "aliases": ["b.org\"\nListen 80"]}),
            "invalid_alias",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "aliases": ["b\u{2028}.org"]}),
            "invalid_alias",
        ),
        (
            json!({"name": "../etc", "server_name": "a.org"}),
            "invalid_site_name",
        ),
        (
            json!({"name": "Shop Site", "server_name": "a.org"}),
            "invalid_site_name",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "shared_paths": ["../../etc"]}),
            "invalid_shared_path",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "shared_paths": ["/var/www"]}),
            "invalid_shared_path",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "shared_paths": ["up loads"]}),
            "invalid_shared_path",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "shared_paths": ["a;rm -rf"]}),
            "invalid_shared_path",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "health_path": "/x\r\nHost: evil"}),
            "invalid_health_path",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "keep_releases": 0}),
            "invalid_keep",
        ),
        (
            json!({"name": "ok", "server_name": "a.org", "switch": "hardlink"}),
            "invalid_switch",
        ),
    ];
    for (body, code) in attacks {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/sites", app.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{body}");
        let err: serde_json::Value = res.json().await.unwrap();
        assert_eq!(err["error"]["code"], code, "{body}");
        assert!(err["error"]["message"].as_str().unwrap().len() > 20);
    }
    let list: serde_json::Value = app
        .api_get("/api/v1/sites", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]), "nothing was created");
    assert!(!app.dir.path().join("etc").exists());
    // Every problem at once, so one correction is enough; a pasted address is accepted.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/sites", app.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "ok", "server_name": "shop test", "health_path": "x", "keep_releases": 0}))
        .send()
        .await
        .unwrap();
    let err: serde_json::Value = res.json().await.unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert_eq!(err["error"]["code"], "invalid_server_name");
    assert!(
        message.contains("1 to 100") && message.matches(". ").count() >= 2,
        "{message}"
    );
    let site = app
        .create_site(
            &admin,
            json!({"name": "ok", "server_name": "https://Shop.Example.org/"}),
        )
        .await;
    assert_eq!(site["server_name"], "shop.example.org");
}

#[tokio::test]
async fn cli_site_add_and_page_edits_are_audited_with_before_and_after() {
    let app = spawn_app().await;
    let config = app.dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", app.settings.data_dir)).unwrap();
    let (ok, out, err) = run_cli(
        &config,
        &[
            "site",
            "add",
            "docs",
            "--server-name",
            "docs.example.org",
            "--alias",
            "www.docs.example.org",
            "--keep",
            "4",
            "--switch",
            "symlink",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("docs"));
    let (ok, _, err) = run_cli(
        &config,
        &["site", "add", "bad", "--server-name", "bad host"],
        None,
    );
    assert!(!ok && err.contains("server name"), "{err}");

    let pw = app.add_user("root3", Role::Admin).await;
    let b = app.logged_in("root3", &pw).await;
    assert!(b
        .page("/sites/docs/settings")
        .await
        .contains("docs.example.org"));
    let res = b
        .post(
            "/sites/docs/settings",
            &[
                ("server_name", "docs.example.org"),
                ("aliases", ""),
                ("keep_releases", "7"),
                ("switch", "symlink"),
                ("health_path", "/health.txt"),
                ("shared_paths", "uploads"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.site_dir("docs").join("shared/uploads").is_dir());
    let bad = b
        .post(
            "/sites/docs/settings",
            &[
                ("server_name", "docs.example.org\nInclude x"),
                ("keep_releases", "7"),
            ],
        )
        .await;
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("server name is made of"));

    let core = app.core().await;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, action, detail FROM audit_events WHERE site = 'docs' ORDER BY id",
    )
    .fetch_all(&core.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].0.starts_with("cli:") && rows[0].1 == "site_create");
    assert_eq!(rows[1].1, "site_update");
    let detail: serde_json::Value = serde_json::from_str(&rows[1].2).unwrap();
    assert_eq!(
        detail["changes"]["keep_releases"],
        json!({"from": 4, "to": 7})
    );
    assert_eq!(
        detail["changes"]["aliases"],
        json!({"from": ["www.docs.example.org"], "to": []})
    );
    assert_eq!(
        detail["changes"]["shared_paths"],
        json!({"from": [], "to": ["uploads"]})
    );
    assert!(
        detail["changes"].get("switch").is_none(),
        "unchanged settings are not listed"
    );
}

#[tokio::test]
async fn sites_are_created_from_the_page() {
    let app = spawn_app().await;
    let pw = app.add_user("root4", Role::Admin).await;
    let b = app.logged_in("root4", &pw).await;
    assert!(b.page("/").await.contains("Add the first site"));
    let res = b
        .post(
            "/sites",
            &[
                ("name", "news"),
                ("server_name", "news.example.org"),
                ("keep_releases", "5"),
                ("switch", "pinned"),
                ("health_path", "/"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/sites/news?notice=site-created");
    let page = b.page("/sites/news").await;
    assert!(page.contains("Nothing is live on this site yet") && page.contains("Upload a release"));
    let bad = b
        .post("/sites", &[("name", "Bad Name"), ("server_name", "x.org")])
        .await;
    assert_eq!(bad.status(), 422);
    assert!(
        bad.text().await.unwrap().contains("value=\"Bad Name\""),
        "the form is shown back as typed"
    );
}
