//! Issue 16, item 11: a wildcard alias that covers a public suffix is refused.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn wildcards_over_public_suffixes_are_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for (alias, ok) in [
        ("*.com", false),
        ("*.co.uk", false),
        ("*.github.io", false),
        ("*.shop.example.com", true),
    ] {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/sites", app.base))
            .bearer_auth(&token)
            .json(&json!({"name": format!("s{}", alias.len()), "server_name": "www.example.com", "aliases": [alias]}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        if ok {
            assert_eq!(status, 201, "{alias}: {body}");
        } else {
            assert_eq!(status, 422, "{alias}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("public suffix"),
                "{body}"
            );
        }
    }
}
