//! The audit log as auditors use it: exactly the expected events for each action, review
//! filters and keyset pages over 100,000 events, exports that no text can forge, Verify, and
//! the deployment timeline.

use serde_json::{json, Value};
use sqlx::SqlitePool;

use crate::archives::targz;
use crate::helpers::{spawn_app, spawn_app_with_apache};

type Row = (String, String, String, Option<String>, Option<String>);

/// The first-run admin, logged in with the password changed (as the console requires).
async fn admin_browser(app: &crate::helpers::TestApp) -> crate::helpers::Browser {
    let b = app.logged_in("admin", &app.admin_password).await;
    b.post(
        "/account/password",
        &[
            ("current", &app.admin_password),
            ("new", "a long enough new secret"),
            ("confirm", "a long enough new secret"),
        ],
    )
    .await;
    b
}

async fn events_after(pool: &SqlitePool, after: i64) -> Vec<Row> {
    sqlx::query_as(
        "SELECT actor, action, outcome, site, release FROM audit_events WHERE id > ? ORDER BY id",
    )
    .bind(after)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn last_id(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM audit_events")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_release_action_records_exactly_its_events() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.token_for("admin").await;
    let core = app.core().await;
    let actor = "token:test of admin".to_owned();
    let s = |v: &str| Some(v.to_owned());

    let mark = last_id(&core.pool).await;
    app.create_site(
        &token,
        json!({"name": "shop", "server_name": "shop.example.test", "health_path": "/ok.txt"}),
    )
    .await;
    let a: Value = app
        .upload(
            &token,
            "shop",
            "a.tgz",
            targz(&[("index.html", b"A"), ("ok.txt", b"ok")]),
            "",
        )
        .await
        .json()
        .await
        .unwrap();
    let a = a["id"].as_str().unwrap().to_owned();
    let bad = app
        .upload(&token, "shop", "bad.tgz", b"not an archive".to_vec(), "")
        .await;
    assert_eq!(bad.status(), 422);
    let got = events_after(&core.pool, mark).await;
    let bad_release = got[3].4.clone();
    assert_eq!(
        got,
        vec![
            (
                actor.clone(),
                "site_create".into(),
                "ok".into(),
                s("shop"),
                None
            ),
            (
                actor.clone(),
                "upload".into(),
                "started".into(),
                s("shop"),
                s(&a)
            ),
            (
                actor.clone(),
                "upload".into(),
                "ok".into(),
                s("shop"),
                s(&a)
            ),
            (
                actor.clone(),
                "upload".into(),
                "started".into(),
                s("shop"),
                bad_release.clone()
            ),
            (
                actor.clone(),
                "upload".into(),
                "failed".into(),
                s("shop"),
                bad_release
            ),
        ]
    );

    let mark = last_id(&core.pool).await;
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/sites/shop/releases/{a}/activate",
            app.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: Vec<(String, String)> = events_after(&core.pool, mark)
        .await
        .into_iter()
        .map(|r| (r.1, r.2))
        .collect();
    let expect = [
        ("activate", "started"),
        ("configtest", "ok"),
        ("reload", "ok"),
        ("health_check", "ok"),
        ("activate", "ok"),
    ];
    assert_eq!(got, expect.map(|(a, o)| (a.to_owned(), o.to_owned())));

    let mark = last_id(&core.pool).await;
    let pin = reqwest::Client::new()
        .post(format!("{}/api/v1/sites/shop/releases/{a}/pin", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pin.status(), 200);
    assert_eq!(
        events_after(&core.pool, mark).await,
        vec![(
            actor.clone(),
            "release_pin".into(),
            "ok".into(),
            s("shop"),
            s(&a)
        )]
    );
}

/// Appends `n` synthetic events straight into the table (one statement, fast). Their hashes
/// are not a valid chain: these tests are about reading, not verifying.
async fn bulk(pool: &SqlitePool, n: i64) {
    sqlx::query(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) \
         INSERT INTO audit_events (id, at, actor, ip, action, site, outcome, detail, prev_hash, hash) \
         SELECT (SELECT COALESCE(MAX(id), 0) FROM audit_events) + i, \
                strftime('%Y-%m-%dT%H:%M:%S.000Z', '2026-01-01', '+' || (i * 60) || ' seconds'), \
                'user:bulk' || (i % 7), '192.0.2.1', CASE WHEN i % 10 = 0 THEN 'bulk_rare' ELSE 'bulk' END, \
                CASE WHEN i % 2 = 0 THEN 'even' ELSE 'odd' END, 'ok', '{\"i\":' || i || '}', 'x', 'x' FROM k",
    )
    .bind(n)
    .execute(pool)
    .await
    .unwrap();
    // Keep appending after them.
    sqlx::query(
        "UPDATE audit_head SET last_id = (SELECT MAX(id) FROM audit_events), last_hash = 'x'",
    )
    .execute(pool)
    .await
    .unwrap();
}

async fn walk(app: &crate::helpers::TestApp, token: &str, query: &str) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut next: Option<i64> = None;
    loop {
        let cursor = next.map(|n| format!("&before={n}")).unwrap_or_default();
        let page: Value = app
            .api_get(&format!("/api/v1/audit?limit=500{query}{cursor}"), token)
            .await
            .json()
            .await
            .unwrap();
        ids.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next"].as_i64() {
            Some(n) => next = Some(n),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn keyset_pages_and_filters_over_100_000_events() {
    let app = spawn_app().await;
    let token = app.token_for("admin").await;
    let core = app.core().await;
    bulk(&core.pool, 100_000).await;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&core.pool)
        .await
        .unwrap();

    let all = walk(&app, &token, "").await;
    assert_eq!(all.len() as i64, total, "every event exactly once");
    assert!(
        all.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );

    let rare = walk(&app, &token, "&action=bulk_rare&site=even").await;
    assert_eq!(rare.len(), 10_000);
    // 2026-01-02 (UTC) holds minutes 1440..2879 of the synthetic series.
    let day = walk(&app, &token, "&from=2026-01-02&to=2026-01-02").await;
    assert_eq!(day.len(), 1440);
    let actor = walk(
        &app,
        &token,
        "&actor=user:bulk3&from=2026-01-02&to=2026-01-02",
    )
    .await;
    assert!(actor.len() > 200 && actor.len() < 210, "{}", actor.len());

    let bad = app.api_get("/api/v1/audit?from=last-tuesday", &token).await;
    assert_eq!(bad.status(), 422);

    // The CSV export streams the filtered set: one header and one line per event.
    let pw = app.add_user("reader", cutover::auth::Role::Viewer).await;
    let b = app.logged_in("reader", &pw).await;
    let res = b.get("/audit/export.csv?action=bulk_rare").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let text = res.text().await.unwrap();
    assert_eq!(text.lines().count(), 10_001);
}

#[tokio::test]
async fn exports_cannot_be_forged_by_text_in_events() {
    let app = spawn_app().await;
    let core = app.core().await;
    let forged = "innocent\n999,\"2026-01-01T00:00:00.000Z\",\"user:ceo\",\"\",\"\",\"activate\",\"bank\",\"\",\"ok\",\"{}\",\"\"\r\n";
    let event = cutover::audit::Event::new("user:mallory", "note", cutover::audit::Outcome::Ok)
        .detail(json!({"text": forged}));
    cutover::audit::record_alone(&core.pool, &event)
        .await
        .unwrap();
    let b = admin_browser(&app).await;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&core.pool)
        .await
        .unwrap();
    let csv = b.get("/audit/export.csv").await.text().await.unwrap();
    // The header, every event, and the export's own event (recorded before it streams).
    assert_eq!(csv.lines().count() as i64, total + 2, "one line per event");
    assert!(
        !csv.lines().any(|l| l.starts_with("999,")),
        "no forged line"
    );
    let json = b.get("/audit/export.json").await.text().await.unwrap();
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one event"))
        .collect();
    assert!(lines.len() as i64 >= total);
    assert!(
        lines.iter().any(|e| e["detail"]["text"] == forged),
        "the text itself survives, escaped"
    );
    // Exports are audited.
    let exports: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'audit_export'")
            .fetch_one(&core.pool)
            .await
            .unwrap();
    assert_eq!(exports, 2);
}

#[tokio::test]
async fn the_verify_button_reports_intact_or_the_first_bad_event() {
    let app = spawn_app().await;
    let pw = app.add_user("auditor", cutover::auth::Role::Admin).await;
    let b = app.logged_in("auditor", &pw).await;
    let page = b.post("/audit/verify", &[]).await.text().await.unwrap();
    assert!(
        page.contains("data-verdict=\"intact\"") && page.contains("events"),
        "{page}"
    );
    let core = app.core().await;
    sqlx::query("DROP TRIGGER audit_events_no_update")
        .execute(&core.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET actor = 'user:nobody' WHERE id = 2")
        .execute(&core.pool)
        .await
        .unwrap();
    let page = b.post("/audit/verify", &[]).await.text().await.unwrap();
    assert!(
        page.contains("data-verdict=\"broken\"") && page.contains("event 2"),
        "{page}"
    );
    let pw = app.add_user("looker", cutover::auth::Role::Viewer).await;
    let viewer = app.logged_in("looker", &pw).await;
    assert!(!viewer.page("/audit").await.contains("Verify the log"));
    // A bare user name finds that user's events (as `user:<name>`), whatever the case.
    let mine = viewer.page("/audit?actor=Auditor").await;
    assert!(mine.contains("by user:auditor"), "{mine}");
    assert!(!mine.contains("by user:looker"));
    // Actions read in plain words, with their code beside them; details as named lines.
    assert!(mine.contains("Audit log verified</strong> <code class=\"muted\">audit_verify</code>"));
    assert!(mine.contains("<dt>result</dt>"), "{mine}");
    // The filters fold away (phones) until a filter is in use; then they start open.
    let folded = viewer.page("/audit").await;
    assert!(folded.contains("id=\"audit-filters\">"), "{folded}");
    let filtered = viewer.page("/audit?outcome=ok").await;
    assert!(
        filtered.contains("id=\"audit-filters\" open>"),
        "{filtered}"
    );
    assert!(filtered.contains("Filter events (filtered)"));
}

#[tokio::test]
async fn the_timeline_tells_each_live_period_and_how_it_ended() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.token_for("admin").await;
    app.create_site(
        &token,
        json!({"name": "shop", "server_name": "shop.example.test", "health_path": "/ok.txt"}),
    )
    .await;
    let mut ids = Vec::new();
    for (name, files) in [
        ("A", vec![("ok.txt", &b"ok"[..])]),
        ("B", vec![("ok.txt", &b"ok"[..])]),
        ("broken", vec![]),
    ] {
        let mut all: Vec<(&str, &[u8])> = vec![("index.html", name.as_bytes())];
        all.extend(files);
        let r: Value = app
            .upload(&token, "shop", "x.tgz", targz(&all), name)
            .await
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    let post = |path: String| {
        let (base, token) = (app.base.clone(), token.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(format!("/api/v1/sites/shop/releases/{}/activate", ids[0])).await,
        200
    );
    assert_eq!(
        post(format!("/api/v1/sites/shop/releases/{}/activate", ids[1])).await,
        200
    );
    assert_eq!(
        post(format!("/api/v1/sites/shop/releases/{}/activate", ids[2])).await,
        422
    );
    assert_eq!(post("/api/v1/sites/shop/rollback".into()).await, 200);
    let t: Value = app
        .api_get("/api/v1/sites/shop/timeline", &token)
        .await
        .json()
        .await
        .unwrap();
    let t = t.as_array().unwrap();
    let summary: Vec<(&str, &str)> = t
        .iter()
        .map(|e| (e["release"].as_str().unwrap(), e["what"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            (ids[0].as_str(), "rolled back to"),
            (ids[2].as_str(), "tried"),
            (ids[1].as_str(), "went live"),
            (ids[0].as_str(), "went live")
        ]
    );
    assert_eq!(t[0]["ended"], "still live");
    assert!(t[1]["ended"]
        .as_str()
        .unwrap()
        .starts_with("rolled back automatically"));
    assert!(t[2]["ended"]
        .as_str()
        .unwrap()
        .starts_with(&format!("rolled back to {}", ids[0])));
    assert!(t[3]["ended"]
        .as_str()
        .unwrap()
        .starts_with(&format!("replaced by {}", ids[1])));
    let b = admin_browser(&app).await;
    let page = b.page("/sites/shop/timeline").await;
    assert!(page.contains("rolled back automatically") && page.contains("live now"));
}
