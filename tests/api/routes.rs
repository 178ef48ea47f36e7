//! Every declared route × every role and anonymous: the status says who got in.

use actix_web::middleware::from_fn;
use actix_web::{test, web, App, HttpResponse};
use cutover::auth::Role;
use cutover::web::permissions::{Access, ROUTES};
use cutover::web::AppState;

use crate::helpers::{csrf_in, spawn_app, Browser};

fn concrete(path: &str) -> String {
    // Names and ids that do not exist: allowed callers reach the handler and get its 404,
    // so nothing is changed by walking the table.
    path.replace("{file}", "style.css")
        .replace("{name}", "nobody")
        .replace("{id}", "999999")
}

#[tokio::test]
async fn every_route_with_every_role() {
    let app = spawn_app().await;
    let mut callers: Vec<(Option<Role>, Option<Browser>, Option<String>)> =
        vec![(None, Some(app.browser()), None)];
    for role in Role::ALL {
        let name = format!("u-{role}");
        let password = app.add_user(&name, role).await;
        let browser = app.logged_in(&name, &password).await;
        callers.push((Some(role), Some(browser), Some(app.token_for(&name).await)));
    }
    let mut checked = 0;
    for route in ROUTES {
        // Logging out would end the session the rest of the walk uses; it is tested on its own.
        if route.path == "/logout" {
            continue;
        }
        let path = concrete(route.path);
        let api = path.starts_with("/api/");
        for (role, browser, token) in &callers {
            let browser = browser.as_ref().expect("browser");
            let url = format!("{}{path}", app.base);
            let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
            let mut req = browser.client.request(method.clone(), &url);
            if api {
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
            } else if method != reqwest::Method::GET {
                let token = match role {
                    Some(_) => browser.csrf().await,
                    None => csrf_in(&browser.page("/login").await),
                };
                req = req.form(&[("csrf_token", token)]);
            }
            let res = req.send().await.expect("request");
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            let body = res.text().await.unwrap_or_default();
            let who = role
                .map(|r| r.to_string())
                .unwrap_or_else(|| "anonymous".into());
            let ctx = format!("{} {path} as {who}: {status} {body:.200}", route.method);
            match (route.access, role) {
                (Access::Role(_), None) if api => assert_eq!(status, 401, "{ctx}"),
                (Access::Role(_), None) => {
                    assert_eq!(status, 303, "{ctx}");
                    assert!(location.unwrap_or_default().starts_with("/login"), "{ctx}");
                }
                (Access::Role(needed), Some(r)) if *r < needed => assert_eq!(status, 403, "{ctx}"),
                _ => {
                    assert!(![401, 403, 405].contains(&status), "{ctx}");
                    assert!(
                        !body.contains("There is nothing at this address"),
                        "route not registered: {ctx}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= (ROUTES.len() - 1) * 5);
}

#[tokio::test]
async fn logout_needs_a_session() {
    let app = spawn_app().await;
    let anon = app.browser();
    let res = anon.post_form("/logout", &[]).await;
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login"));
    let b = app.logged_in("admin", &app.admin_password).await;
    let res = b.post("/logout", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?notice=logged-out");
}

#[tokio::test]
async fn percent_encoded_paths_are_judged_as_the_router_sees_them() {
    let app = spawn_app().await;
    let anon = app.browser();
    for path in [
        "/%61dmin/users",
        "/%61udit",
        "/%61dmin/users/admin",
        "/sites/%6eew",
    ] {
        let res = anon.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert!(
            res.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login"),
            "{path}"
        );
    }
    let res = reqwest::get(format!("{}/%61pi/v1/audit", app.base))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A viewer cannot reach the admin page behind an encoded name either.
    let pw = app.add_user("peek", Role::Viewer).await;
    let viewer = app.logged_in("peek", &pw).await;
    assert_eq!(viewer.get("/sites/%6eew").await.status(), 403);
    assert_eq!(viewer.get("/%61dmin/users").await.status(), 403);
    // Log-in CSRF through an encoded path is refused too.
    let res = anon
        .post_form(
            "/%6cogin",
            &[("user_name", "admin"), ("password", &app.admin_password)],
        )
        .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn unknown_addresses_are_404_and_wrong_methods_405() {
    let app = spawn_app().await;
    let b = app.browser();
    assert_eq!(b.get("/no/such/page").await.status(), 404);
    let res = b
        .client
        .delete(format!("{}/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    // Security headers are on error answers too.
    let res = b.get("/no/such/page").await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers().contains_key("referrer-policy"));
}

#[actix_web::test]
async fn a_route_missing_from_the_table_is_refused() {
    let app = spawn_app().await;
    let core = app.core().await;
    let state = web::Data::new(AppState {
        pool: core.pool.clone(),
        auth: core.auth,
        settings: std::sync::Arc::new(app.settings.clone()),
        golive: cutover::golive::GoLive {
            pool: core.pool.clone(),
            sites_root: app.settings.sites_root(),
            apache: std::sync::Arc::new(cutover::apache::ApacheCtl::Unavailable("test".into())),
            http: reqwest::Client::new(),
            health_timeout: std::time::Duration::from_secs(1),
            php: None,
            steps: std::sync::Arc::new(app.settings.step_runner(&core.pool)),
            ssh: std::sync::Arc::new(app.settings.ssh()),
        },
        streams: Default::default(),
        runs: Default::default(),
    });
    let service = test::init_service(
        App::new()
            .app_data(state)
            .route(
                "/undeclared",
                web::get().to(|| async { HttpResponse::Ok().body("reached") }),
            )
            .wrap(from_fn(cutover::web::access::guard)),
    )
    .await;
    let res = test::call_service(
        &service,
        test::TestRequest::get().uri("/undeclared").to_request(),
    )
    .await;
    assert_eq!(res.status(), 403);
    let body = test::read_body(res).await;
    assert!(!String::from_utf8_lossy(&body).contains("reached"));
}
