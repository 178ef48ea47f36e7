//! Release pages: upload, details with files, pin/unpin/delete, comparison.

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::{Identity, Role};
use crate::error::AppResult;
use crate::releases::archive::ManifestEntry;
use crate::releases::manage::{self, Change};
use crate::releases::store::{self, Comparison};
use crate::releases::Release;
use crate::sites::{store as sites, Site};
use crate::web::client::ClientInfo;
use crate::web::layout::{render, see_other, PageCtx};
use crate::web::request::{wants_json, CompareQuery};
use crate::web::upload::{receive_and_ingest, PendingCsrf};
use crate::web::AppState;

/// `POST /sites/{site}/releases`: on success, the new release's page (303), or for the
/// upload script (`Accept: application/json`) `{"id", "url"}` with 201. Errors become a page,
/// or JSON for the script (the access guard decides).
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
    let url = format!("/sites/{name}/releases/{}?notice=uploaded", release.id);
    if wants_json(req.headers()) {
        return Ok(HttpResponse::Created().json(serde_json::json!({"id": release.id, "url": url})));
    }
    Ok(see_other(&url))
}

#[derive(Template)]
#[template(path = "releases/show.html")]
struct ShowPage {
    ctx: PageCtx,
    site: Site,
    release: Release,
    files: Vec<ManifestEntry>,
    more_files: usize,
    others: Vec<Release>,
    can_pin: bool,
    can_delete: bool,
    can_operate: bool,
    step_runs: Vec<crate::steps::store::StepRun>,
    /// A site on several hosts: how far this release is on each.
    stagings: Vec<crate::hosts::store::Staging>,
    /// A host is still copying it.
    copying: bool,
}

/// Files listed on the page (the API has them all).
const SHOWN_FILES: usize = 300;

/// `GET /sites/{site}/releases/{id}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    ctx: PageCtx,
    who: Identity,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = sites::get(&state.pool, &name).await?;
    let release = store::get(&state.pool, site.id, &id).await?;
    let mut files = store::manifest(&state.pool, release.pk).await?;
    let more_files = files.len().saturating_sub(SHOWN_FILES);
    files.truncate(SHOWN_FILES);
    let others = store::list(&state.pool, site.id, None, 50)
        .await?
        .into_iter()
        .filter(|r| r.id != release.id && r.usable())
        .collect();
    let step_runs = crate::steps::store::for_release(&state.pool, site.id, &release.id).await?;
    let stagings = crate::hosts::store::stagings(&state.pool, site.id, &release.id).await?;
    let page = ShowPage {
        copying: stagings.iter().any(|s| s.state == "staging"),
        stagings,
        step_runs,
        ctx,
        site,
        release,
        files,
        more_files,
        others,
        can_pin: who.role >= Role::Deployer,
        can_delete: who.role >= Role::Admin,
        can_operate: who.role >= Role::Operator,
    };
    render(StatusCode::OK, &page)
}

async fn pin_to(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    pinned: bool,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    state
        .change_release(&who, &client, (&name, &id), Change::Pin(pinned))
        .await?;
    let notice = if pinned { "pinned" } else { "unpinned" };
    Ok(see_other(&format!(
        "/sites/{name}/releases/{id}?notice={notice}"
    )))
}

/// `POST …/{id}/pin`.
#[tracing::instrument(skip_all)]
pub(crate) async fn pin(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(who, client, path, state, true).await
}

/// `POST …/{id}/unpin`.
#[tracing::instrument(skip_all)]
pub(crate) async fn unpin(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(who, client, path, state, false).await
}

/// `POST …/{id}/delete`.
#[tracing::instrument(skip_all)]
pub(crate) async fn delete(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    state
        .change_release(&who, &client, (&name, &id), Change::Delete)
        .await?;
    Ok(see_other(&format!("/sites/{name}?notice=release-deleted")))
}

#[derive(Template)]
#[template(path = "releases/compare.html")]
struct ComparePage {
    ctx: PageCtx,
    site: Site,
    from: Release,
    to: Release,
    diff: Comparison,
}

/// `GET /sites/{site}/compare?from=&to=`.
#[tracing::instrument(skip_all)]
pub(crate) async fn compare(
    ctx: PageCtx,
    name: web::Path<String>,
    q: web::Query<CompareQuery>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let (from, to, diff) = manage::compare(&state.pool, site.id, &q.from, &q.to).await?;
    render(
        StatusCode::OK,
        &ComparePage {
            ctx,
            site,
            from,
            to,
            diff,
        },
    )
}
