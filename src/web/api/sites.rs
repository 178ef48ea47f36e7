//! `/api/v1/sites`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::Identity;
use crate::error::{AppError, AppResult};
use crate::sites::{self, store, SettingsInput};
use crate::web::client::ClientInfo;
use crate::web::AppState;

/// `GET /api/v1/sites`.
#[tracing::instrument(skip_all)]
pub(crate) async fn list(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(store::list(&state.pool).await?))
}

/// `GET /api/v1/sites/{site}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(store::get(&state.pool, &name).await?))
}

/// Body of `POST /api/v1/sites`.
#[derive(Deserialize)]
pub(crate) struct NewSite {
    name: String,
    #[serde(flatten)]
    settings: SettingsInput,
}

/// `POST /api/v1/sites`.
#[tracing::instrument(skip_all)]
pub(crate) async fn create(
    who: Identity,
    client: ClientInfo,
    body: web::Json<NewSite>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let NewSite { name, settings } = body.into_inner();
    let name = sites::parse_name(&name)?;
    let settings = settings.validate()?;
    let site = store::create(
        &state.pool,
        &state.settings.sites_root(),
        &who.actor(),
        &client.source,
        &name,
        &settings,
    )
    .await?;
    // System mode: a name another VirtualHost already serves is warned about, not refused.
    let warnings = state
        .golive
        .apache
        .check_names(&site.name, &site.settings.names())
        .await;
    let mut answer = serde_json::to_value(&site).map_err(|e| AppError::Internal(e.into()))?;
    answer["warnings"] = serde_json::json!(warnings);
    Ok(HttpResponse::Created().json(answer))
}

/// `GET /api/v1/sites/{site}/timeline`: every live period, newest first.
#[tracing::instrument(skip_all)]
pub(crate) async fn timeline(
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    Ok(HttpResponse::Ok()
        .json(crate::golive::timeline::timeline(&state.pool, site.id, &site.name).await?))
}
