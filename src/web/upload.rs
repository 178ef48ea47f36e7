//! Receiving an upload: the multipart body is streamed (never held in memory) to the release
//! intake while its SHA-256 is computed and the size limit enforced.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use actix_multipart::Multipart;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::auth::secret::same_secret;
use crate::auth::Identity;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::releases::human_bytes;
use crate::releases::incoming::{Arrived, Incoming};
use crate::releases::ingest::IngestCtx;
use crate::releases::Release;
use crate::sites::store as sites;
use crate::web::client::ClientInfo;
use crate::web::AppState;

/// How long an upload may send nothing before it is given up.
const STALLED: std::time::Duration = std::time::Duration::from_secs(120);

/// Room in an upload's body for everything but the archive: the CSRF token, the note, the
/// parts' headers and boundaries.
const FORM_OVERHEAD: u64 = 1 << 20;
/// Most bytes read while looking for a part's headers: actix-multipart buffers a header
/// block until its blank line, without a limit of its own.
const MAX_PART_HEAD: u64 = 1 << 20;

/// An upload's body, metered before multipart parsing sees it.
pub struct Body {
    multipart: Multipart,
    meter: Arc<Meter>,
}

#[derive(Default)]
struct Meter {
    total: AtomicU64,
    /// `total` when the receiver began waiting for the next part; `u64::MAX` while in a part.
    waiting_from: AtomicU64,
    /// 1: the body outgrew the upload limit; 2: a header block outgrew [`MAX_PART_HEAD`].
    overflow: AtomicU8,
}

/// Wraps the request's payload so that the whole body is cut off past the upload limit (plus
/// [`FORM_OVERHEAD`]) and a part's header block past [`MAX_PART_HEAD`], before multipart
/// parsing buffers any of it.
pub fn capped(
    req: &actix_web::HttpRequest,
    payload: actix_web::web::Payload,
    max_bytes: u64,
) -> Body {
    let meter = Arc::new(Meter {
        waiting_from: AtomicU64::new(0),
        ..Default::default()
    });
    let m = meter.clone();
    let limit = max_bytes.saturating_add(FORM_OVERHEAD);
    let stream = payload.map(move |item| {
        let chunk = item?;
        let total = m.total.fetch_add(chunk.len() as u64, Ordering::AcqRel) + chunk.len() as u64;
        let from = m.waiting_from.load(Ordering::Acquire);
        let why = if total > limit {
            1
        } else if from != u64::MAX && total - from > MAX_PART_HEAD {
            2
        } else {
            return Ok(chunk);
        };
        m.overflow.store(why, Ordering::Release);
        Err(actix_web::error::PayloadError::Overflow)
    });
    Body {
        multipart: Multipart::new(req.headers(), stream),
        meter,
    }
}

impl Body {
    /// The next part, the meter told that its headers are being read.
    async fn next_field(&mut self) -> AppResult<Option<Result<actix_multipart::Field, String>>> {
        let m = &self.meter;
        m.waiting_from
            .store(m.total.load(Ordering::Acquire), Ordering::Release);
        let next = in_time(&mut self.multipart).await?;
        m.waiting_from.store(u64::MAX, Ordering::Release);
        Ok(next.map(|r| r.map_err(|e| e.to_string())))
    }

    /// The refusal for a metered overflow, if that is why reading failed.
    fn overflow(&self, max_bytes: u64) -> Option<AppError> {
        match self.meter.overflow.load(Ordering::Acquire) {
            1 => Some(too_large(max_bytes)),
            2 => Some(bad("A part of the upload has a header block larger than 1 MiB. Upload from Cutover's own page or its API.")),
            _ => None,
        }
    }
}

fn too_large(max_bytes: u64) -> AppError {
    AppError::TooLarge {
        code: code::TOO_LARGE,
        message: format!("The archive is larger than the limit of {}. Make it smaller (leave out files the site does not need) or ask an admin to raise the limit.", human_bytes(max_bytes)),
    }
}

/// Set by the access guard on a multipart request whose CSRF token travels in the body: the
/// receiver must find it as the first field before reading anything else.
#[derive(Clone)]
pub struct PendingCsrf(pub String);

fn bad(message: impl Into<String>) -> AppError {
    AppError::invalid(code::BAD_UPLOAD, message)
}

fn csrf_failed() -> AppError {
    AppError::Forbidden {
        code: code::CSRF_FAILED,
        message: "This form has expired or did not come from this console. Reload the page and try again.".into(),
    }
}

/// The next item of the body or a field, unless nothing arrives for [`STALLED`]: a client
/// that stops sending would otherwise hold its upload (and its extraction) open for ever.
async fn in_time<S: futures_util::Stream + Unpin>(s: &mut S) -> AppResult<Option<S::Item>> {
    tokio::time::timeout(STALLED, s.next()).await.map_err(|_| {
        bad("The upload stalled: nothing arrived for two minutes. Check the connection and upload again.")
    })
}

/// Reads past a field the form does not have (at most 64 KiB of it).
async fn skip(field: &mut actix_multipart::Field) -> AppResult<()> {
    let mut seen = 0;
    while let Some(chunk) = in_time(field).await? {
        let chunk = chunk.map_err(|e| bad(format!("The upload could not be read: {e}")))?;
        seen += chunk.len();
        if seen > 64 * 1024 {
            return Err(bad(
                "The form has an unexpected field. Upload from Cutover's own page or its API.",
            ));
        }
    }
    Ok(())
}

async fn read_text(field: &mut actix_multipart::Field, max: usize) -> AppResult<String> {
    let mut buf = Vec::new();
    while let Some(chunk) = in_time(field).await? {
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

/// Reads fields `csrf_token` (when pending), `note` and `archive` from the body, feeding the
/// archive to `incoming` as it arrives, and returns the release it became.
pub async fn receive(
    mut body: Body,
    max_bytes: u64,
    pending: Option<PendingCsrf>,
    (mut incoming, begun): (Incoming, impl std::future::Future<Output = ()>),
) -> AppResult<Release> {
    let mut begun = Some(begun);
    let mut note = String::new();
    let mut arrived: Option<Arrived> = None;
    let mut first = true;
    loop {
        let mut field = match body.next_field().await {
            Ok(None) => break,
            Ok(Some(Ok(field))) => field,
            Ok(Some(Err(e))) => {
                let why = body
                    .overflow(max_bytes)
                    .unwrap_or_else(|| bad(format!("The upload could not be read: {e}")));
                return Err(incoming.abort(why, "").await);
            }
            Err(why) => return Err(incoming.abort(why, "").await),
        };
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
            "note" => match read_text(&mut field, 2000).await {
                Ok(text) => note = text.trim().to_owned(),
                Err(why) => return Err(incoming.abort(why, "").await),
            },
            "archive" if arrived.is_none() => {
                // The CSRF token (if one is due) has been checked by now.
                if let Some(begun) = begun.take() {
                    begun.await;
                }
                let original_name = field
                    .content_disposition()
                    .and_then(|d| d.get_filename())
                    .map(display_name)
                    .unwrap_or_default();
                let streamed = stream_archive(&mut field, max_bytes, &mut incoming).await;
                let streamed = streamed.map_err(|e| body.overflow(max_bytes).unwrap_or(e));
                match streamed {
                    Ok((sha256, bytes)) => {
                        // Whole: the extraction can finish while the rest of the form arrives.
                        incoming.end_of_archive().await;
                        arrived = Some(Arrived {
                            sha256,
                            bytes,
                            original_name,
                            note: String::new(),
                        })
                    }
                    Err(why) => return Err(incoming.abort(why, &original_name).await),
                }
            }
            _ => {
                if let Err(why) = skip(&mut field).await {
                    let why = body.overflow(max_bytes).unwrap_or(why);
                    return Err(incoming.abort(why, "").await);
                }
            }
        }
    }
    let mut arrived = arrived.ok_or_else(|| {
        bad("No archive was sent. Choose a .tar.gz, .tar.zst, .tar or .zip file and upload again.")
    })?;
    arrived.note = note
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    incoming.finish(arrived).await
}

/// Feeds the archive field to `incoming`, hashing it and enforcing the size limit on the way;
/// returns its SHA-256 and size.
async fn stream_archive(
    field: &mut actix_multipart::Field,
    max_bytes: u64,
    incoming: &mut Incoming,
) -> AppResult<(String, u64)> {
    let (mut hasher, mut bytes) = (Sha256::new(), 0u64);
    while let Some(chunk) = in_time(field).await? {
        let chunk = chunk.map_err(|e| {
            bad(format!(
                "The upload was interrupted before it finished ({e}). Try again."
            ))
        })?;
        bytes += chunk.len() as u64;
        if bytes > max_bytes {
            return Err(too_large(max_bytes));
        }
        hasher.update(&chunk);
        incoming.push(chunk).await?;
        if bytes > 1 << 20 {
            crate::fault_point!("upload_streaming");
        }
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Receives an upload and turns it into a release (shared by the page and the API).
pub(crate) async fn receive_and_ingest(
    state: &AppState,
    who: &Identity,
    client: &ClientInfo,
    site_name: &str,
    body: Body,
    pending: Option<PendingCsrf>,
) -> AppResult<Release> {
    let site = sites::get(&state.pool, site_name).await?;
    let uploads_dir = state.settings.data_dir.join("uploads");
    let ctx = IngestCtx {
        pool: &state.pool,
        sites_root: &state.settings.sites_root(),
        limits: &state.settings.uploads,
        actor: &who.actor(),
        source: &client.source,
        steps: &state.golive.steps,
    };
    let incoming = Incoming::new(&ctx, &site, &uploads_dir, &state.streams);
    // Its hosts' connections opened while the archive arrives (see `Ssh::warm`).
    let warm = state.golive.warm_hosts(site.id);
    let max = state.settings.uploads.max_bytes;
    let release = receive(body, max, pending, (incoming, warm)).await?;
    if release.usable() {
        // A site on several hosts: the new release is copied to each in the background (the
        // release page shows how far), and what retention deleted goes from them too.
        let (golive, site, id) = (state.golive.clone(), site.name.clone(), release.id.clone());
        actix_web::rt::spawn(async move {
            if let Err(e) = golive.stage_everywhere(&site, &id).await {
                tracing::error!(error = ?e, %site, release = %id, "staging on the hosts failed");
            }
            let _ = golive.prune_hosts(&site).await;
        });
    }
    Ok(release)
}
