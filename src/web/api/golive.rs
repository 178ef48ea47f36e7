//! `POST …/activate`, `POST …/rollback`, and the vhost / configtest endpoints.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Identity;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::golive::{Kind, Report};
use crate::web::client::ClientInfo;
use crate::web::AppState;

/// 200 with the report, or 422 with an error object and the report beside it.
pub(crate) fn report_response(report: &Report) -> HttpResponse {
    let mut body = serde_json::to_value(report).unwrap_or_default();
    if report.ok {
        return HttpResponse::Ok().json(body);
    }
    body["error"] =
        json!({"code": report.code.unwrap_or(code::SWITCH_FAILED), "message": report.message});
    HttpResponse::build(StatusCode::UNPROCESSABLE_ENTITY).json(body)
}

/// `POST /api/v1/sites/{site}/releases/{id}/activate`.
#[tracing::instrument(skip_all)]
pub(crate) async fn activate(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (site, id) = path.into_inner();
    let report = state
        .golive
        .activate(&site, &id, Kind::Activate, &who.actor(), &client.source)
        .await?;
    Ok(report_response(&report))
}

/// Optional body of a rollback.
#[derive(Deserialize, Default)]
pub(crate) struct RollbackBody {
    /// A ready release to go back to; default: the one live before the current one.
    pub to: Option<String>,
}

/// `POST /api/v1/sites/{site}/rollback` (body optional).
#[tracing::instrument(skip_all)]
pub(crate) async fn rollback(
    site: web::Path<String>,
    body: web::Bytes,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let body: RollbackBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            crate::error::AppError::invalid(
                code::BAD_JSON,
                format!("The body is not valid JSON like {{\"to\": \"<release id>\"}}: {e}"),
            )
        })?
    };
    let report = state
        .golive
        .rollback(
            &site,
            body.to.as_deref(),
            crate::golive::Expect::Anything,
            &who.actor(),
            &client.source,
        )
        .await?;
    Ok(report_response(&report))
}

/// `GET /api/v1/sites/{site}/vhost`: the generated configuration on disk.
#[tracing::instrument(skip_all)]
pub(crate) async fn vhost(
    site: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = crate::sites::store::get(&state.pool, &site).await?;
    let path = state
        .golive
        .apache
        .vhost_path(&site.name)
        .map_err(|m| AppError::Conflict {
            code: code::APACHE_UNAVAILABLE,
            message: m,
        })?;
    let content = std::fs::read_to_string(&path).ok();
    Ok(HttpResponse::Ok().json(json!({"site": site.name, "path": path, "config": content})))
}

/// `POST /api/v1/sites/{site}/configtest`: Apache's own words on the whole configuration.
#[tracing::instrument(skip_all)]
pub(crate) async fn configtest(
    site: web::Path<String>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = crate::sites::store::get(&state.pool, &site).await?;
    let out = state
        .golive
        .check_config(&site.name, &who.actor(), &client.source)
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"ok": out.ok, "output": out.output, "ms": out.duration.as_millis() as u64})))
}
