//! The site's own configuration (issue 13) and static sites never sending PHP (issue 12),
//! against a real private Apache: GET/PATCH of every setting, unknown fields, Options,
//! `.htaccess`, maintenance mode, and a failed check that changes nothing.

use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{spawn_app_with_apache, TestApp};

const HOST: &str = "conf.example.test";

async fn fetch(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let res = app.through_apache(HOST, path).await;
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

async fn patch(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.patch_site(token, "site", body).await
}

async fn settings(app: &TestApp, token: &str) -> Value {
    app.api_get("/api/v1/sites/site", token)
        .await
        .json()
        .await
        .unwrap()
}

async fn go_live(app: &TestApp, token: &str, marker: &str) -> String {
    let files: Vec<(&str, &[u8])> = vec![
        ("index.html", marker.as_bytes()),
        ("secret.php", b"<?php $password = 'hunter2'; ?>"),
        ("Config.PHP", b"<?php $db = 'x'; ?>"),
        ("img/x.jpg", b"not really a jpeg"),
        ("docs/a.txt", b"a"),
        ("private/data.txt", b"private data"),
        ("private/.htaccess", b"Require all denied\n"),
    ];
    let res = app
        .upload(token, "site", "r.tgz", targz(&files), marker)
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app.activate(token, "site", &id).await;
    assert_eq!(status, 200, "{body}");
    id
}

#[tokio::test]
async fn unknown_fields_are_refused_naming_every_one_and_nothing_is_created() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/sites", app.base))
        .bearer_auth(&token)
        .json(&json!({"name": "site", "server_name": HOST, "runtim": "php", "shared_path": ["uploads"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_field", "{body}");
    let m = body["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("\"runtim\"") && m.contains("did you mean shared_paths"),
        "{m}"
    );
    assert_eq!(
        app.api_get("/api/v1/sites/site", &token).await.status(),
        404
    );

    // A field of the wrong type is named too.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/sites", app.base))
        .bearer_auth(&token)
        .json(&json!({"name": "site", "server_name": HOST, "options": "Indexes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("options"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn settings_are_read_and_changed_through_the_checked_switch() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    app.create_site(
        &token,
        json!({"name": "site", "server_name": HOST, "shared_paths": ["uploads"]}),
    )
    .await;
    let s = settings(&app, &token).await;
    for field in [
        "runtime",
        "directory_index",
        "php",
        "options",
        "allow_override",
        "directives",
        "maintenance",
    ] {
        assert!(s.get(field).is_some(), "GET lacks {field}: {s}");
    }
    assert_eq!(s["runtime"], "static");
    assert_eq!(s["directory_index"], json!(["index.html"]));
    assert_eq!(s["allow_override"], "none");
    let first = go_live(&app, &token, "release one").await;
    std::fs::write(
        app.site_dir("site").join("shared/uploads/evil.php"),
        "<?php system('id'); ?>",
    )
    .unwrap();

    // A static site never sends PHP source, by any case or trick.
    for path in [
        "/secret.php",
        "/Config.PHP",
        "/img/x.jpg/y.php",
        "/uploads/evil.php",
    ] {
        let (status, _, body) = fetch(&app, path).await;
        assert!(!body.contains("<?php"), "{path} sent PHP source: {body}");
        assert!(status == 403 || status == 404, "{path}: {status}");
    }
    assert_eq!(fetch(&app, "/secret.php").await.0, 403);

    // Options: without Indexes a folder without index is 403; with it, a listing.
    assert_eq!(fetch(&app, "/docs/").await.0, 403);
    let (status, body) = patch(&app, &token, json!({"options": ["Indexes"]})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, listing) = fetch(&app, "/docs/").await;
    assert_eq!(status, 200);
    assert!(listing.contains("a.txt"), "{listing}");
    // The +/- form is refused with Apache's reason, and nothing changes.
    let (status, body) = patch(
        &app,
        &token,
        json!({"options": ["+Indexes", "-MultiViews"]}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_options");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mixes +/-"),
        "{body}"
    );
    assert_eq!(settings(&app, &token).await["options"], json!(["Indexes"]));

    // .htaccess: ignored with "none", honoured when AuthConfig (Require) or all is allowed.
    assert_eq!(fetch(&app, "/private/data.txt").await.0, 200);
    let (status, body) = patch(&app, &token, json!({"allow_override": ["AuthConfig"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetch(&app, "/private/data.txt").await.0, 403);
    let (status, body) = patch(&app, &token, json!({"allow_override": ["Indexes"]})).await;
    assert_eq!(status, 200, "{body}");
    // Require is not an Indexes directive: the .htaccess now breaks that folder (500), as Apache does.
    assert_ne!(fetch(&app, "/private/data.txt").await.0, 200);
    let (status, body) = patch(&app, &token, json!({"allow_override": "all"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(fetch(&app, "/private/data.txt").await.0, 403);
    assert_eq!(fetch(&app, "/").await.2, "release one");

    // Extra directives: what passes is in effect; a hostile line is refused with its number;
    // one Apache itself refuses comes back in Apache's words, and nothing changes.
    let directives =
        "Header set X-Site-Rule \"from the directives\"\nRedirect permanent /old /docs/a.txt\n\
                      RewriteEngine On\nRewriteRule ^/moved$ /index.html [R=302,L]\n";
    let (status, body) = patch(&app, &token, json!({"directives": directives})).await;
    assert_eq!(status, 200, "{body}");
    let (_, headers, _) = fetch(&app, "/").await;
    assert_eq!(headers["x-site-rule"], "from the directives");
    let (status, headers, _) = fetch(&app, "/old").await;
    assert_eq!(status, 301);
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with("/docs/a.txt"));
    assert_eq!(fetch(&app, "/moved").await.0, 302);
    let hostile = "Header set X-A 1\nCustomLog \"|/bin/sh -c id\" combined\n";
    let (status, body) = patch(&app, &token, json!({"directives": hostile})).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "invalid_directives");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 2"),
        "{body}"
    );
    let (status, body) = patch(&app, &token, json!({"directives": "ExpiresActive Maybe\n"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "configtest_failed", "{body}");
    assert_eq!(settings(&app, &token).await["directives"], directives);
    assert_eq!(
        fetch(&app, "/").await.1["x-site-rule"],
        "from the directives"
    );

    // A change whose health check fails changes nothing: the old settings stay, and so
    // does the site.
    let (status, body) = patch(&app, &token, json!({"health_path": "/nothing-here"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "health_check_failed", "{body}");
    let s = settings(&app, &token).await;
    assert_eq!(s["health_path"], "/");
    assert_eq!(s["active_release"], first.as_str());
    assert_eq!(fetch(&app, "/").await.2, "release one");
    app.shutdown().await;
}

#[tokio::test]
async fn maintenance_answers_503_and_a_release_still_goes_live_behind_it() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    app.create_site(&token, json!({"name": "site", "server_name": HOST}))
        .await;
    go_live(&app, &token, "release one").await;
    let (status, body) = patch(&app, &token, json!({"maintenance": true})).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, page) = fetch(&app, "/").await;
    assert_eq!(status, 503);
    assert!(headers.get("retry-after").is_some(), "{headers:?}");
    assert!(page.contains("maintenance"), "{page}");
    assert_eq!(fetch(&app, "/docs/a.txt").await.0, 503);

    // Going live works behind it (the health check passes the page with the site's key).
    go_live(&app, &token, "release two").await;
    assert_eq!(fetch(&app, "/").await.0, 503);
    // One tap on the site page turns it off again (the on-call role may), audited.
    let operator = app.add_user("oncall", cutover::auth::Role::Operator).await;
    let browser = app.logged_in("oncall", &operator).await;
    let page = browser.page("/sites/site").await;
    assert!(
        page.contains("Maintenance mode is on") && page.contains("Turn maintenance off"),
        "{page}"
    );
    let res = browser
        .post("/sites/site/maintenance", &[("mode", "off")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(settings(&app, &token).await["maintenance"], false);
    let audit: Value = app
        .api_get("/api/v1/audit?action=site_update", &token)
        .await
        .json()
        .await
        .unwrap();
    let by = audit["events"][0]["actor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(by.contains("oncall"), "{audit}");
    let (status, _, body) = fetch(&app, "/").await;
    assert_eq!((status, body.as_str()), (200, "release two"));
    app.shutdown().await;
}

#[tokio::test]
async fn an_uploaded_htaccess_cannot_read_the_console_s_environment() {
    // The console's environment may hold secrets; Apache starts with a clean one, so a
    // .htaccess rule that tests a variable of it never sees the value.
    std::env::set_var("CUTOVER_PROBE_SECRET", "leak");
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    app.create_site(
        &token,
        json!({"name": "site", "server_name": HOST, "allow_override": "all"}),
    )
    .await;
    let htaccess =
        b"RewriteEngine On\nRewriteCond %{ENV:CUTOVER_PROBE_SECRET} =leak\nRewriteRule ^ - [F]\n";
    let files: Vec<(&str, &[u8])> = vec![
        ("index.html", b"env"),
        ("probe/index.html", b"clean"),
        ("probe/.htaccess", htaccess),
    ];
    let res = app
        .upload(&token, "site", "r.tgz", targz(&files), "env")
        .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.activate(&token, "site", &id).await.0, 200);
    let (status, _, body) = fetch(&app, "/probe/").await;
    assert_eq!((status, body.as_str()), (200, "clean"));
    app.shutdown().await;
}
