//! Uploads through the API and the page: valid archives, hostile ones, shared paths,
//! duplicates, retention, and streaming (bounded memory).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::archives::{tar, targz, targz_with_name, targz_with_symlink, tarzst, zip};
use crate::helpers::{spawn_app, spawn_app_with, TestApp};

async fn with_site(app: &TestApp, body: Value) -> String {
    let token = app.admin_token().await;
    app.create_site(&token, body).await;
    token
}

/// Bytes that do not compress.
fn noise(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// Names in a folder (sorted), to prove nothing else appeared.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn valid_archives_become_exact_releases() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    let bytes = targz(&[
        ("index.html", b"<h1>A</h1>"),
        ("assets/", b""),
        ("assets/app.css", b"body{}"),
    ]);
    let sha = hex::encode(Sha256::digest(&bytes));
    let res = app
        .upload(&token, "shop", "site-v1.tar.gz", bytes, "first cut")
        .await;
    assert_eq!(res.status(), 201);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["state"], "ready");
    assert_eq!(r["files"], 2);
    assert_eq!(r["sha256"], sha);
    assert_eq!(r["note"], "first cut");
    assert_eq!(r["original_name"], "site-v1.tar.gz");
    assert!(r["uploaded_by"].as_str().unwrap().starts_with("token:"));
    let id = r["id"].as_str().unwrap();
    let dir = app.site_dir("shop").join("releases").join(id);
    assert_eq!(
        std::fs::read_to_string(dir.join("index.html")).unwrap(),
        "<h1>A</h1>"
    );
    assert_eq!(
        std::fs::metadata(dir.join("index.html"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    assert_eq!(
        std::fs::metadata(dir.join("assets"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        listing(&app.site_dir("shop").join("releases")),
        [id.to_owned()],
        "no staging folder left"
    );

    // Single-folder archives are unwrapped, in every format.
    for (name, archive) in [
        ("b.zip", zip(&[("site/", b""), ("site/index.html", b"B")])),
        (
            "c.tar.zst",
            tarzst(&[("site/index.html", b"C"), ("site/x/y.txt", b"y")]),
        ),
        ("d.tar", tar(&[("index.html", b"D")])),
    ] {
        let res = app.upload(&token, "shop", name, archive, "").await;
        assert_eq!(res.status(), 201, "{name}");
        let r: Value = res.json().await.unwrap();
        let dir = app
            .site_dir("shop")
            .join("releases")
            .join(r["id"].as_str().unwrap());
        assert!(dir.join("index.html").is_file(), "{name} unwrapped");
    }
    let list: Value = app
        .api_get("/api/v1/sites/shop/releases", &token)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids[3], id, "newest first");

    // The manifest lists every file with its hash; comparison uses it.
    let detail: Value = app
        .api_get(&format!("/api/v1/sites/shop/releases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["manifest"][0]["path"], "assets/app.css");
    assert_eq!(
        detail["manifest"][1]["sha256"],
        hex::encode(Sha256::digest(b"<h1>A</h1>"))
    );
    // A poller can leave the list of files out; the rest is the same.
    let brief: Value = app
        .api_get(
            &format!("/api/v1/sites/shop/releases/{id}?manifest=false"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(brief.get("manifest").is_none(), "{brief}");
    assert_eq!(
        (&brief["id"], &brief["files"]),
        (&detail["id"], &detail["files"])
    );
    let diff: Value = app
        .api_get(
            &format!("/api/v1/sites/shop/compare?from={id}&to={}", ids[0]),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(diff["added"], json!([]));
    assert_eq!(diff["removed"], json!(["assets/app.css"]));
    assert_eq!(diff["changed"], json!(["index.html"]));
}

#[tokio::test]
async fn an_identical_upload_says_so() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    let bytes = targz(&[("index.html", b"same")]);
    let first: Value = app
        .upload(&token, "shop", "a.tgz", bytes.clone(), "")
        .await
        .json()
        .await
        .unwrap();
    let again = app.upload(&token, "shop", "a.tgz", bytes, "").await;
    assert_eq!(again.status(), 409);
    let err: Value = again.json().await.unwrap();
    assert_eq!(err["error"]["code"], "duplicate_release");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains(first["id"].as_str().unwrap()));
}

#[tokio::test]
async fn hostile_archives_are_refused_whole_and_leave_nothing() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    let good: Value = app
        .upload(
            &token,
            "shop",
            "good.tgz",
            targz(&[("index.html", b"good")]),
            "",
        )
        .await
        .json()
        .await
        .unwrap();
    let releases = app.site_dir("shop").join("releases");
    let before = listing(&releases);
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut bomb, &tar(&[("zeros.bin", &vec![0u8; 200 << 20])])).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("symlink", targz_with_symlink(), "symlink"),
        (
            "parent",
            targz_with_name(b"../../escape.html"),
            "parent_path",
        ),
        (
            "absolute",
            targz_with_name(b"/tmp/escape.html"),
            "absolute_path",
        ),
        (
            "zip-parent",
            zip(&[("../escape.html", b"x")]),
            "parent_path",
        ),
        (
            "not an archive",
            b"just some text, not an archive at all".to_vec(),
            "unsupported_format",
        ),
        (
            "truncated",
            targz(&[("index.html", &noise(100_000))])[..4000].to_vec(),
            "corrupt_archive",
        ),
        ("empty", targz(&[]), "empty_archive"),
        ("bomb", bomb.finish().unwrap(), "compression_ratio"),
    ];
    for (what, bytes, code) in cases {
        let res = app.upload(&token, "shop", "x.tar.gz", bytes, "").await;
        assert_eq!(res.status(), 422, "{what}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"]["code"], code, "{what}: {err}");
        assert_eq!(
            listing(&releases),
            before,
            "{what} left something in releases/"
        );
    }
    assert!(
        !app.site_dir("shop").join("escape.html").exists()
            && !Path::new("/tmp/escape.html").exists()
    );
    assert!(
        listing(&app.settings.data_dir.join("uploads")).is_empty(),
        "temporary upload files removed"
    );
    let good_dir = releases.join(good["id"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(good_dir.join("index.html")).unwrap(),
        "good",
        "earlier release untouched"
    );
    // Refusals are in the history (as failed) and the audit log (with the reason and hash).
    let list: Value = app
        .api_get("/api/v1/sites/shop/releases", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "failed")
            .count(),
        8
    );
    let audit: Value = app
        .api_get("/api/v1/audit?action=upload&site=shop", &token)
        .await
        .json()
        .await
        .unwrap();
    let failed: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "failed")
        .collect();
    assert_eq!(failed.len(), 8);
    assert!(failed
        .iter()
        .all(|e| e["detail"]["sha256"].as_str().unwrap().len() == 64
            && e["detail"]["reason"].is_string()));
}

#[tokio::test]
async fn shared_paths_are_linked_and_protected() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org", "shared_paths": ["uploads"]}),
    )
    .await;
    std::fs::write(
        app.site_dir("shop").join("shared/uploads/photo.jpg"),
        "kept across releases",
    )
    .unwrap();
    let r: Value = app
        .upload(
            &token,
            "shop",
            "a.tgz",
            targz(&[("index.html", b"A"), ("uploads/", b"")]),
            "",
        )
        .await
        .json()
        .await
        .unwrap();
    let link = app
        .site_dir("shop")
        .join("releases")
        .join(r["id"].as_str().unwrap())
        .join("uploads");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../../shared/uploads")
    );
    assert_eq!(
        std::fs::read_to_string(link.join("photo.jpg")).unwrap(),
        "kept across releases"
    );
    let res = app
        .upload(
            &token,
            "shop",
            "b.tgz",
            targz(&[("index.html", b"B"), ("uploads/new.jpg", b"would be lost")]),
            "",
        )
        .await;
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "shared_path_conflict");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("uploads"));
    assert_eq!(listing(&app.site_dir("shop").join("releases")).len(), 1);
}

#[tokio::test]
async fn retention_keeps_the_newest_and_the_pinned() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org", "keep_releases": 2}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r: Value = app
            .upload(
                &token,
                "shop",
                "a.tgz",
                targz(&[("index.html", format!("v{i}").as_bytes())]),
                "",
            )
            .await
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    // Pin the oldest survivor, then upload twice more.
    let pin = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/sites/shop/releases/{}/pin",
            app.base, ids[1]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pin.status(), 200);
    for i in 3..5 {
        let r: Value = app
            .upload(
                &token,
                "shop",
                "a.tgz",
                targz(&[("index.html", format!("v{i}").as_bytes())]),
                "",
            )
            .await
            .json()
            .await
            .unwrap();
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    let on_disk = listing(&app.site_dir("shop").join("releases"));
    let mut expected = vec![ids[1].clone(), ids[3].clone(), ids[4].clone()];
    expected.sort();
    assert_eq!(on_disk, expected, "newest two plus the pinned one");
    let list: Value = app
        .api_get("/api/v1/sites/shop/releases", &token)
        .await
        .json()
        .await
        .unwrap();
    let deleted: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "deleted")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, [ids[2].as_str(), ids[0].as_str()]);
    let audit: Value = app
        .api_get("/api/v1/audit?action=release_delete", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["events"].as_array().unwrap().len(), 2);
    // An admin deletes by hand; a deployer may not.
    let del = reqwest::Client::new()
        .delete(format!(
            "{}/api/v1/sites/shop/releases/{}",
            app.base, ids[3]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert!(!app.site_dir("shop").join("releases").join(&ids[3]).exists());
}

#[tokio::test]
async fn the_upload_page_needs_its_csrf_token_first() {
    let app = spawn_app().await;
    with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    let pw = app.add_user("dee", cutover::auth::Role::Deployer).await;
    let b = app.logged_in("dee", &pw).await;
    let csrf = b.csrf().await;
    let send = |token: Option<String>| {
        let mut form = reqwest::multipart::Form::new();
        if let Some(t) = token {
            form = form.text("csrf_token", t);
        }
        let form = form.text("note", "from the page").part(
            "archive",
            reqwest::multipart::Part::bytes(targz(&[("index.html", b"page")])).file_name("p.tgz"),
        );
        b.client
            .post(format!("{}/sites/shop/releases", app.base))
            .multipart(form)
            .send()
    };
    assert_eq!(send(None).await.unwrap().status(), 403);
    assert_eq!(send(Some("forged".into())).await.unwrap().status(), 403);
    let ok = send(Some(csrf)).await.unwrap();
    assert_eq!(ok.status(), 303);
    let location = ok.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/sites/shop/releases/") && location.ends_with("?notice=uploaded")
    );
    let page = b.page(&location).await;
    assert!(page.contains("from the page") && page.contains("index.html"));
}

#[tokio::test]
async fn the_size_limit_is_enforced_while_streaming() {
    let app = spawn_app_with(|s| s.uploads.max_bytes = 1 << 20).await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    let big = noise(3 << 20);
    let res = app
        .upload(&token, "shop", "big.tar", tar(&[("big.bin", &big)]), "")
        .await;
    assert_eq!(res.status(), 413);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "too_large");
    assert_nothing_left(&app);
    // The tar was being unpacked as it arrived: its intent is closed with the reason.
    let failed = last_failed_upload(&app, &token).await;
    assert_eq!(failed["detail"]["code"], "too_large", "{failed}");
}

/// No temporary upload file and no staging folder anywhere.
fn assert_nothing_left(app: &TestApp) {
    let uploads = app.settings.data_dir.join("uploads");
    if uploads.exists() {
        assert!(
            listing(&uploads).is_empty(),
            "temporary upload files removed"
        );
    }
    let releases = app.site_dir("shop").join("releases");
    let staging: Vec<String> = listing(&releases)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(staging.is_empty(), "staging folders left: {staging:?}");
}

/// The newest `upload` event with outcome `failed` (there must be one).
async fn last_failed_upload(app: &TestApp, token: &str) -> Value {
    let audit: Value = app
        .api_get("/api/v1/audit?action=upload&outcome=failed", token)
        .await
        .json()
        .await
        .unwrap();
    audit["events"][0].clone()
}

#[tokio::test]
async fn a_tar_refused_part_way_is_still_answered_with_the_reason() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    // The symbolic link comes first; 6 MB of files follow, which the server must still read
    // (not answer early into a broken pipe) and hash for the record.
    let mut raw = Vec::new();
    {
        let mut b = ::tar::Builder::new(&mut raw);
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "index.html", "/etc/passwd").unwrap();
        for i in 0..3 {
            let data = noise(2 << 20);
            let mut h = ::tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("f{i}.bin"), &data[..])
                .unwrap();
        }
        b.finish().unwrap();
    }
    let sha = hex::encode(Sha256::digest(&raw));
    let res = app.upload(&token, "shop", "site.tar", raw, "").await;
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "symlink", "{err}");
    assert_nothing_left(&app);
    let failed = last_failed_upload(&app, &token).await;
    assert_eq!(failed["detail"]["sha256"], sha.as_str(), "{failed}");
    assert_eq!(failed["detail"]["code"], "symlink");
}

#[tokio::test]
async fn an_upload_that_breaks_off_leaves_nothing_and_is_recorded() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    // 3 MB of a real tar, then the client's stream fails: the connection is cut.
    let whole = tar(&[("a.bin", &noise(4 << 20)), ("b.bin", &noise(4 << 20))]);
    let head = whole[..3 << 20].to_vec();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = head
        .chunks(64 * 1024)
        .map(|c| Ok(c.to_vec()))
        .chain(std::iter::once(Err(std::io::Error::other("cut"))))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let sent = streamed_upload(&app, &token, body).send().await;
    assert!(sent.is_err(), "the client broke the upload off");
    // The server notices, stops unpacking, removes the staging folder and closes the intent.
    let failed = crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the broken-off upload is recorded",
        || async {
            let e = last_failed_upload(&app, &token).await;
            (!e.is_null()).then_some(e)
        },
    )
    .await;
    assert_eq!(failed["detail"]["code"], "bad_upload", "{failed}");
    assert_nothing_left(&app);
    let list: Value = app
        .api_get("/api/v1/sites/shop/releases", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "failed"),
        "{list}"
    );
}

/// Bytes that really do not compress (xorshift).
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A tar.gz at the best compression.
fn targz_best(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar(entries)).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn a_very_compressible_start_is_judged_on_the_bytes_read() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    // 70 MB of zeros first (about 1000:1 on their own, past the 64 MB floor), then 500 kB
    // that does not compress: under 200:1 overall. While it arrives, only the compressed
    // bytes read so far count, whatever length the client declared (believing one let a
    // chunked bomb unpack to the unpacked limit), so it is refused, with or without one.
    let zeros = vec![0u8; 70 << 20];
    let archive = targz_best(&[("video.raw", &zeros), ("photo.jpg", &random_bytes(500_000))]);
    assert!(archive.len() as u64 * 200 > 70 << 20, "{}", archive.len());
    let res = app
        .upload(&token, "shop", "site.tar.gz", archive.clone(), "")
        .await;
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "compression_ratio", "{err}");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        archive.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let res = streamed_upload(&app, &token, body).send().await.unwrap();
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "compression_ratio", "{err}");
    assert_nothing_left(&app);
    // Under the floor, the same kind of start is an ordinary release.
    let zeros = vec![0u8; 40 << 20];
    let archive = targz_best(&[("video.raw", &zeros), ("photo.jpg", &random_bytes(500_000))]);
    let res = app.upload(&token, "shop", "site.tar.gz", archive, "").await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// An upload to `shop` whose archive is `body`, sent as it is produced: no declared length.
fn streamed_upload(app: &TestApp, token: &str, body: reqwest::Body) -> reqwest::RequestBuilder {
    let archive = reqwest::multipart::Part::stream(body).file_name("site.tar");
    reqwest::Client::new()
        .post(format!("{}/api/v1/sites/shop/releases", app.base))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("archive", archive))
}

/// Starts an upload whose body is held back after `first` bytes; returns the sender for the
/// rest and the request's task.
fn held_upload(
    app: &TestApp,
    token: &str,
    first: Vec<u8>,
) -> (
    tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    tokio::task::JoinHandle<u16>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tx.try_send(Ok(first)).unwrap();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let request = streamed_upload(app, token, reqwest::Body::wrap_stream(stream));
    let task = tokio::spawn(async move { request.send().await.unwrap().status().as_u16() });
    (tx, task)
}

#[tokio::test]
async fn uploads_past_the_streaming_cap_are_unpacked_once_whole() {
    let app = spawn_app().await;
    let token = with_site(
        &app,
        json!({"name": "shop", "server_name": "shop.example.org"}),
    )
    .await;
    // Eight uploads start unpacking as they arrive, then wait for the rest of their bytes.
    let mut held = Vec::new();
    for i in 0..8 {
        let archive = tar(&[(&format!("page{i}.html"), &noise(256 * 1024))]);
        let (tx, task) = held_upload(&app, &token, archive[..64 * 1024].to_vec());
        held.push((tx, task, archive[64 * 1024..].to_vec()));
    }
    crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "eight streamed uploads under way",
        || async {
            let audit: Value = app
                .api_get("/api/v1/audit?action=upload&outcome=started", &token)
                .await
                .json()
                .await
                .unwrap();
            (audit["events"].as_array().unwrap().len() == 8).then_some(())
        },
    )
    .await;
    // A ninth is not refused: it is stored whole first, then unpacked.
    let res = app
        .upload(
            &token,
            "shop",
            "ninth.tar",
            tar(&[("index.html", b"ninth")]),
            "",
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let audit: Value = app
        .api_get("/api/v1/audit?action=upload&outcome=started", &token)
        .await
        .json()
        .await
        .unwrap();
    let ninth = &audit["events"][0]["detail"];
    assert!(
        ninth["sha256"].is_string() && ninth["streamed"].is_null(),
        "{ninth}"
    );
    // The eight finish normally.
    for (tx, task, rest) in held {
        tx.send(Ok(rest)).await.unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap(), 201);
    }
    assert_nothing_left(&app);
}

#[tokio::test]
async fn a_first_release_seeds_an_empty_shared_folder_once_and_says_so() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    app.create_site(
        &token,
        serde_json::json!({"name": "wiki", "server_name": "wiki.test", "shared_paths": ["data"]}),
    )
    .await;
    let res = app
        .upload(
            &token,
            "wiki",
            "a.tgz",
            targz(&[
                ("index.html", b"A"),
                ("data/pages/start.txt", b"first page"),
            ]),
            "",
        )
        .await;
    assert_eq!(res.status(), 201);
    let shared = app.site_dir("wiki").join("shared/data/pages/start.txt");
    assert_eq!(std::fs::read_to_string(shared).unwrap(), "first page");
    let audit: Value = app
        .api_get("/api/v1/audit?action=upload&outcome=ok", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit["events"][0]["detail"]["seeded_shared"],
        serde_json::json!(["data"])
    );
}
