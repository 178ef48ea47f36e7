//! `/api/v1/sites/{site}/releases`.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Identity;
use crate::error::AppResult;
use crate::releases::store;
use crate::sites::store as sites;
use crate::web::client::ClientInfo;
use crate::web::pages::releases::{change_release, receive_and_ingest, Change};
use crate::web::upload::PendingCsrf;
use crate::web::AppState;

/// Query of the release list.
#[derive(Deserialize)]
pub struct Page {
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/sites/{site}/releases`: newest first.
pub async fn list(
    name: web::Path<String>,
    q: web::Query<Page>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let releases = store::list(
        &state.pool,
        site.id,
        q.before,
        q.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await?;
    Ok(HttpResponse::Ok().json(releases))
}

/// `GET /api/v1/sites/{site}/releases/{id}`: the release and its files.
pub async fn show(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = sites::get(&state.pool, &name).await?;
    let release = store::get(&state.pool, site.id, &id).await?;
    let files = store::manifest(&state.pool, release.pk).await?;
    let files: Vec<_> = files
        .into_iter()
        .map(|f| json!({"path": f.path, "size": f.size, "sha256": f.sha256}))
        .collect();
    let mut body = serde_json::to_value(&release).map_err(anyhow::Error::from)?;
    body["manifest"] = json!(files);
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /api/v1/sites/{site}/releases` (multipart: `archive`, optional `note`).
pub async fn upload(
    req: HttpRequest,
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let body = crate::web::upload::capped(&req, payload, state.settings.uploads.max_bytes);
    let pending = req.extensions().get::<PendingCsrf>().cloned();
    let declared = crate::web::upload::declared_length(&req);
    let release = receive_and_ingest(&state, &who, &client, &name, body, pending, declared).await?;
    Ok(HttpResponse::Created().json(release))
}

async fn pin_to(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
    pinned: bool,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = change_release(&state, &who, &client, &name, &id, Change::Pin(pinned)).await?;
    Ok(HttpResponse::Ok().json(store::get(&state.pool, site.id, &id).await?))
}

/// `POST …/{id}/pin`.
pub async fn pin(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(path, who, client, state, true).await
}

/// `POST …/{id}/unpin`.
pub async fn unpin(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(path, who, client, state, false).await
}

/// `DELETE …/{id}`.
pub async fn delete(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = change_release(&state, &who, &client, &name, &id, Change::Delete).await?;
    Ok(HttpResponse::Ok().json(store::get(&state.pool, site.id, &id).await?))
}

/// Query of a comparison.
#[derive(Deserialize)]
pub struct CompareQuery {
    /// The older release.
    pub from: String,
    /// The newer release.
    pub to: String,
}

/// `GET /api/v1/sites/{site}/compare?from=&to=`.
pub async fn compare(
    name: web::Path<String>,
    q: web::Query<CompareQuery>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let (a, b) = (
        store::get(&state.pool, site.id, &q.from).await?,
        store::get(&state.pool, site.id, &q.to).await?,
    );
    let diff = store::compare(
        &store::manifest(&state.pool, a.pk).await?,
        &store::manifest(&state.pool, b.pk).await?,
    );
    Ok(HttpResponse::Ok().json(json!({"from": a.id, "to": b.id, "added": diff.added, "removed": diff.removed, "changed": diff.changed, "unchanged": diff.unchanged})))
}
