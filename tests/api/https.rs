//! HTTPS sites against a real private Apache with mod_ssl: certificates the test makes with
//! openssl (a CA and leaves), checked before anything changes; the health check verifies
//! over HTTPS; port 80 redirects when asked.

use std::path::Path;

use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{free_port, spawn_app_with_apache, TestApp};

const HOST: &str = "secure.example.test";

/// A CA, and leaves for `HOST` (`leaf.*`) and another name (`other.*`), signed by it.
fn make_certs(dir: &Path) {
    crate::support::certs::make(dir, &[("leaf", HOST), ("other", "other.example.test")]);
}

async fn patch(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.patch_site(token, "secure", body).await
}

#[tokio::test]
async fn https_with_a_checked_certificate_serves_the_release_and_port_80_redirects() {
    let tls_port = free_port();
    let app =
        spawn_app_with_apache(move |s| s.apache.tls_listen = format!("127.0.0.1:{tls_port}")).await;
    let certs = app.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let p = |f: &str| certs.join(f).display().to_string();
    let token = app.admin_token().await;
    app.create_site(&token, json!({"name": "secure", "server_name": HOST}))
        .await;
    let res = app
        .upload(
            &token,
            "secure",
            "r.tgz",
            targz(&[("index.html", b"secure one")]),
            "one",
        )
        .await;
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.activate(&token, "secure", &id).await.0, 200);

    // A key that is not the certificate's, or a certificate for another name: refused before
    // anything changes.
    let (status, body) = patch(
        &app,
        &token,
        json!({"tls": {"certificate": p("leaf.pem"), "key": p("other.key"), "chain": p("ca.pem")}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "tls_refused", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not belong"),
        "{body}"
    );
    let (status, body) = patch(
        &app,
        &token,
        json!({"tls": {"certificate": p("other.pem"), "key": p("other.key")}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("does not cover {HOST}")),
        "{body}"
    );
    let (status, body) = patch(
        &app,
        &token,
        json!({"tls": {"certificate": p("leaf.pem"), "key": p("leaf.key"), "colour": "red"}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
    let now: Value = app
        .api_get("/api/v1/sites/secure", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(now["tls"].is_null(), "{now}");

    let good = json!({"tls": {"certificate": p("leaf.pem"), "key": p("leaf.key"), "chain": p("ca.pem"), "redirect_http": true, "hsts": true}});
    let (status, body) = patch(&app, &token, good).await;
    assert_eq!(status, 200, "{body}");

    // Over HTTPS, verified against the test CA, under the site's own name.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(certs.join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve(HOST, format!("127.0.0.1:{tls_port}").parse().unwrap())
        .build()
        .unwrap();
    let res = client
        .get(format!("https://{HOST}:{tls_port}/"))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_some());
    assert_eq!(res.text().await.unwrap(), "secure one");
    // Port 80 sends visitors to HTTPS.
    let res = app.through_apache(HOST, "/page?x=1").await;
    assert_eq!(res.status(), 301);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("https://{HOST}:{tls_port}/page?x=1"));
    // The site page shows when the certificate ends.
    let viewer = app.add_user("auditor", cutover::auth::Role::Viewer).await;
    let browser = app.logged_in("auditor", &viewer).await;
    let page = browser.page("/sites/secure").await;
    assert!(page.contains("Certificate valid until"), "{page}");
    app.shutdown().await;
}
