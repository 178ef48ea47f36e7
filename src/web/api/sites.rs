//! `/api/v1/sites`.

use actix_web::{web, HttpResponse};
use serde_json::{Map, Value};

use crate::auth::Identity;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::sites::{self, store, SitePaths};
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

/// A JSON body that must be an object (every site body is).
fn object(body: &[u8]) -> AppResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(AppError::invalid(
            code::BAD_JSON,
            "The body must be a JSON object, like {\"server_name\": \"www.example.org\"}.",
        )),
        Err(e) => Err(AppError::invalid(
            code::BAD_JSON,
            format!("The body is not valid JSON: {e}."),
        )),
    }
}

/// `POST /api/v1/sites`: `name` and the settings; unknown fields are refused, naming them.
#[tracing::instrument(skip_all)]
pub(crate) async fn create(
    who: Identity,
    client: ClientInfo,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let mut body = object(&body)?;
    let name = match body.remove("name") {
        Some(Value::String(n)) => n,
        _ => {
            let m = "name: give the site a short name (lower-case letters, digits, hyphens) as a string.";
            return Err(AppError::invalid(code::INVALID_SITE_NAME, m));
        }
    };
    let name = sites::parse_name(&name)?;
    let input = sites::from_json(body)?;
    let settings = input.validate(&SitePaths::new(&state.settings.sites_root(), &name).dir)?;
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

/// `PATCH /api/v1/sites/{site}`: changes the fields named; on a live site through the checked
/// switch (a refusal or failed check changes nothing: 422 naming the field and the reason).
#[tracing::instrument(skip_all)]
pub(crate) async fn update(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    let patch = object(&body)?;
    if patch.contains_key("name") {
        let m = "name: a site's name cannot be changed (it names its folders); create a new site instead.";
        return Err(AppError::invalid(code::INVALID_SITE_NAME, m));
    }
    let merged = sites::merge_patch(&site.settings, patch)?;
    let paths = SitePaths::new(&state.settings.sites_root(), &site.name);
    let settings = sites::from_json(merged)?.validate(&paths.dir)?;
    let names_before = site.settings.names();
    let site = state
        .golive
        .change_settings(&site.name, settings, &who.actor(), &client.source)
        .await?;
    // System mode: new names another VirtualHost already serves are warned about.
    let warnings = match site.settings.names() == names_before {
        true => Vec::new(),
        false => {
            state
                .golive
                .apache
                .check_names(&site.name, &site.settings.names())
                .await
        }
    };
    let mut answer = serde_json::to_value(&site).map_err(|e| AppError::Internal(e.into()))?;
    answer["warnings"] = serde_json::json!(warnings);
    Ok(HttpResponse::Ok().json(answer))
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
