//! API tokens: shown once, stored as a hash, revocable, last use recorded.

use cutover::auth::Role;
use regex::Regex;

use crate::helpers::spawn_app;

#[tokio::test]
async fn token_lifecycle_from_the_account_page() {
    let app = spawn_app().await;
    let pw = app.add_user("jo", Role::Deployer).await;
    let b = app.logged_in("jo", &pw).await;
    let res = b.post("/account/tokens", &[("label", "ci deploy")]).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let page = res.text().await.unwrap();
    let token =
        Regex::new(r#"id="new-token" class="mono" readonly value="(cutover_[A-Za-z0-9_-]+)""#)
            .unwrap()
            .captures(&page)
            .expect("token shown")[1]
            .to_owned();
    // Shown once: the account page does not show it again.
    assert!(!b.page("/account").await.contains(&token));

    let me: serde_json::Value = app
        .api_get("/api/v1/me", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "jo");
    assert_eq!(me["role"], "deployer");
    assert_eq!(me["token_label"], "ci deploy");

    // Stored only as a hash; last use recorded.
    let core = app.core().await;
    let (last_used,): (Option<i64>,) =
        sqlx::query_as("SELECT last_used_at FROM api_tokens WHERE label = 'ci deploy'")
            .fetch_one(&core.pool)
            .await
            .unwrap();
    assert!(last_used.is_some());
    let page = b.page("/account").await;
    assert!(page.contains("last used"));

    let id = Regex::new(r"/account/tokens/(\d+)/revoke")
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_owned();
    assert_eq!(
        b.post(&format!("/account/tokens/{id}/revoke"), &[])
            .await
            .status(),
        303
    );
    let res = app.api_get("/api/v1/me", &token).await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"].as_str().unwrap().len() > 10);
}

#[tokio::test]
async fn api_answers_401_without_or_with_bad_credentials() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/api/v1/me", app.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        app.api_get("/api/v1/me", "cutover_made-up").await.status(),
        401
    );
    // A session cookie is not an API credential.
    let b = app.logged_in("admin", &app.admin_password).await;
    assert_eq!(b.get("/api/v1/me").await.status(), 401);
}

#[tokio::test]
async fn admins_manage_others_tokens() {
    let app = spawn_app().await;
    let pw = app.add_user("kim", Role::Viewer).await;
    let token = app.token_for("kim").await;
    let apw = app.add_user("root2", Role::Admin).await;
    let admin = app.logged_in("root2", &apw).await;
    let page = admin.page("/admin/users/kim").await;
    let id = Regex::new(r"/admin/users/kim/tokens/(\d+)/revoke")
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_owned();
    assert_eq!(
        admin
            .post(&format!("/admin/users/kim/tokens/{id}/revoke"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(app.api_get("/api/v1/me", &token).await.status(), 401);
    // kim cannot reach admin pages.
    let kim = app.logged_in("kim", &pw).await;
    assert_eq!(kim.get("/admin/users").await.status(), 403);
}

#[tokio::test]
async fn admin_user_management_works_end_to_end() {
    let app = spawn_app().await;
    let apw = app.add_user("boss", Role::Admin).await;
    let admin = app.logged_in("boss", &apw).await;
    let res = admin
        .post("/admin/users", &[("name", "Newbie"), ("role", "operator")])
        .await;
    assert_eq!(res.status(), 201);
    let page = res.text().await.unwrap();
    let temp = Regex::new(r#"id="temp-password" class="mono" readonly value="([^"]+)""#)
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_owned();
    let dup = admin
        .post("/admin/users", &[("name", "newbie"), ("role", "viewer")])
        .await;
    assert_eq!(dup.status(), 422);
    assert!(dup.text().await.unwrap().contains("already exists"));
    let bad = admin
        .post("/admin/users", &[("name", "new\nbie"), ("role", "viewer")])
        .await;
    assert_eq!(bad.status(), 422);

    // First log-in with the generated password must lead to choosing a new one.
    let newbie = app.browser();
    let res = newbie.login("newbie", &temp).await;
    assert_eq!(res.headers()["location"], "/account?notice=must-change");
    assert_eq!(
        newbie.get("/audit").await.headers()["location"],
        "/account?notice=must-change"
    );
    let mine = "my own very private words";
    assert_eq!(
        newbie
            .post(
                "/account/password",
                &[("current", &temp), ("new", mine), ("confirm", mine)]
            )
            .await
            .status(),
        303
    );
    assert_eq!(newbie.get("/audit").await.status(), 200);

    assert_eq!(
        admin
            .post("/admin/users/newbie/role", &[("role", "deployer")])
            .await
            .status(),
        303
    );
    assert!(admin.page("/admin/users").await.contains("deployer"));
    let reset = admin.post("/admin/users/newbie/password", &[]).await;
    assert_eq!(reset.status(), 201);
    assert_eq!(
        newbie.get("/").await.status(),
        303,
        "a reset ends their sessions"
    );

    // The last enabled admin is protected.
    let solo = app.core().await;
    solo.auth
        .set_role("test", &Default::default(), "admin", Role::Viewer)
        .await
        .unwrap();
    let last = admin
        .post("/admin/users/boss/role", &[("role", "viewer")])
        .await;
    assert_eq!(last.status(), 409);
    assert_eq!(
        admin.post("/admin/users/boss/disable", &[]).await.status(),
        422,
        "not yourself"
    );
}

/// Issue 16, item 12: a token may expire; past its expiry it is refused like a revoked one.
#[tokio::test]
async fn an_expired_token_stops_working() {
    let app = crate::helpers::spawn_app().await;
    let config = app.dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", app.settings.data_dir)).unwrap();
    let (ok, out, err) = crate::helpers::run_cli(
        &config,
        &[
            "token",
            "create",
            "admin",
            "--label",
            "ci",
            "--expires-days",
            "1",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("expires in 1 days"), "{out}");
    let token = out.trim_end().lines().last().unwrap().to_owned();
    assert_eq!(app.api_get("/api/v1/me", &token).await.status(), 200);
    let core = app.core().await;
    sqlx::query("UPDATE api_tokens SET expires_at = ? WHERE label = 'ci'")
        .bind(cutover::db::now_unix() - 1)
        .execute(&core.pool)
        .await
        .unwrap();
    assert_eq!(app.api_get("/api/v1/me", &token).await.status(), 401);
}

/// The `expires` text of the token row labelled `label` on a token list.
fn expiry_of(page: &str, label: &str) -> String {
    let row = Regex::new(&format!(
        r"(?s)<strong>{label}</strong>.*?(expires: never|expired <time[^>]*>|expires <time[^>]*>)"
    ))
    .unwrap();
    row.captures(page)
        .unwrap_or_else(|| panic!("no row for {label}"))[1]
        .to_owned()
}

/// Issue 16, item 12: a token's expiry is chosen on the form (blank: never) and shown on
/// the owner's list and the admin's.
#[tokio::test]
async fn token_expiry_is_chosen_on_the_form_and_shown() {
    let app = spawn_app().await;
    let pw = app.add_user("jo", Role::Deployer).await;
    let b = app.logged_in("jo", &pw).await;
    let res = b
        .post(
            "/account/tokens",
            &[("label", "weekly"), ("expires_days", "7")],
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = b
        .post(
            "/account/tokens",
            &[("label", "forever"), ("expires_days", "")],
        )
        .await;
    assert_eq!(res.status(), 201);
    for bad in ["0", "-3", "soon", "99999"] {
        let res = b
            .post(
                "/account/tokens",
                &[("label", "bad"), ("expires_days", bad)],
            )
            .await;
        assert_eq!(res.status(), 422, "{bad}");
        assert!(res.text().await.unwrap().contains("whole number of days"));
    }
    let page = b.page("/account").await;
    assert!(page.contains(r#"name="expires_days""#));
    assert_eq!(expiry_of(&page, "forever"), "expires: never");
    assert!(
        expiry_of(&page, "weekly").starts_with("expires <time"),
        "{page}"
    );
    let core = app.core().await;
    let (at,): (i64,) = sqlx::query_as("SELECT expires_at FROM api_tokens WHERE label = 'weekly'")
        .fetch_one(&core.pool)
        .await
        .unwrap();
    let week = cutover::db::now_unix() + 7 * 86_400;
    assert!((week - at).abs() < 60, "{at}");
    // Past its expiry it says so, here and on the admin's page of the user.
    sqlx::query("UPDATE api_tokens SET expires_at = 1000 WHERE label = 'weekly'")
        .execute(&core.pool)
        .await
        .unwrap();
    assert!(expiry_of(&b.page("/account").await, "weekly").starts_with("expired <time"));
    let apw = app.add_user("boss", Role::Admin).await;
    let admin = app.logged_in("boss", &apw).await;
    let res = admin
        .post(
            "/admin/users/jo/tokens",
            &[("label", "by-admin"), ("expires_days", "30")],
        )
        .await;
    assert_eq!(res.status(), 201);
    let page = admin.page("/admin/users/jo").await;
    assert!(expiry_of(&page, "weekly").starts_with("expired <time"));
    assert_eq!(expiry_of(&page, "forever"), "expires: never");
    assert!(expiry_of(&page, "by-admin").starts_with("expires <time"));
}

/// Issue 16, item 12: the password-reset page lists the user's working tokens with one
/// "revoke all", which ends them all (audited with the count); admins only, CSRF-checked.
#[tokio::test]
async fn a_password_reset_offers_to_revoke_every_token() {
    let app = spawn_app().await;
    app.add_user("kim", Role::Deployer).await;
    let (first, second) = (app.token_for("kim").await, app.token_for("kim").await);
    let spent = app.token_for("kim").await;
    let core = app.core().await;
    let kim: (i64,) = sqlx::query_as("SELECT id FROM users WHERE name = 'kim'")
        .fetch_one(&core.pool)
        .await
        .unwrap();
    let newest: (i64,) = sqlx::query_as("SELECT max(id) FROM api_tokens")
        .fetch_one(&core.pool)
        .await
        .unwrap();
    core.auth
        .revoke_token("test", &Default::default(), kim.0, newest.0)
        .await
        .unwrap();
    let apw = app.add_user("boss", Role::Admin).await;
    let admin = app.logged_in("boss", &apw).await;
    let res = admin.post("/admin/users/kim/password", &[]).await;
    assert_eq!(res.status(), 201);
    let page = res.text().await.unwrap();
    let live = Regex::new(r#"(?s)<ul class="rows" id="live-tokens">(.*?)</ul>"#)
        .unwrap()
        .captures(&page)
        .expect("live tokens listed")[1]
        .to_owned();
    assert_eq!(
        live.matches("<li>").count(),
        2,
        "only working tokens: {live}"
    );
    assert!(live.contains("never expires"));
    assert!(page.contains(r#"action="/admin/users/kim/tokens/revoke-all""#));
    // Without the form's CSRF token, nothing is revoked.
    let forged = admin
        .post_form("/admin/users/kim/tokens/revoke-all", &[])
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(app.api_get("/api/v1/me", &first).await.status(), 200);
    // Not an admin: refused.
    let pw = app.add_user("dep", Role::Operator).await;
    let dep = app.logged_in("dep", &pw).await;
    let res = dep.post("/admin/users/kim/tokens/revoke-all", &[]).await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.api_get("/api/v1/me", &second).await.status(), 200);

    let res = admin.post("/admin/users/kim/tokens/revoke-all", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/admin/users/kim?notice=tokens-revoked"
    );
    for token in [&first, &second, &spent] {
        assert_eq!(app.api_get("/api/v1/me", token).await.status(), 401);
    }
    let (detail,): (String,) = sqlx::query_as(
        "SELECT detail FROM audit_events WHERE action = 'token_revoke_all' ORDER BY id DESC",
    )
    .fetch_one(&core.pool)
    .await
    .unwrap();
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["count"], 2, "{detail}");
    assert_eq!(detail["user"], "kim", "{detail}");
    let page = admin.page("/admin/users/kim").await;
    assert!(!page.contains("badge good\">active"), "{page}");
}

/// Issue 16, item 12: disabling an account ends its tokens, and enabling it again does not
/// bring them back.
#[tokio::test]
async fn disabling_an_account_ends_its_tokens() {
    let app = spawn_app().await;
    app.add_user("lee", Role::Deployer).await;
    let token = app.token_for("lee").await;
    assert_eq!(app.api_get("/api/v1/me", &token).await.status(), 200);
    let apw = app.add_user("boss", Role::Admin).await;
    let admin = app.logged_in("boss", &apw).await;
    let res = admin.post("/admin/users/lee/disable", &[]).await;
    assert_eq!(res.status(), 303);
    let res = app.api_get("/api/v1/me", &token).await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let res = admin.post("/admin/users/lee/enable", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.api_get("/api/v1/me", &token).await.status(), 401);
    assert!(admin
        .page("/admin/users/lee")
        .await
        .contains("badge bad\">revoked"));
}
