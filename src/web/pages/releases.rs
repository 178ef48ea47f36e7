//! Release pages: upload, details with files, pin/unpin/delete, comparison.

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use askama::Template;

use super::{render, see_other, PageCtx};
use crate::auth::{Identity, Role};
use crate::error::AppResult;
use crate::releases::archive::ManifestEntry;
use crate::releases::incoming::Incoming;
use crate::releases::ingest::IngestCtx;
use crate::releases::store::{self, Comparison};
use crate::releases::{manage, Release};
use crate::sites::{store as sites, Site};
use crate::web::access::wants_json;
use crate::web::api::releases::CompareQuery;
use crate::web::client::ClientInfo;
use crate::web::upload::{self, PendingCsrf};
use crate::web::AppState;

/// Receives an upload and turns it into a release (shared by the page and the API).
pub async fn receive_and_ingest(
    state: &AppState,
    who: &Identity,
    client: &ClientInfo,
    site_name: &str,
    body: upload::Body,
    pending: Option<PendingCsrf>,
    declared: Option<u64>,
) -> AppResult<Release> {
    let site = sites::get(&state.pool, site_name).await?;
    let uploads_dir = state.settings.data_dir.join("uploads");
    let ctx = IngestCtx {
        pool: &state.pool,
        sites_root: &state.settings.sites_root(),
        limits: &state.settings.uploads,
        actor: &who.actor(),
        source: &client.source,
    };
    let incoming = Incoming::new(&ctx, &site, &uploads_dir, declared, &state.streams);
    upload::receive(body, state.settings.uploads.max_bytes, pending, incoming).await
}

/// `POST /sites/{site}/releases`: on success, the new release's page (303), or for the
/// upload script (`Accept: application/json`) `{"id", "url"}` with 201. Errors become a page,
/// or JSON for the script (the access guard decides).
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
    let declared = upload::declared_length(&req);
    let release = receive_and_ingest(&state, &who, &client, &name, body, pending, declared).await?;
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
}

/// Files listed on the page (the API has them all).
const SHOWN_FILES: usize = 300;

/// `GET /sites/{site}/releases/{id}`.
pub async fn show(
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
    let page = ShowPage {
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

/// A change to one release, from a page or the API.
pub enum Change {
    /// Pin (true) or unpin (false).
    Pin(bool),
    /// Delete its files (the record stays).
    Delete,
}

/// Applies `change` to release `id` of site `name` (shared by the page and the API); returns
/// the site.
pub async fn change_release(
    state: &AppState,
    who: &Identity,
    client: &ClientInfo,
    name: &str,
    id: &str,
    change: Change,
) -> AppResult<Site> {
    let site = sites::get(&state.pool, name).await?;
    let (pool, actor, source) = (&state.pool, &who.actor(), &client.source);
    match change {
        Change::Pin(pinned) => manage::set_pinned(pool, &site, id, pinned, actor, source).await?,
        Change::Delete => {
            let root = state.settings.sites_root();
            manage::delete(pool, &root, &site, id, actor, source).await?
        }
    }
    Ok(site)
}

async fn pin_to(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    pinned: bool,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    change_release(&state, &who, &client, &name, &id, Change::Pin(pinned)).await?;
    let notice = if pinned { "pinned" } else { "unpinned" };
    Ok(see_other(&format!(
        "/sites/{name}/releases/{id}?notice={notice}"
    )))
}

/// `POST …/{id}/pin`.
pub async fn pin(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(who, client, path, state, true).await
}

/// `POST …/{id}/unpin`.
pub async fn unpin(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    pin_to(who, client, path, state, false).await
}

/// `POST …/{id}/delete`.
pub async fn delete(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    change_release(&state, &who, &client, &name, &id, Change::Delete).await?;
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
pub async fn compare(
    ctx: PageCtx,
    name: web::Path<String>,
    q: web::Query<CompareQuery>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let (from, to) = (
        store::get(&state.pool, site.id, &q.from).await?,
        store::get(&state.pool, site.id, &q.to).await?,
    );
    let diff = store::compare(
        &store::manifest(&state.pool, from.pk).await?,
        &store::manifest(&state.pool, to.pk).await?,
    );
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
