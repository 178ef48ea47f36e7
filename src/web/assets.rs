//! Static files, compiled into the binary so an installed `cutover` needs no folder beside it.
//! Written by hand rather than with actix-files or rust-embed: a handful of files, and we want
//! content-hashed URLs (`?v=<hash>`) for cache-busting, which neither gives directly.

use std::sync::LazyLock;

use actix_web::http::header::{CacheControl, CacheDirective, ContentType};
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

use crate::error::AppError;

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
    version: String,
}

macro_rules! asset {
    ($name:literal, $mime:literal) => {
        (
            $name,
            $mime,
            include_bytes!(concat!("../../static/", $name)) as &[u8],
        )
    };
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    [
        asset!("style.css", "text/css; charset=utf-8"),
        asset!("app.js", "text/javascript; charset=utf-8"),
        asset!("favicon.svg", "image/svg+xml"),
        asset!("manifest.webmanifest", "application/manifest+json"),
        // Home-screen icons: favicon.svg rendered by headless Chromium at 192 and 512 px
        // (the maskable one full-bleed, its mark inside the central 80% safe zone).
        asset!("icon-192.png", "image/png"),
        asset!("icon-512.png", "image/png"),
        asset!("icon-maskable-512.png", "image/png"),
    ]
    .into_iter()
    .map(|(name, mime, body)| Asset {
        name,
        mime,
        body,
        version: hex::encode(&Sha256::digest(body)[..6]),
    })
    .collect()
});

/// The URL of a static file, with its content hash for cache-busting.
pub fn url(name: &str) -> String {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => format!("/static/{}?v={}", a.name, a.version),
        None => format!("/static/{name}"),
    }
}

/// Query fields.
#[derive(serde::Deserialize)]
pub struct Version {
    v: Option<String>,
}

/// `GET /static/{file}`.
pub async fn serve(
    file: web::Path<String>,
    q: web::Query<Version>,
) -> Result<HttpResponse, AppError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == file.as_str())
        .ok_or_else(|| AppError::NotFound("No such file.".into()))?;
    // A versioned URL never changes content: cache it for a year. Otherwise revalidate.
    let cache = if q.v.as_deref() == Some(asset.version.as_str()) {
        CacheControl(vec![
            CacheDirective::Public,
            CacheDirective::MaxAge(31_536_000),
            CacheDirective::Extension("immutable".into(), None),
        ])
    } else {
        CacheControl(vec![CacheDirective::NoCache])
    };
    Ok(HttpResponse::Ok()
        .insert_header(ContentType(asset.mime.parse().expect("valid mime")))
        .insert_header(cache)
        .body(asset.body))
}
