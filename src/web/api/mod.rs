//! The JSON API under `/api/v1` (contract: ../shared/docs/CONTRACT.md), and `/healthz`.

pub mod golive;
pub mod hosts;
pub mod releases;
pub mod sites;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::audit::query::{self, Filter};
use crate::auth::{Identity, Via};
use crate::error::AppResult;
use crate::web::AppState;

/// `GET /healthz`: the console answers, its database is reachable; and how Apache is.
#[tracing::instrument(skip_all)]
pub(crate) async fn healthz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    crate::db::ping(&state.pool).await?;
    let apache = state.golive.apache.status().await;
    Ok(HttpResponse::Ok().json(json!({"status": "ok", "apache": apache})))
}

/// `GET /api/v1/me`: who the token belongs to.
#[tracing::instrument(skip_all)]
pub(crate) async fn me(who: Identity) -> HttpResponse {
    let token = match &who.via {
        Via::Token { label, .. } => Some(label.clone()),
        Via::Session { .. } => None,
    };
    HttpResponse::Ok().json(json!({"name": who.name, "role": who.role, "token_label": token}))
}

/// `GET /api/v1/audit`.
#[tracing::instrument(skip_all)]
pub(crate) async fn audit(
    filter: web::Query<Filter>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let page = query::list(&state.pool, &filter).await?;
    Ok(HttpResponse::Ok().json(page))
}
