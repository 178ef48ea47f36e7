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
