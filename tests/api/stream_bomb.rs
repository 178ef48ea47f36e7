//! Issue 16, item 5: while a tar arrives, its compression ratio is judged on the compressed
//! bytes really read, never on a declared length (or the upload limit when none is sent):
//! a chunked gzip bomb is stopped after a few megabytes are unpacked.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::archives::tar;
use crate::helpers::{spawn_app_with, TestApp};

const MIB: u64 = 1 << 20;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A tar.gz holding one file of `mib` MiB of zeros, made as concatenated gzip members (a
/// gzip reader reads them as one stream): the tar header, then one MiB of zeros compressed
/// once and repeated, then the tar's end. Gigabytes of bomb cost a moment to make.
fn bomb(mib: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros.bin").unwrap();
    h.set_size(mib * MIB);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = gzip(h.as_bytes());
    let block = gzip(&vec![0u8; MIB as usize]);
    for _ in 0..mib {
        out.extend_from_slice(&block);
    }
    out.extend_from_slice(&gzip(&[0u8; 1024]));
    out
}

/// Posts `archive` to `shop` in 64 KiB pieces with no Content-Length (chunked transfer).
async fn chunked(app: &TestApp, token: &str, archive: Vec<u8>) -> (u16, Value) {
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        archive.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(pieces));
    let part = reqwest::multipart::Part::stream(body).file_name("site.tar.gz");
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/sites/shop/releases", app.base))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("archive", part))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Bytes in the staging folders (`releases/.tmp-*`) right now.
fn staged(releases: &Path) -> u64 {
    fn size(p: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if !meta.is_dir() {
            return meta.len();
        }
        let entries = std::fs::read_dir(p).into_iter().flatten().flatten();
        entries.map(|e| size(&e.path())).sum()
    }
    let entries = std::fs::read_dir(releases).into_iter().flatten().flatten();
    entries
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| size(&e.path()))
        .sum()
}

async fn app_and_token() -> (TestApp, String) {
    // Limits low enough that, before the fix, the test ends (refused at 1 GiB unpacked).
    let app = spawn_app_with(|s| {
        s.uploads.max_unpacked_bytes = 1 << 30;
        s.uploads.max_file_bytes = 1 << 30;
    })
    .await;
    let token = app.admin_token().await;
    let site = json!({"name": "shop", "server_name": "shop.example.org"});
    app.create_site(&token, site).await;
    (app, token)
}

#[tokio::test]
async fn a_chunked_gzip_bomb_is_stopped_early() {
    let (app, token) = app_and_token().await;
    let archive = bomb(2048); // 2 GiB of zeros in about 2 MB
    let compressed = archive.len() as u64;
    assert!(compressed * 200 < 1 << 30, "{compressed}");
    // Watches how much the extraction writes while the upload runs.
    let releases = app.site_dir("shop").join("releases");
    let (peak, done) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                peak.fetch_max(staged(&releases), Ordering::AcqRel);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let started = Instant::now();
    let (status, err) = chunked(&app, &token, archive).await;
    let took = started.elapsed();
    done.store(true, Ordering::Release);
    watcher.join().unwrap();
    let peak = peak.load(Ordering::Acquire);
    println!(
        "chunked gzip bomb ({} kB, 2 GiB unpacked, limit 1 GiB): answered {status} in {took:?}, at most {} MiB written",
        compressed >> 10,
        peak / MIB
    );
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["code"], "compression_ratio", "{err}");
    // The floor is 64 MiB unpacked; a refusal on the unpacked limit would have written 1 GiB.
    assert!(
        peak < 160 * MIB,
        "{} MiB written before the refusal",
        peak / MIB
    );
}

#[tokio::test]
async fn a_legitimate_chunked_upload_still_passes() {
    let (app, token) = app_and_token().await;
    // 40 MiB of zeros (under the 64 MiB floor on its own) beside pages and a photo.
    let zeros = vec![0u8; 40 << 20];
    let photo: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let entries: &[(&str, &[u8])] = &[
        ("index.html", b"<h1>shop</h1>"),
        ("video.raw", &zeros),
        ("photo.jpg", &photo),
    ];
    let (status, body) = chunked(&app, &token, gzip(&tar(entries))).await;
    assert_eq!(status, 201, "{body}");
    // A tiny archive too: the floor lets the first bytes through whatever their ratio.
    let tiny = gzip(&tar(&[("index.html", b"tiny")]));
    let (status, body) = chunked(&app, &token, tiny).await;
    assert_eq!(status, 201, "{body}");
}
