//! What the pages' script and the home screen rely on: the upload page's JSON answers, error
//! pages that lead back, the manifest and its icons (the browser tests cover the rest).

use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{spawn_app, Browser, TestApp};

async fn deployer(app: &TestApp) -> Browser {
    let token = app.admin_token().await;
    app.create_site(
        &token,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    let pw = app.add_user("dee", cutover::auth::Role::Deployer).await;
    app.logged_in("dee", &pw).await
}

/// Posts to the upload page the way app.js does: token in a header, JSON asked for.
async fn script_upload(b: &Browser, csrf: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", csrf.to_owned())
        .part(
            "archive",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        )
        .text("note", "from the script");
    b.client
        .post(format!("{}/sites/shop/releases", b.base))
        .header("Accept", "application/json")
        .header("X-CSRF-Token", csrf)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_upload_page_answers_the_script_in_json() {
    let app = spawn_app().await;
    let b = deployer(&app).await;
    let csrf = b.csrf().await;

    let ok = script_upload(&b, &csrf, "site.tgz", targz(&[("index.html", b"hi")])).await;
    assert_eq!(ok.status(), 201);
    let body: Value = ok.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        body["url"],
        format!("/sites/shop/releases/{id}?notice=uploaded")
    );

    let refused = script_upload(&b, &csrf, "notes.tgz", b"not an archive".to_vec()).await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_format");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Upload a .zip"));

    // Refusals by the access guard are JSON too, so the script can say what happened.
    let forged = script_upload(&b, "forged", "site.tgz", targz(&[("a.html", b"a")])).await;
    assert_eq!(forged.status(), 403);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf_failed");

    // Logged out: a 401 the script can explain, not the log-in page.
    let anonymous = app.browser();
    let res = script_upload(&anonymous, "x", "site.tgz", targz(&[("a.html", b"a")])).await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_refused_archive_without_script_is_a_page_that_leads_back() {
    let app = spawn_app().await;
    let b = deployer(&app).await;
    let csrf = b.csrf().await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", csrf)
        .part(
            "archive",
            reqwest::multipart::Part::bytes(b"not an archive".to_vec()).file_name("n.zip"),
        );
    let res = b
        .client
        .post(format!("{}/sites/shop/releases", b.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = res.text().await.unwrap();
    assert!(page.contains("The archive was refused"), "{page}");
    assert!(page.contains("Upload a .zip"));
    assert!(page.contains(r#"href="/sites/shop">Back to shop"#));
}

#[tokio::test]
async fn the_manifest_names_icons_that_are_served() {
    let app = spawn_app().await;
    let b = app.browser();
    let login = b.page("/login").await;
    let manifest_url = regex::Regex::new(r#"rel="manifest" href="([^"]+)""#)
        .unwrap()
        .captures(&login)
        .expect("the layout links the manifest")[1]
        .to_owned();
    assert!(
        manifest_url.contains("?v="),
        "content-hashed: {manifest_url}"
    );
    let manifest: Value = b.get(&manifest_url).await.json().await.unwrap();
    assert_eq!(manifest["display"], "standalone");
    assert_eq!(manifest["start_url"], "/");
    let icons = manifest["icons"].as_array().unwrap();
    let sizes: Vec<&str> = icons.iter().map(|i| i["sizes"].as_str().unwrap()).collect();
    for needed in ["any", "192x192", "512x512"] {
        assert!(sizes.contains(&needed), "an icon of {needed}: {sizes:?}");
    }
    for icon in icons {
        let res = b.get(icon["src"].as_str().unwrap()).await;
        assert_eq!(res.status(), 200, "{icon}");
        assert_eq!(
            res.headers()["content-type"],
            icon["type"].as_str().unwrap()
        );
        let bytes = res.bytes().await.unwrap();
        if icon["type"] == "image/png" {
            // The PNG header's width matches the declared size.
            let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
            let declared = icon["sizes"].as_str().unwrap();
            assert_eq!(format!("{width}x{width}"), declared);
        }
    }
}
