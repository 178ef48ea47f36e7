//! Sessions: fixation, replay after logout, disabling, password change, time-outs, throttling.

use std::time::Duration;

use cutover::auth::Role;
use regex::Regex;

use crate::helpers::{eventually, spawn_app, Browser};

fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("cutover_session=") && !c.starts_with("cutover_session=;"))
        .map(str::to_owned)
}

fn value(cookie: &str) -> String {
    cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("cutover_session=")
        .to_owned()
}

/// A client that sends exactly this session cookie (like an attacker replaying it).
async fn with_cookie(base: &str, path: &str, secret: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}{path}"))
        .header("Cookie", format!("cutover_session={secret}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cookie_flags_and_no_fixation() {
    let app = spawn_app().await;
    let b = app.browser();
    let first = b.login("admin", &app.admin_password).await;
    let cookie = session_cookie(&first).expect("session cookie set");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP from a non-proxy: no Secure flag"
    );
    let s1 = value(&cookie);
    assert!(s1.len() >= 22, "at least 128 bits");

    // A second log-in (e.g. over a planted cookie) gets a new id; the old one is dead.
    let second = b.login("admin", &app.admin_password).await;
    let s2 = value(&session_cookie(&second).expect("renewed"));
    assert_ne!(s1, s2);
    assert_eq!(with_cookie(&app.base, "/account", &s1).await.status(), 303);
    assert_eq!(with_cookie(&app.base, "/account", &s2).await.status(), 200);

    // A cookie the attacker made up is never adopted.
    let planted = "attacker-chosen-session-id-000000000000";
    assert_eq!(
        with_cookie(&app.base, "/account", planted).await.status(),
        303
    );
}

#[tokio::test]
async fn secure_cookie_behind_a_trusted_tls_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    let app = cutover::app::Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let password = app.first_run_password().unwrap().to_owned();
    tokio::spawn(app.run_until_stopped());
    let b = Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.clone(),
    };
    let form = b
        .client
        .get(format!("{base}/login"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert!(form.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age"));
    let token = crate::helpers::csrf_in(&form.text().await.unwrap());
    let res = b
        .client
        .post(format!("{base}/login"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-For", "203.0.113.9")
        .form(&[
            ("csrf_token", token.as_str()),
            ("user_name", "admin"),
            ("password", &password),
        ])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&res).expect("cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    // The audit log has the forwarded address, not the proxy's.
    let events = cutover::audit::query::list(
        &cutover::app::Core::open(&crate::helpers::test_settings(dir.path()))
            .await
            .unwrap()
            .pool,
        &cutover::audit::query::Filter {
            action: Some("login".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(events.events[0].ip.as_deref(), Some("203.0.113.9"));
}

#[tokio::test]
async fn logout_kills_the_cookie_for_good() {
    let app = spawn_app().await;
    let b = app.browser();
    let secret = value(&session_cookie(&b.login("admin", &app.admin_password).await).unwrap());
    assert_eq!(b.post("/logout", &[]).await.status(), 303);
    let replay = with_cookie(&app.base, "/account", &secret).await;
    assert_eq!(replay.status(), 303);
    assert!(replay.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions_and_tokens() {
    let app = spawn_app().await;
    let pw = app.add_user("dave", Role::Operator).await;
    let dave = app.logged_in("dave", &pw).await;
    let token = app.token_for("dave").await;
    assert_eq!(dave.get("/").await.status(), 200);
    assert_eq!(app.api_get("/api/v1/me", &token).await.status(), 200);
    let admin = app.logged_in("admin", &app.admin_password).await;
    // The first-run admin must change the password first.
    let res = admin
        .post(
            "/account/password",
            &[
                ("current", &app.admin_password),
                ("new", "a brand new chief passphrase"),
                ("confirm", "a brand new chief passphrase"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        admin.post("/admin/users/dave/disable", &[]).await.status(),
        303
    );
    assert_eq!(
        dave.get("/").await.status(),
        303,
        "dave's session ended at once"
    );
    assert_eq!(app.api_get("/api/v1/me", &token).await.status(), 401);
    assert_eq!(
        dave.login("dave", &pw).await.status(),
        401,
        "a disabled user cannot log in"
    );
    assert_eq!(
        admin.post("/admin/users/dave/enable", &[]).await.status(),
        303
    );
    assert_eq!(dave.login("dave", &pw).await.status(), 303);
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let pw = app.add_user("erin", Role::Viewer).await;
    let here = app.logged_in("erin", &pw).await;
    let there = app.logged_in("erin", &pw).await;
    let new = "quiet lantern harbour meadow";
    let wrong = here
        .post(
            "/account/password",
            &[
                ("current", "not my password at all"),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    let weak = here
        .post(
            "/account/password",
            &[
                ("current", &pw),
                ("new", "password1234"),
                ("confirm", "password1234"),
            ],
        )
        .await;
    assert_eq!(weak.status(), 422);
    assert!(weak.text().await.unwrap().contains("too easy to guess"));
    // Keeping the one-time password an admin saw is not choosing one's own.
    let same = here
        .post(
            "/account/password",
            &[("current", &pw), ("new", &pw), ("confirm", &pw)],
        )
        .await;
    assert_eq!(same.status(), 422);
    assert!(same
        .text()
        .await
        .unwrap()
        .contains("same as the current one"));
    assert_eq!(
        there.get("/").await.status(),
        200,
        "failed changes end nothing"
    );
    let ok = here
        .post(
            "/account/password",
            &[("current", &pw), ("new", new), ("confirm", new)],
        )
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(here.get("/").await.status(), 200, "this session goes on");
    assert_eq!(
        there.get("/").await.status(),
        303,
        "the other session ended"
    );
    assert_eq!(app.browser().login("erin", &pw).await.status(), 401);
    assert_eq!(app.browser().login("erin", new).await.status(), 303);
}

#[tokio::test]
async fn users_see_and_end_their_own_sessions() {
    let app = spawn_app().await;
    let pw = app.add_user("fay", Role::Viewer).await;
    let phone = app.logged_in("fay", &pw).await;
    let laptop = app.logged_in("fay", &pw).await;
    let page = laptop.page("/account").await;
    assert!(page.contains("This device") && page.contains("Another session"));
    let id = Regex::new(r"/account/sessions/(\d+)/end")
        .unwrap()
        .captures(&page)
        .unwrap()[1]
        .to_owned();
    assert_eq!(
        laptop
            .post(&format!("/account/sessions/{id}/end"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(phone.get("/").await.status(), 303);
    assert_eq!(laptop.get("/").await.status(), 200);
}

#[tokio::test]
async fn idle_sessions_time_out() {
    let app = spawn_app().await;
    let pw = app.add_user("gus", Role::Viewer).await;
    let b = app.logged_in("gus", &pw).await;
    assert_eq!(b.get("/").await.status(), 200);
    let core = app.core().await;
    // 31 minutes without use (the default idle time-out is 30).
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - 31 * 60")
        .execute(&core.pool)
        .await
        .unwrap();
    assert_eq!(b.get("/").await.status(), 303);
    let b = app.logged_in("gus", &pw).await;
    sqlx::query("UPDATE sessions SET created_at = created_at - 13 * 3600")
        .execute(&core.pool)
        .await
        .unwrap();
    assert_eq!(b.get("/").await.status(), 303, "absolute time-out of 12 h");
}

#[tokio::test]
async fn repeated_failures_are_slowed_not_locked_out() {
    let app = spawn_app().await;
    let pw = app.add_user("hal", Role::Viewer).await;
    let b = app.browser();
    for _ in 0..3 {
        assert_eq!(b.login("hal", "wrong password guess").await.status(), 401);
    }
    // Even the right password must wait now.
    let throttled = b.login("hal", &pw).await;
    assert_eq!(throttled.status(), 429);
    let retry: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // An unknown user gets the same answer as a wrong password.
    let unknown = app
        .browser()
        .login("nobody-here", "wrong password guess")
        .await;
    assert_eq!(unknown.status(), 429, "this address is slowed too");
    // After the delay the right password works: a delay, not a lock-out.
    eventually(
        Duration::from_secs(10),
        "the throttle to let the right password in",
        || async { (b.login("hal", &pw).await.status() == 303).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_look_the_same() {
    let app = spawn_app().await;
    app.add_user("ivy", Role::Viewer).await;
    let a = app.browser().login("ivy", "not the password!!").await;
    let (sa, ta) = (a.status(), a.text().await.unwrap());
    let b = app
        .browser()
        .login("nosuchuser", "not the password!!")
        .await;
    let (sb, tb) = (b.status(), b.text().await.unwrap());
    assert_eq!(sa, sb);
    let msg = "The user name or password is wrong";
    assert!(ta.contains(msg) && tb.contains(msg));
}

#[tokio::test]
async fn a_switch_sent_after_the_session_ended_does_nothing_and_says_so() {
    let app = spawn_app().await;
    let pw = app.add_user("oncall", Role::Operator).await;
    let b = app.logged_in("oncall", &pw).await;
    let token = b.csrf().await; // the confirmation page's form, kept open on the phone
    assert_eq!(b.post("/logout", &[]).await.status(), 303);
    let res = b
        .post_form(
            "/sites/shop/rollback",
            &[("csrf_token", &token), ("to", "x"), ("live", "y")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "/login?notice=expired&next=%2Fsites%2Fshop%2Frollback"
    );
    let page = b.page(&location).await;
    assert!(page.contains("nothing was done"), "{page}");
    assert!(
        page.contains("/sites/shop/rollback"),
        "log-in returns to the confirmation"
    );
}
