//! Oversized request heads are refused first, before they are logged, routed or looked up:
//! a 100 KB path used to reach the audit log whole. The limits follow Apache's defaults
//! (`LimitRequestLine` 8190, `LimitRequestFieldSize` 8190), which no page of ours comes near.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::client::ClientInfo;
use super::AppState;
use crate::audit::{Event, Outcome};

/// Longest request target (path and query), in bytes.
pub const MAX_TARGET: usize = 8 * 1024;
/// Longest single header (name and value), in bytes.
pub const MAX_HEADER: usize = 8 * 1024;
/// Most header bytes in all.
pub const MAX_HEADERS_TOTAL: usize = 32 * 1024;

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
        Some((414, "uri_too_long", "The address is too long."))
    } else if largest > MAX_HEADER || total > MAX_HEADERS_TOTAL {
        Some((
            431,
            "headers_too_large",
            "The request's headers are too large.",
        ))
    } else {
        None
    };
    let Some((status, code, message)) = refusal else {
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
