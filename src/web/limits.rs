//! Oversized request heads are refused first, before they are logged, routed or looked up:
//! a 100 KB path used to reach the audit log whole. The limits follow Apache's defaults
//! (`LimitRequestLine` 8190, `LimitRequestFieldSize` 8190), which no page of ours comes near.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use serde_json::json;

use super::client::ClientInfo;
use super::AppState;
use crate::audit::{Event, Outcome};
use crate::error::code;

/// Longest request target (path and query), in bytes.
pub const MAX_TARGET: usize = 8 * 1024;
/// Longest single header (name and value), in bytes.
pub const MAX_HEADER: usize = 8 * 1024;
/// Most header bytes in all.
pub const MAX_HEADERS_TOTAL: usize = 32 * 1024;
/// Time to send a whole body, uploads aside (they have their own stall limit): forms are at
/// most 64 KiB and API bodies small, so a client that trickles is holding a connection open.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// The middleware, outermost.
pub async fn head_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let sizes = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4);
    let (largest, total) = sizes.fold((0, 0), |(m, t), s| (m.max(s), t + s));
    let refusal = if target > MAX_TARGET {
        Some((414, code::URI_TOO_LONG, "The address is too long."))
    } else if largest > MAX_HEADER || total > MAX_HEADERS_TOTAL {
        Some((
            431,
            code::HEADERS_TOO_LARGE,
            "The request's headers are too large.",
        ))
    } else {
        None
    };
    let Some((status, code, message)) = refusal else {
        let mut req = req;
        let multipart = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !multipart {
            let payload = req.take_payload();
            req.set_payload(with_deadline(payload, BODY_DEADLINE));
        }
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let client = ClientInfo::of(&req, &state.settings.trusted_proxies);
        let event = Event::new("anonymous", "request_refused", Outcome::Denied)
            .source(&client.source)
            .detail(json!({
                "reason": code,
                "method": req.method().as_str(),
                "path": crate::audit::caps::cut(req.path(), 256),
                "target_bytes": target,
                "header_bytes": total,
            }));
        if let Err(e) = state.auth.refusals.record(&state.pool, event).await {
            tracing::warn!(error = ?e, "could not record a refused request");
        }
    }
    let mut res =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("valid"))
            .force_close()
            .json(json!({"error": {"code": code, "message": message}}));
    super::headers::apply(res.headers_mut(), false);
    Ok(req.into_response(res))
}

/// `payload`, ending with a time-out error once `within` has passed since the request came.
fn with_deadline(payload: Payload, within: Duration) -> Payload {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + within;
    let stream = futures_util::stream::unfold(Some(payload), move |p| async move {
        let mut p = p?;
        match tokio::time::timeout_at(deadline, p.next()).await {
            Ok(Some(item)) => Some((item, Some(p))),
            Ok(None) => None,
            Err(_) => {
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "the body took too long");
                Some((Err(PayloadError::Io(e)), None))
            }
        }
    });
    Payload::Stream {
        payload: Box::pin(stream),
    }
}

/// Whether a body read failed because it took longer than [`BODY_DEADLINE`].
pub fn is_body_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}
