//! CSRF: no token, another session's token, and cross-site requests are all refused.

use crate::helpers::{csrf_in, spawn_app};

#[tokio::test]
async fn state_changes_need_this_sessions_token_and_same_origin() {
    let app = spawn_app().await;
    let pw = app.add_user("carol", cutover::auth::Role::Viewer).await;
    let carol = app.logged_in("carol", &pw).await;
    let other = app.logged_in("carol", &pw).await;
    let theirs = other.csrf().await;
    let mine = carol.csrf().await;
    assert_ne!(mine, theirs, "each session has its own token");

    let no_token = carol.post_form("/account/tokens", &[("label", "x")]).await;
    assert_eq!(no_token.status(), 403);
    assert!(no_token
        .text()
        .await
        .unwrap()
        .contains("data-code=\"csrf_failed\""));

    let wrong = carol
        .post_form(
            "/account/tokens",
            &[("csrf_token", &theirs), ("label", "x")],
        )
        .await;
    assert_eq!(wrong.status(), 403);

    let url = format!("{}/account/tokens", app.base);
    let cross = carol
        .client
        .post(&url)
        .header("Origin", "http://evil.example")
        .form(&[("csrf_token", mine.as_str()), ("label", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.text().await.unwrap().contains("cross_site_request"));
    let fetch_meta = carol
        .client
        .post(&url)
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("csrf_token", mine.as_str()), ("label", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(fetch_meta.status(), 403);

    // The header form of the token works too (for scripts).
    let header = carol
        .client
        .post(&url)
        .header("X-CSRF-Token", &mine)
        .form(&[("label", "via-header")])
        .send()
        .await
        .unwrap();
    assert_eq!(header.status(), 201);
    let ok = carol
        .post_form(
            "/account/tokens",
            &[("csrf_token", &mine), ("label", "fine")],
        )
        .await;
    assert_eq!(ok.status(), 201);

    // Refusals are audited.
    let admin_token = app.token_for("admin").await;
    let events: serde_json::Value = app
        .api_get("/api/v1/audit?action=csrf_refused", &admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), 4, "{events}");
}

#[tokio::test]
async fn login_form_needs_its_token() {
    let app = spawn_app().await;
    let b = app.browser();
    let res = b
        .post_form(
            "/login",
            &[("user_name", "admin"), ("password", &app.admin_password)],
        )
        .await;
    assert_eq!(res.status(), 403);
    let form = b.page("/login").await;
    let res = b
        .post_form(
            "/login",
            &[
                ("csrf_token", "forged"),
                ("user_name", "admin"),
                ("password", &app.admin_password),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = b
        .post_form(
            "/login",
            &[
                ("csrf_token", &csrf_in(&form)),
                ("user_name", "admin"),
                ("password", &app.admin_password),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
}
