//! Issue 16, item 6: an upload's body is metered before multipart parsing: a header block that
//! never ends, or a body past the upload limit, is cut off instead of buffered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cutover::auth::Role;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp};

const CHUNK: usize = 64 * 1024;

/// POSTs a multipart upload whose body is `first` then `chunks` more pieces of `fill`;
/// returns the status and how many bytes the server had pulled when it answered.
async fn post(
    app: &TestApp,
    token: &str,
    first: Vec<u8>,
    fill: u8,
    chunks: usize,
) -> (u16, u64, u64) {
    let pulled = Arc::new(AtomicU64::new(0));
    let p = pulled.clone();
    let total = (first.len() + chunks * CHUNK) as u64;
    let pieces = std::iter::once(first).chain((0..chunks).map(move |_| vec![fill; CHUNK]));
    let body = futures_util::stream::iter(pieces.map(move |c| {
        p.fetch_add(c.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(c)
    }));
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/sites/docs/releases", app.base))
        .bearer_auth(token)
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    let status = res.map(|r| r.status().as_u16()).unwrap_or(0);
    (status, pulled.load(Ordering::Relaxed), total)
}

async fn app_and_token() -> (TestApp, String) {
    let app = spawn_app_with(|s| s.uploads.max_bytes = 4 << 20).await;
    app.add_user("dee", Role::Admin).await;
    let token = app.token_for("dee").await;
    app.create_site(
        &token,
        json!({"name": "docs", "server_name": "docs.example.test"}),
    )
    .await;
    (app, token)
}

#[tokio::test]
async fn a_header_block_that_never_ends_is_cut_off() {
    let (app, token) = app_and_token().await;
    // `--XyZ` and then 200 MB without the blank line that ends a part's headers.
    let (status, pulled, total) =
        post(&app, &token, b"--XyZ\r\nX-Filler: ".to_vec(), b'a', 3200).await;
    println!(
        "endless part headers: answered {status} after {} of {} MB",
        pulled >> 20,
        total >> 20
    );
    assert!(
        pulled < total / 4,
        "the server read {pulled} of {total} bytes before answering"
    );
}

#[tokio::test]
async fn a_body_past_the_upload_limit_is_cut_off() {
    let (app, token) = app_and_token().await;
    // Field after field the form does not have: each one small, together far past the limit.
    let mut part = Vec::new();
    for i in 0..200 {
        part.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"x{i}\"\r\n\r\n").as_bytes(),
        );
        part.extend_from_slice(&vec![b'z'; 60_000]);
        part.extend_from_slice(b"\r\n");
    }
    part.extend_from_slice(b"--XyZ--\r\n");
    let (status, pulled, total) = post(&app, &token, part, b'z', 0).await;
    println!(
        "12 MB of small fields (limit 4 MiB + 1 MiB): answered {status} after pulling {} MB",
        pulled >> 20
    );
    assert_eq!(status, 413, "{pulled} of {total}");
}
