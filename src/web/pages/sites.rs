//! Site pages: the list, the dashboard with history and upload, creating and editing sites.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::{Identity, Role};
use crate::db::activations::{self, Activation};
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::releases::{store as releases, Release};
use crate::sites::{self, store, SettingsInput, Site};
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
    /// System mode: this site's names that other VirtualHosts serve too.
    name_warnings: Vec<String>,
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
    let page = ShowPage {
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

/// The site form's fields (text as typed, so a refused form is shown back as it was).
#[derive(Deserialize, Default)]
pub(crate) struct SiteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    server_name: String,
    #[serde(default)]
    aliases: String,
    #[serde(default)]
    keep_releases: String,
    #[serde(default)]
    switch: String,
    #[serde(default)]
    health_path: String,
    #[serde(default)]
    shared_paths: String,
    #[serde(default)]
    reload_always: Option<String>,
}

impl SiteForm {
    fn from_site(site: &Site) -> Self {
        let s = &site.settings;
        Self {
            name: site.name.clone(),
            server_name: s.server_name.clone(),
            aliases: s.aliases.join("\n"),
            keep_releases: s.keep_releases.to_string(),
            switch: s.switch_mode.as_str().into(),
            health_path: s.health_path.clone(),
            shared_paths: s.shared_paths.join("\n"),
            reload_always: s.reload_always.then(|| "on".into()),
        }
    }

    fn input(&self) -> AppResult<SettingsInput> {
        let keep = match self.keep_releases.trim() {
            "" => None,
            k => Some(k.parse().map_err(|_| {
                AppError::invalid(
                    code::INVALID_KEEP,
                    "Releases to keep is a number from 1 to 100.",
                )
            })?),
        };
        let lines = |s: &str| {
            s.split(['\n', ',', ' '])
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect()
        };
        Ok(SettingsInput {
            server_name: Some(self.server_name.clone()),
            aliases: lines(&self.aliases),
            keep_releases: keep,
            switch_mode: Some(self.switch.clone()),
            health_path: Some(self.health_path.clone()),
            shared_paths: lines(&self.shared_paths),
            reload_always: self.reload_always.is_some(),
        })
    }
}

/// `GET /sites/new`.
#[tracing::instrument(skip_all)]
pub(crate) async fn new_form(ctx: PageCtx) -> AppResult<HttpResponse> {
    let form = SiteForm {
        keep_releases: "5".into(),
        switch: "pinned".into(),
        health_path: "/".into(),
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
        let settings = form.input()?.validate()?;
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
    let result = async {
        let settings = form.input()?.validate()?;
        store::update(
            &state.pool,
            &state.settings.sites_root(),
            &who.actor(),
            &client.source,
            &site,
            &settings,
        )
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
        // With a release live, Apache takes the new settings through the usual checked switch
        // (configtest, reload, health check, put back on failure).
        Ok(site) => match &site.active_release {
            Some(live) if site.settings != old_settings => {
                let report = state
                    .golive
                    .activate(
                        &site.name,
                        live,
                        crate::golive::Kind::Activate,
                        &who.actor(),
                        &client.source,
                    )
                    .await?;
                if report.ok {
                    Ok(see_other(&format!(
                        "/sites/{}?notice=site-saved",
                        site.name
                    )))
                } else {
                    super::golive::result(ctx, report)
                }
            }
            _ => Ok(see_other(&format!(
                "/sites/{}?notice=site-saved",
                site.name
            ))),
        },
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
