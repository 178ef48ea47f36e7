//! Receiving an upload: the multipart body is streamed to a temporary file in the data folder
//! (never held in memory) while its SHA-256 is computed and the size limit enforced.

use std::path::Path;

use actix_multipart::Multipart;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::auth::secret::same_secret;
use crate::error::{AppError, AppResult};
use crate::releases::human_bytes;
use crate::releases::ingest::Received;

/// Set by the access guard on a multipart request whose CSRF token travels in the body: the
/// receiver must find it as the first field before reading anything else.
#[derive(Clone)]
pub struct PendingCsrf(pub String);

fn bad(message: impl Into<String>) -> AppError {
    AppError::invalid("bad_upload", message)
}

fn csrf_failed() -> AppError {
    AppError::Forbidden {
        code: "csrf_failed",
        message: "This form has expired or did not come from this console. Reload the page and try again.".into(),
    }
}

async fn read_text(field: &mut actix_multipart::Field, max: usize) -> AppResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| bad(format!("The upload was interrupted: {e}")))?;
        if buf.len() + chunk.len() > max {
            return Err(bad(format!(
                "A form field is longer than {max} characters."
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| bad("A form field is not valid text."))
}

/// A display-only file name: its last part, no control characters, at most 200 characters.
fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    last.chars()
        .filter(|c| !c.is_control() && *c != '\u{2028}' && *c != '\u{2029}')
        .take(200)
        .collect()
}

/// Reads fields `csrf_token` (when pending), `note` and `archive` from the body.
pub async fn receive(
    mut body: Multipart,
    uploads_dir: &Path,
    max_bytes: u64,
    pending: Option<PendingCsrf>,
) -> AppResult<Received> {
    tokio::fs::create_dir_all(uploads_dir).await.map_err(|e| {
        AppError::Internal(anyhow::anyhow!("creating {}: {e}", uploads_dir.display()))
    })?;
    let mut note = String::new();
    let mut received: Option<Received> = None;
    let mut first = true;
    while let Some(field) = body.next().await {
        let mut field = field.map_err(|e| bad(format!("The upload could not be read: {e}")))?;
        let name = field.name().unwrap_or("").to_owned();
        if std::mem::take(&mut first) {
            if let Some(PendingCsrf(expected)) = &pending {
                if name != crate::auth::csrf::FIELD
                    || !same_secret(expected, &read_text(&mut field, 256).await?)
                {
                    return Err(csrf_failed());
                }
                continue;
            }
        }
        match name.as_str() {
            "note" => note = read_text(&mut field, 2000).await?.trim().to_owned(),
            "archive" if received.is_none() => {
                let original = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .map(display_name)
                    .unwrap_or_default();
                received =
                    Some(stream_to_file(&mut field, uploads_dir, max_bytes, original).await?);
            }
            _ => while field.next().await.is_some() {},
        }
    }
    let mut received = received.ok_or_else(|| {
        bad("No archive was sent. Choose a .tar.gz, .tar.zst, .tar or .zip file and upload again.")
    })?;
    received.note = note
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    Ok(received)
}

async fn stream_to_file(
    field: &mut actix_multipart::Field,
    dir: &Path,
    max_bytes: u64,
    original_name: String,
) -> AppResult<Received> {
    let path = dir.join(format!("{}.part", uuid::Uuid::new_v4()));
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("creating {}: {e}", path.display())))?;
    // From here on, dropping `received` removes the file, whatever happens.
    let mut received = Received {
        path,
        sha256: String::new(),
        bytes: 0,
        original_name,
        note: String::new(),
    };
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut hasher = Sha256::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| {
            bad(format!(
                "The upload was interrupted before it finished ({e}). Try again."
            ))
        })?;
        received.bytes += chunk.len() as u64;
        if received.bytes > max_bytes {
            return Err(AppError::invalid(
                "too_large",
                format!("The archive is larger than the limit of {}. Make it smaller (leave out files the site does not need) or ask an admin to raise the limit.", human_bytes(max_bytes)),
            ));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(|e| disk_error(&e))?;
        if received.bytes > 1 << 20 {
            crate::fault::point("upload_streaming");
        }
    }
    out.flush().await.map_err(|e| disk_error(&e))?;
    received.sha256 = hex::encode(hasher.finalize());
    Ok(received)
}

fn disk_error(e: &std::io::Error) -> AppError {
    if e.raw_os_error() == Some(28) {
        AppError::invalid("disk_full", "The server's disk is full, so the upload could not be stored. Ask an administrator to free some space, then try again.")
    } else {
        AppError::Internal(anyhow::anyhow!("writing the upload: {e}"))
    }
}
