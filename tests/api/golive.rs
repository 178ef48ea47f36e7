//! Going live and rolling back against a real private Apache.

use std::time::Duration;

use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{eventually, spawn_app_with_apache, TestApp};

const HOST: &str = "shop.example.test";

async fn setup(app: &TestApp, extra: Value) -> String {
    let token = app.admin_token().await;
    let mut body = json!({"name": "shop", "server_name": HOST});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.create_site(&token, body).await;
    token
}

async fn upload(app: &TestApp, token: &str, content: &str, extra: &[(&str, &[u8])]) -> String {
    let mut files: Vec<(&str, &[u8])> = vec![("index.html", content.as_bytes())];
    files.extend_from_slice(extra);
    let res = app
        .upload(token, "shop", "r.tgz", targz(&files), content)
        .await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What Apache serves for the site right now.
async fn served(app: &TestApp) -> String {
    let url = format!("http://{}/", app.settings.apache.listen);
    let res = reqwest::Client::new()
        .get(url)
        .header("Host", HOST)
        .send()
        .await
        .expect("Apache answers");
    res.text().await.unwrap()
}

async fn post(app: &TestApp, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn activate(app: &TestApp, token: &str, id: &str) -> (u16, Value) {
    post(
        app,
        token,
        &format!("/api/v1/sites/shop/releases/{id}/activate"),
        None,
    )
    .await
}

#[tokio::test]
async fn go_live_and_roll_back_in_both_modes() {
    for mode in ["pinned", "symlink"] {
        let app = spawn_app_with_apache(|_| {}).await;
        let token = setup(&app, json!({"switch": mode})).await;
        let a = upload(&app, &token, "release A", &[]).await;
        let b = upload(&app, &token, "release B", &[]).await;
        let c = upload(&app, &token, "release C", &[]).await;

        let (status, r) = activate(&app, &token, &a).await;
        assert_eq!(status, 200, "{mode}: {r}");
        assert_eq!(r["active"], a.as_str());
        assert_eq!(r["previous"], Value::Null);
        assert!(
            r["steps"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["ok"] == true && s["ms"].is_u64()),
            "{r}"
        );
        assert_eq!(served(&app).await, "release A", "{mode}");
        let current = std::fs::read_link(app.site_dir("shop").join("current")).unwrap();
        assert_eq!(current.to_str().unwrap(), format!("releases/{a}"));

        let (status, r) = activate(&app, &token, &b).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["previous"], a.as_str());
        assert_eq!(served(&app).await, "release B", "{mode}");
        // The site's configuration did not change: no configtest, and pinned mode switched
        // without reloading Apache.
        let steps: Vec<&str> = r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["step"].as_str().unwrap())
            .collect();
        assert!(!steps.contains(&"configtest"), "{mode}: {steps:?}");
        assert_eq!(
            steps.contains(&"switch live release"),
            mode == "pinned",
            "{steps:?}"
        );
        if mode == "pinned" {
            assert!(!steps.contains(&"graceful reload"), "{steps:?}");
        }

        // Rollback goes to the release live before (A), from the record of activations.
        let (status, r) = post(&app, &token, "/api/v1/sites/shop/rollback", None).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["active"], a.as_str());
        assert_eq!(served(&app).await, "release A");
        // …and to any ready release on request.
        let (status, r) = post(
            &app,
            &token,
            "/api/v1/sites/shop/rollback",
            Some(json!({"to": c})),
        )
        .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(served(&app).await, "release C");

        let site: Value = app
            .api_get("/api/v1/sites/shop", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(site["active_release"], c.as_str());
        let list: Value = app
            .api_get("/api/v1/sites/shop/releases", &token)
            .await
            .json()
            .await
            .unwrap();
        let state = |id: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .unwrap()["state"]
                .clone()
        };
        assert_eq!(state(&c), "live");
        assert_eq!(state(&a), "previous");
        let vhost: Value = app
            .api_get("/api/v1/sites/shop/vhost", &token)
            .await
            .json()
            .await
            .unwrap();
        let config = vhost["config"].as_str().unwrap();
        // Both modes' vhosts name no release: pinned sites read theirs from the live map.
        assert!(
            config
                .lines()
                .any(|l| l.trim().starts_with("DocumentRoot") && l.contains("/current\"")),
            "{config}"
        );
        let map = app.settings.sites_root().join("shop/live.map");
        if mode == "pinned" {
            assert!(config.contains("RewriteMap cutover"), "{config}");
            let text = std::fs::read_to_string(&map).unwrap();
            assert!(text.lines().any(|l| l == format!("live {c}")), "{text}");
        } else {
            assert!(!config.contains("RewriteMap") && !map.exists(), "{config}");
        }
        let audit: Value = app
            .api_get("/api/v1/audit?site=shop&action=rollback", &token)
            .await
            .json()
            .await
            .unwrap();
        let outcomes: Vec<&str> = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(outcomes, ["ok", "started", "ok", "started"]);
    }
}

#[tokio::test]
async fn a_config_that_fails_configtest_changes_nothing() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    let b = upload(&app, &token, "release B", &[]).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    let vhost_path = app.settings.data_dir.join("apache/sites/shop.conf");
    let before = std::fs::read_to_string(&vhost_path).unwrap();
    // Someone breaks an included file on disk.
    std::fs::write(
        app.settings.data_dir.join("apache/sites/zz-broken.conf"),
        "ThisIsNotADirective yes\n",
    )
    .unwrap();
    // A plain release switch makes Apache read no configuration (pinned mode replaces the
    // live map only), so it still works: a rollback must not wait for someone's typo.
    let (status, r) = activate(&app, &token, &b).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(served(&app).await, "release B");

    // A switch that needs the configuration re-read (the settings changed) is refused whole.
    let core = app.core().await;
    let site = cutover::sites::store::get(&core.pool, "shop")
        .await
        .unwrap();
    let mut settings = site.settings.clone();
    settings.aliases = vec!["www.shop.example.test".into()];
    let source = cutover::audit::Source::default();
    let root = app.settings.sites_root();
    cutover::sites::store::update(&core.pool, &root, "t", &source, &site, &settings)
        .await
        .unwrap();
    let (status, r) = activate(&app, &token, &a).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "configtest_failed");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ThisIsNotADirective"),
        "Apache's own words: {r}"
    );
    assert_eq!(r["active"], b.as_str());
    assert_eq!(
        std::fs::read_to_string(&vhost_path).unwrap(),
        before,
        "previous vhost restored"
    );
    assert_eq!(served(&app).await, "release B");
    let current = std::fs::read_link(app.site_dir("shop").join("current")).unwrap();
    assert!(current.ends_with(&b), "current untouched");
    let map = std::fs::read_to_string(app.site_dir("shop").join("live.map")).unwrap();
    assert!(
        map.contains(&format!("live {b}")),
        "live map untouched: {map}"
    );
}

#[tokio::test]
async fn a_release_that_fails_its_health_check_is_rolled_back_automatically() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({"health_path": "/health.txt"})).await;
    let a = upload(&app, &token, "release A", &[("health.txt", b"ok")]).await;
    let broken = upload(&app, &token, "release without health", &[]).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    let (status, r) = activate(&app, &token, &broken).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "health_check_failed");
    assert_eq!(r["rolled_back"], true);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("put back automatically"),
        "{r}"
    );
    assert!(
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "automatic rollback" && s["ok"] == true),
        "{r}"
    );
    assert_eq!(served(&app).await, "release A");
    let site: Value = app
        .api_get("/api/v1/sites/shop", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(site["active_release"], a.as_str());
    let audit: Value = app
        .api_get("/api/v1/audit?site=shop&action=auto_rollback", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["events"][0]["outcome"], "ok");
    let health: Value = app
        .api_get(
            "/api/v1/audit?site=shop&action=health_check&outcome=failed",
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(health["events"][0]["detail"]["output"]
        .as_str()
        .unwrap()
        .contains("404"));
}

#[tokio::test]
async fn simultaneous_switches_get_one_busy_answer() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    let b = upload(&app, &token, "release B", &[]).await;
    let (ra, rb) = tokio::join!(activate(&app, &token, &a), activate(&app, &token, &b));
    let mut statuses = [ra.0, rb.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{ra:?} {rb:?}");
    let busy = if ra.0 == 409 { ra.1 } else { rb.1 };
    assert_eq!(busy["error"]["code"], "busy");
    assert!(
        busy["error"]["message"].as_str().unwrap().contains("since"),
        "{busy}"
    );
}

#[tokio::test]
async fn a_killed_private_apache_is_noticed_and_restarted() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    let pid = app.apache_pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(Duration::from_secs(20), "the apache_died event", || async {
        let audit: Value = app
            .api_get("/api/v1/audit?action=apache_died", &token)
            .await
            .json()
            .await
            .ok()?;
        (!audit["events"].as_array()?.is_empty()).then_some(())
    })
    .await;
    let restarted: Value = eventually(
        Duration::from_secs(20),
        "the apache_restart event",
        || async {
            let audit: Value = app
                .api_get("/api/v1/audit?action=apache_restart", &token)
                .await
                .json()
                .await
                .ok()?;
            audit["events"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(restarted["outcome"], "ok");
    assert_eq!(served(&app).await, "release A");
    // The console stops its watcher, then the restarted Apache (by its pid file).
    let pidfile = app.settings.data_dir.join("apache/run/httpd.pid");
    let new_pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    app.shutdown().await;
    let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(new_pid), None).is_err()
        || std::fs::read_to_string(format!("/proc/{new_pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
    assert!(gone, "the restarted Apache was stopped with the console");
}

#[tokio::test]
async fn drift_found_at_start_up_is_reported_not_fixed() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    let b = upload(&app, &token, "release B", &[]).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    // A switch by hand behind Cutover's back, plus a leftover temporary link.
    let site = app.site_dir("shop");
    std::os::unix::fs::symlink(format!("releases/{b}"), site.join("hand")).unwrap();
    std::fs::rename(site.join("hand"), site.join("current")).unwrap();
    std::os::unix::fs::symlink("releases/x", site.join(".current-tmp-leftover")).unwrap();
    std::fs::create_dir(site.join("releases/.tmp-20260101-000000-dead")).unwrap();
    let app = app.restart().await;
    let audit: Value = app
        .api_get("/api/v1/audit?action=drift", &token)
        .await
        .json()
        .await
        .unwrap();
    let event = &audit["events"][0];
    assert_eq!(event["site"], "shop");
    assert_eq!(event["detail"]["records"], a.as_str());
    assert_eq!(event["detail"]["current"], b.as_str());
    // Nothing was switched: the link still points where the hand put it; the records say A.
    assert!(std::fs::read_link(site.join("current"))
        .unwrap()
        .ends_with(&b));
    let info: Value = app
        .api_get("/api/v1/sites/shop", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["active_release"], a.as_str());
    assert!(info["drift"]
        .as_str()
        .unwrap()
        .contains("Nothing was switched"));
    assert!(!site.join(".current-tmp-leftover").exists());
    assert!(!site.join("releases/.tmp-20260101-000000-dead").exists());
    // Going live clears the banner.
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    let info: Value = app
        .api_get("/api/v1/sites/shop", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(info.get("drift").is_none());
}

#[tokio::test]
async fn going_live_and_rolling_back_from_the_pages_without_javascript() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    let b = upload(&app, &token, "release B", &[]).await;
    let pw = app.add_user("oncall", cutover::auth::Role::Operator).await;
    let phone = app.logged_in("oncall", &pw).await;

    // Go live: the confirmation names the release, the form posts, the result lists the steps.
    let confirm = phone
        .page(&format!("/sites/shop/releases/{a}/activate"))
        .await;
    assert!(confirm.contains(&format!("Put release {a} live?")));
    let res = phone
        .post(&format!("/sites/shop/releases/{a}/activate"), &[])
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("data-outcome=\"ok\"")
            && page.contains("health check")
            && page.contains(" ms")
    );
    assert_eq!(served(&app).await, "release A");
    assert_eq!(
        phone
            .post(&format!("/sites/shop/releases/{b}/activate"), &[])
            .await
            .status(),
        200
    );
    assert_eq!(served(&app).await, "release B");

    // Roll back: the dashboard's button names the target; the confirmation names both.
    let dashboard = phone.page("/sites/shop").await;
    assert!(
        dashboard.contains(&format!("Roll back to {a}")),
        "rollback button names its target"
    );
    let confirm = phone.page("/sites/shop/rollback").await;
    assert!(confirm.contains(&a) && confirm.contains(&b));
    let res = phone
        .post("/sites/shop/rollback", &[("to", &a), ("live", &b)])
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("data-outcome=\"ok\""));
    assert_eq!(served(&app).await, "release A");
    // The same form sent again (a reload, a second tap) changes nothing and says why.
    let again = phone
        .post("/sites/shop/rollback", &[("to", &a), ("live", &b)])
        .await;
    assert_eq!(again.status(), 409);
    let page = again.text().await.unwrap();
    assert!(page.contains("already live") && page.contains("Nothing was changed"));
    // The confirmation page of the live release says there is nothing to do.
    let live_again = phone
        .get(&format!("/sites/shop/releases/{a}/activate"))
        .await;
    assert_eq!(live_again.status(), 409);
    assert!(live_again.text().await.unwrap().contains("already live"));
    // A confirmation shown before someone else switched is refused, naming what is live now.
    let stale = phone
        .post(
            &format!("/sites/shop/releases/{b}/activate"),
            &[("live", "")],
        )
        .await;
    assert_eq!(stale.status(), 409);
    let page = stale.text().await.unwrap();
    assert!(
        page.contains("changed since") && page.contains(&a),
        "{page}"
    );
    assert_eq!(served(&app).await, "release A");

    // A viewer sees the dashboard but cannot switch.
    let vpw = app.add_user("watcher", cutover::auth::Role::Viewer).await;
    let viewer = app.logged_in("watcher", &vpw).await;
    assert!(!viewer.page("/sites/shop").await.contains("Roll back to"));
    assert_eq!(viewer.post("/sites/shop/rollback", &[]).await.status(), 403);
}

#[tokio::test]
async fn the_config_page_shows_the_vhost_and_apaches_own_words() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    let pw = app.add_user("boss", cutover::auth::Role::Admin).await;
    let admin = app.logged_in("boss", &pw).await;
    let page = admin.page("/sites/shop/config").await;
    assert!(
        page.contains("ServerName shop.example.test") && page.contains("AllowOverride None"),
        "{page}"
    );
    // Every setting's contribution is named, and its link leads to its lines.
    let (status, body) = app
        .patch_site(
            &token,
            "shop",
            json!({"directives": "Header set X-From-Directives \"yes\""}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let page = admin.page("/sites/shop/config").await;
    for field in [
        "server_name, aliases",
        "directory_index",
        "switch = pinned",
        "options, allow_override",
        "runtime = static",
        "directives",
    ] {
        let item = format!("</a>: <strong>{field}</strong>");
        let at = page
            .find(&item)
            .unwrap_or_else(|| panic!("{field} in {page}"));
        let line: usize = page[..at]
            .rsplit("line ")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let anchor = format!("<span id=\"L{line}\" class=\"from-setting\">");
        let start = page
            .find(&anchor)
            .unwrap_or_else(|| panic!("{anchor} in {page}"));
        assert!(
            page[start..].starts_with(&format!("{anchor}    # setting {field}")),
            "{field}"
        );
        if field == "directives" {
            let next = &page[start..].split("</span>").nth(1).unwrap();
            assert!(next.contains("Header set X-From-Directives"), "{next}");
        }
    }
    let res = admin.post("/sites/shop/config/check", &[]).await;
    let page = res.text().await.unwrap();
    assert!(
        page.contains("data-outcome=\"ok\"") && page.contains("Syntax OK"),
        "{page}"
    );
    std::fs::write(
        app.settings.data_dir.join("apache/sites/zz-broken.conf"),
        "Bogus directive\n",
    )
    .unwrap();
    let page = admin
        .post("/sites/shop/config/check", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-outcome=\"failed\"") && page.contains("Bogus"),
        "{page}"
    );
}

#[tokio::test]
async fn changed_settings_reach_apache_through_a_checked_switch() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    let pw = app.add_user("boss", cutover::auth::Role::Admin).await;
    let admin = app.logged_in("boss", &pw).await;
    let res = admin
        .post(
            "/sites/shop/settings",
            &[
                ("server_name", HOST),
                ("aliases", "www.shop.example.test"),
                ("keep_releases", "5"),
                ("switch", "pinned"),
                ("health_path", "/"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let url = format!("http://{}/", app.settings.apache.listen);
    let body = reqwest::Client::new()
        .get(url)
        .header("Host", "www.shop.example.test")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "release A", "the new alias is served at once");
}

#[tokio::test]
async fn rolling_back_again_goes_further_back_never_to_the_release_just_taken_down() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    let b = upload(&app, &token, "release B", &[]).await;
    let c = upload(&app, &token, "release C", &[]).await;
    for id in [&a, &b, &c] {
        assert_eq!(activate(&app, &token, id).await.0, 200);
    }
    let pw = app.add_user("oncall", cutover::auth::Role::Operator).await;
    let phone = app.logged_in("oncall", &pw).await;
    let offered = |page: String| {
        let at = page
            .find("Roll back to ")
            .map(|i| i + "Roll back to ".len());
        at.map(|i| page[i..i + a.len()].to_owned())
    };
    assert_eq!(offered(phone.page("/sites/shop").await), Some(b.clone()));
    let res = phone
        .post("/sites/shop/rollback", &[("to", &b), ("live", &c)])
        .await;
    assert_eq!(res.status(), 200);
    // C was just rolled back from: the button now offers A, not C again.
    assert_eq!(offered(phone.page("/sites/shop").await), Some(a.clone()));
    let res = phone
        .post("/sites/shop/rollback", &[("to", &a), ("live", &b)])
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(served(&app).await, "release A");
    let dashboard = phone.page("/sites/shop").await;
    assert_eq!(offered(dashboard.clone()), None);
    assert!(dashboard.contains("not offered again"), "{dashboard}");
    // The API keeps the contract: without `to`, the release live just before the current one.
    let (status, r) = post(&app, &token, "/api/v1/sites/shop/rollback", None).await;
    assert_eq!(
        (status, r["active"].as_str()),
        (200, Some(b.as_str())),
        "{r}"
    );
}

#[tokio::test]
async fn a_release_damaged_on_disk_is_refused_before_anything_changes() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    let extra: &[(&str, &[u8])] = &[("css/site.css", b"body {}"), ("app.js", b"go()")];
    let b = upload(&app, &token, "release B", extra).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    // A file of B's manifest is gone from its folder (its size is checked against the
    // manifest, read beside the release): refused, named, nothing switched.
    let folder = app.site_dir("shop").join("releases").join(&b);
    std::fs::remove_file(folder.join("css/site.css")).unwrap();
    let (status, r) = activate(&app, &token, &b).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "release_incomplete", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("css/site.css"), "{message}");
    assert_eq!(served(&app).await, "release A");
    // A file whose size changed is found too.
    std::fs::write(folder.join("css/site.css"), "body { color: red }").unwrap();
    let (status, r) = activate(&app, &token, &b).await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (422, Some("release_incomplete")),
        "{r}"
    );
    std::fs::write(folder.join("css/site.css"), "body {}").unwrap();
    assert_eq!(activate(&app, &token, &b).await.0, 200);
    assert_eq!(served(&app).await, "release B");
}

#[tokio::test]
async fn a_release_apache_cannot_read_is_refused_before_anything_changes() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app_with_apache(|_| {}).await;
    let token = setup(&app, json!({})).await;
    let a = upload(&app, &token, "release A", &[]).await;
    let b = upload(&app, &token, "release B", &[]).await;
    assert_eq!(activate(&app, &token, &a).await.0, 200);
    // B's folder is closed to other users, so Apache's workers could not enter it.
    let folder = app.site_dir("shop").join("releases").join(&b);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (status, r) = activate(&app, &token, &b).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "apache_cannot_read", "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("nothing was changed") && message.contains("chmod o+x"),
        "{message}"
    );
    assert_eq!(served(&app).await, "release A");
    // The attempt is in the audit log: its intent (written while the files were checked),
    // then the refusal and why.
    let audit: Value = app
        .api_get("/api/v1/audit?site=shop&action=activate", &token)
        .await
        .json()
        .await
        .unwrap();
    let newest: Vec<_> = audit["events"].as_array().unwrap().iter().take(2).collect();
    assert_eq!(
        (newest[0]["outcome"].as_str(), newest[1]["outcome"].as_str()),
        (Some("failed"), Some("started")),
        "{audit}"
    );
    assert_eq!(newest[0]["release"], b.as_str(), "{audit}");
    let detail = &newest[0]["detail"];
    assert_eq!(detail["code"], "apache_cannot_read", "{detail}");
    assert_eq!(detail["rolled_back"], false, "{detail}");
    // Opened again, it goes live.
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(activate(&app, &token, &b).await.0, 200);
    assert_eq!(served(&app).await, "release B");
}
