//! `/api/v1/sites/{site}/releases`.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Identity;
use crate::error::AppResult;
use crate::releases::manage::{self, Change};
use crate::releases::store;
use crate::sites::store as sites;
use crate::web::client::ClientInfo;
use crate::web::request::CompareQuery;
use crate::web::upload::receive_and_ingest;
use crate::web::upload::PendingCsrf;
use crate::web::AppState;

/// Query of the release list.
#[derive(Deserialize)]
pub struct Page {
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/sites/{site}/releases`: newest first.
#[tracing::instrument(skip_all)]
pub(crate) async fn list(
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

/// Query of one release.
#[derive(Deserialize)]
pub struct Show {
    /// `false`: leave out the list of files (a script polling the staging state of a
    /// 20,000-file release need not fetch 2 MB each time).
    manifest: Option<bool>,
}

/// `GET /api/v1/sites/{site}/releases/{id}`: the release and its files.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    who: Identity,
    path: web::Path<(String, String)>,
    q: web::Query<Show>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = sites::get(&state.pool, &name).await?;
    let release = store::get(&state.pool, site.id, &id).await?;
    let mut body = serde_json::to_value(&release).map_err(anyhow::Error::from)?;
    if q.manifest != Some(false) {
        let files = store::manifest(&state.pool, release.pk).await?;
        let files: Vec<_> = files
            .into_iter()
            .map(|f| json!({"path": f.path, "size": f.size, "sha256": f.sha256}))
            .collect();
        body["manifest"] = json!(files);
    }
    // The site's steps for this release; their output only for those who may switch.
    let runs = crate::steps::store::for_release(&state.pool, site.id, &release.id).await?;
    let operator = who.role >= crate::auth::Role::Operator;
    let runs: Vec<_> = runs
        .into_iter()
        .map(|r| {
            let mut v = json!({"stage": r.stage, "command": serde_json::from_str::<serde_json::Value>(&r.command).unwrap_or_default(),
                "outcome": r.outcome, "exit": r.exit_code, "summary": r.summary, "ms": r.ms, "run_as": r.run_as,
                "started_at": r.started_at, "by": r.actor, "output_bytes": r.output_bytes});
            if operator {
                v["output"] = json!(r.output);
            }
            v
        })
        .collect();
    body["steps"] = json!(runs);
    // A site on several hosts: how far this release is on each.
    body["hosts"] = json!(crate::hosts::store::stagings(&state.pool, site.id, &release.id).await?);
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /api/v1/sites/{site}/releases` (multipart: `archive`, optional `note`).
#[tracing::instrument(skip_all)]
pub(crate) async fn upload(
    req: HttpRequest,
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let body = crate::web::upload::capped(&req, payload, state.settings.uploads.max_bytes);
    let pending = req.extensions().get::<PendingCsrf>().cloned();
    let release = receive_and_ingest(&state, &who, &client, &name, body, pending).await?;
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
    let site = state
        .change_release(&who, &client, (&name, &id), Change::Pin(pinned))
        .await?;
    Ok(HttpResponse::Ok().json(store::get(&state.pool, site.id, &id).await?))
}

/// `POST …/{id}/pin`.
#[tracing::instrument(skip_all)]
pub(crate) async fn pin(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(path, who, client, state, true).await
}

/// `POST …/{id}/unpin`.
#[tracing::instrument(skip_all)]
pub(crate) async fn unpin(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(path, who, client, state, false).await
}

/// `DELETE …/{id}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn delete(
    path: web::Path<(String, String)>,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = state
        .change_release(&who, &client, (&name, &id), Change::Delete)
        .await?;
    Ok(HttpResponse::Ok().json(store::get(&state.pool, site.id, &id).await?))
}

/// `GET /api/v1/sites/{site}/compare?from=&to=`.
#[tracing::instrument(skip_all)]
pub(crate) async fn compare(
    name: web::Path<String>,
    q: web::Query<CompareQuery>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let (a, b, diff) = manage::compare(&state.pool, site.id, &q.from, &q.to).await?;
    Ok(HttpResponse::Ok().json(json!({"from": a.id, "to": b.id, "added": diff.added, "removed": diff.removed, "changed": diff.changed, "unchanged": diff.unchanged})))
}
