//! Site pages: the list, the dashboard with history and upload, creating and editing sites.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::site_form::SiteForm;
use crate::auth::{Identity, Role};
use crate::db::activations::{self, Activation};
use crate::error::{AppError, AppResult};
use crate::releases::{store as releases, Release};
use crate::sites::{self, store, Site};
use crate::web::client::ClientInfo;
use crate::web::layout::{render, see_other, PageCtx};
use crate::web::AppState;

/// How many releases the dashboard lists per page.
const PAGE: i64 = 20;

#[derive(Template)]
#[template(path = "sites/list.html")]
struct ListPage {
    ctx: PageCtx,
    sites: Vec<Site>,
}

/// `GET /`: every site and what is live.
#[tracing::instrument(skip_all)]
pub(crate) async fn list(ctx: PageCtx, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    render(
        StatusCode::OK,
        &ListPage {
            ctx,
            sites: store::list(&state.pool).await?,
        },
    )
}

#[derive(Template)]
#[template(path = "sites/show.html")]
struct ShowPage {
    ctx: PageCtx,
    site: Site,
    live: Option<Release>,
    releases: Vec<Release>,
    older: Option<i64>,
    can_upload: bool,
    can_operate: bool,
    max_upload: String,
    /// The upload limit in bytes (the script refuses larger files before sending them).
    max_bytes: u64,
    /// The newest activation (who put the live release live, and when).
    live_since: Option<Activation>,
    /// Where "Roll back" goes, and when that release was last live.
    rollback_to: Option<(Release, Option<Activation>)>,
    activations: Vec<Activation>,
    apache: &'static str,
    /// HTTPS sites: what the certificate check says, and whether it needs attention.
    certificate: Option<(String, bool)>,
    /// System mode: this site's names that other VirtualHosts serve too.
    name_warnings: Vec<String>,
    /// A site on several hosts: each host and what it serves.
    hosts: Vec<crate::hosts::Host>,
    /// Why the hosts disagree, if they do (a banner).
    hosts_disagree: Option<String>,
    can_admin: bool,
}

impl ShowPage {
    /// The latest time `id` went live, for the history list.
    fn last_live(&self, id: &str) -> Option<&Activation> {
        self.activations.iter().find(|a| a.release_id == id)
    }
}

/// Query of the dashboard (history paging).
#[derive(Deserialize)]
pub(crate) struct ShowQuery {
    before: Option<i64>,
}

/// `GET /sites/{site}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    ctx: PageCtx,
    who: Identity,
    name: web::Path<String>,
    q: web::Query<ShowQuery>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    let mut list = releases::list(&state.pool, site.id, q.before, PAGE + 1).await?;
    let older = (list.len() as i64 > PAGE).then(|| {
        list.truncate(PAGE as usize);
        list.last().map(|r| r.pk)
    });
    let live = match &site.active_release {
        Some(id) => Some(releases::get(&state.pool, site.id, id).await?),
        None => None,
    };
    let activations = activations::list(&state.pool, site.id, 200).await?;
    let rollback_to = match state.golive.rollback_target(&site).await? {
        Some(id) => {
            let release = releases::get(&state.pool, site.id, &id).await?;
            Some((
                release,
                activations.iter().find(|a| a.release_id == id).cloned(),
            ))
        }
        None => None,
    };
    let certificate = certificate_status(&site).await;
    let hosts = crate::hosts::store::list(&state.pool, site.id).await?;
    let page = ShowPage {
        hosts_disagree: super::hosts::disagreement(&site, &hosts),
        hosts,
        can_admin: who.role >= Role::Admin,
        certificate,
        ctx,
        live_since: activations
            .first()
            .filter(|a| a.ended_at.is_none())
            .cloned(),
        rollback_to,
        activations,
        apache: state.golive.apache.status().await,
        name_warnings: state.golive.apache.name_warnings(&site.name),
        site,
        live,
        releases: list,
        older: older.flatten(),
        can_upload: who.role >= Role::Deployer,
        can_operate: who.role >= Role::Operator,
        max_upload: crate::releases::human_bytes(state.settings.uploads.max_bytes),
        max_bytes: state.settings.uploads.max_bytes,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "sites/form.html")]
struct FormPage {
    ctx: PageCtx,
    /// None when creating.
    existing: Option<String>,
    form: SiteForm,
    error: Option<String>,
}

/// `GET /sites/new`.
#[tracing::instrument(skip_all)]
pub(crate) async fn new_form(ctx: PageCtx) -> AppResult<HttpResponse> {
    let form = SiteForm {
        keep_releases: "5".into(),
        switch: "pinned".into(),
        health_path: "/".into(),
        runtime: "static".into(),
        allow_override: "none".into(),
        ..Default::default()
    };
    render(
        StatusCode::OK,
        &FormPage {
            ctx,
            existing: None,
            form,
            error: None,
        },
    )
}

/// `POST /sites`.
#[tracing::instrument(skip_all)]
pub(crate) async fn create(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    form: web::Form<SiteForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let result = async {
        let name = sites::parse_name(&form.name)?;
        let dir = sites::SitePaths::new(&state.settings.sites_root(), &name).dir;
        let settings = form.input(None)?.validate(&dir)?;
        store::create(
            &state.pool,
            &state.settings.sites_root(),
            &who.actor(),
            &client.source,
            &name,
            &settings,
        )
        .await
    }
    .await;
    match result {
        Ok(site) => {
            let names = site.settings.names();
            state.golive.apache.check_names(&site.name, &names).await;
            Ok(see_other(&format!(
                "/sites/{}?notice=site-created",
                site.name
            )))
        }
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &FormPage {
                ctx,
                existing: None,
                form,
                error: Some(e.to_string()),
            },
        ),
        Err(e) => Err(e),
    }
}

/// `GET /sites/{site}/settings`.
#[tracing::instrument(skip_all)]
pub(crate) async fn settings_form(
    ctx: PageCtx,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    render(
        StatusCode::OK,
        &FormPage {
            ctx,
            existing: Some(site.name.clone()),
            form: SiteForm::from_site(&site),
            error: None,
        },
    )
}

/// `POST /sites/{site}/settings`.
#[tracing::instrument(skip_all)]
pub(crate) async fn update(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    form: web::Form<SiteForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    let old_settings = site.settings.clone();
    let mut form = form.into_inner();
    form.name = site.name.clone();
    // With a release live, Apache takes the new settings through the checked switch
    // (configtest, reload, health check); a refusal changes nothing.
    let result = async {
        let dir = sites::SitePaths::new(&state.settings.sites_root(), &site.name).dir;
        let settings = form.input(Some(&site.settings))?.validate(&dir)?;
        state
            .golive
            .change_settings(&site.name, settings, &who.actor(), &client.source)
            .await
    }
    .await;
    if let Ok(site) = &result {
        if site.settings.names() != old_settings.names() {
            let names = site.settings.names();
            state.golive.apache.check_names(&site.name, &names).await;
        }
    }
    match result {
        Ok(site) => Ok(see_other(&format!(
            "/sites/{}?notice=site-saved",
            site.name
        ))),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &FormPage {
                ctx,
                existing: Some(site.name.clone()),
                form,
                error: Some(e.to_string()),
            },
        ),
        Err(e) => Err(e),
    }
}

/// The site page's line about its certificate (expiry, with a warning from 21 days before).
async fn certificate_status(site: &Site) -> Option<(String, bool)> {
    Some(match crate::sites::tls::Tls::check_site(site.settings.config.tls.as_ref(), site.settings.names()).await? {
        Ok(i) if i.days_left <= crate::sites::tls::WARN_DAYS => (
            format!("Certificate valid until {} — only {} days left: renew it soon, or visitors will be turned away.", i.not_after, i.days_left),
            true,
        ),
        Ok(i) => (format!("Certificate valid until {} ({} days left).", i.not_after, i.days_left), false),
        Err(m) => (format!("Certificate problem: {m}"), true),
    })
}
