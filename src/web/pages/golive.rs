//! Going live and rolling back from the browser: a confirmation page naming the releases,
//! then a plain form post (works without JavaScript), then the result with every step.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::Identity;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::golive::{Expect, Kind};
use crate::releases::{store, Release};
use crate::sites::{store as sites, Site};
use crate::web::client::ClientInfo;
use crate::web::layout::{render, PageCtx};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "golive/confirm.html")]
struct ConfirmPage {
    ctx: PageCtx,
    site: Site,
    kind: Kind,
    target: Release,
    live: Option<Release>,
    /// When the target was last live and until when (rollback).
    was_live: Option<(String, String)>,
    /// What the site's own commands add to this switch, and how long they took last time.
    steps_note: Option<String>,
}

/// What tapping will run besides the switch: the site's steps for `target`.
async fn steps_note(
    state: &AppState,
    site: &Site,
    kind: Kind,
    target: &str,
) -> AppResult<Option<String>> {
    let steps = &site.settings.config.steps;
    let count = steps.before_switch.len() + steps.after_switch.len();
    if count == 0 {
        return Ok(None);
    }
    if !crate::golive::runs_steps(site, kind) {
        return Ok(Some("The site's steps before and after the switch are skipped when rolling back (its settings say so): only the files switch.".into()));
    }
    let plural = if count == 1 { "command" } else { "commands" };
    let last = crate::steps::store::last_switch_ms(&state.pool, site.id, target).await?;
    let took = match last {
        Some(ms) => format!(
            " For this release they last took {}.",
            crate::web::layout::duration(ms.max(0) as u64)
        ),
        None => " They have not run for this release before.".into(),
    };
    Ok(Some(format!("This also runs the site's {count} {plural} before and after the switch; you can watch their output.{took}")))
}

async fn live_release(state: &AppState, site: &Site) -> AppResult<Option<Release>> {
    match &site.active_release {
        Some(id) => Ok(Some(store::get(&state.pool, site.id, id).await?)),
        None => Ok(None),
    }
}

async fn was_live(
    state: &AppState,
    site: &Site,
    release: &str,
) -> AppResult<Option<(String, String)>> {
    let row = crate::db::activations::last_period(&state.pool, site.id, release).await?;
    Ok(row.map(|(from, to)| (from, to.unwrap_or_default())))
}

/// `GET /sites/{site}/releases/{id}/activate`: "Put X live?".
#[tracing::instrument(skip_all)]
pub(crate) async fn confirm_activate(
    ctx: PageCtx,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = sites::get(&state.pool, &name).await?;
    let target = store::get(&state.pool, site.id, &id).await?;
    // Say so now rather than after "Yes": a refused upload or the live release itself.
    if !target.usable() {
        let message = format!("Release {id} is {} and cannot go live.", target.state);
        return Err(AppError::invalid(code::NOT_USABLE, message));
    }
    crate::golive::expect_live(&site, &id, site.active_release.as_deref())?;
    let live = live_release(&state, &site).await?;
    let steps_note = steps_note(&state, &site, Kind::Activate, &id).await?;
    render(
        StatusCode::OK,
        &ConfirmPage {
            ctx,
            site,
            kind: Kind::Activate,
            target,
            live,
            was_live: None,
            steps_note,
        },
    )
}

/// Query of the rollback confirmation.
#[derive(Deserialize)]
pub(crate) struct RollbackQuery {
    to: Option<String>,
}

/// `GET /sites/{site}/rollback`: "Roll back from X to Y?".
#[tracing::instrument(skip_all)]
pub(crate) async fn confirm_rollback(
    ctx: PageCtx,
    name: web::Path<String>,
    q: web::Query<RollbackQuery>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let to = match &q.to {
        Some(t) => Some(t.clone()),
        None => state.golive.rollback_target(&site).await?,
    };
    let to = to.ok_or_else(|| {
        AppError::invalid(
            code::NOTHING_TO_ROLL_BACK_TO,
            "There is no earlier release to go back to yet.",
        )
    })?;
    let target = store::get(&state.pool, site.id, &to).await?;
    let live = live_release(&state, &site).await?;
    let was = was_live(&state, &site, &to).await?;
    let steps_note = steps_note(&state, &site, Kind::Rollback, &to).await?;
    render(
        StatusCode::OK,
        &ConfirmPage {
            ctx,
            site,
            kind: Kind::Rollback,
            target,
            live,
            was_live: was,
            steps_note,
        },
    )
}

/// Form of going live: the release the confirmation page showed as live (empty: none).
#[derive(Deserialize)]
pub(crate) struct ActivateForm {
    live: Option<String>,
}

/// What the confirmation page showed as live, from its hidden `live` field.
fn seen(live: &Option<String>) -> Expect<'_> {
    match live.as_deref() {
        None => Expect::Anything,
        Some("") => Expect::Live(None),
        Some(id) => Expect::Live(Some(id)),
    }
}

/// `POST /sites/{site}/releases/{id}/activate`.
#[tracing::instrument(skip_all)]
pub(crate) async fn activate(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    form: web::Form<ActivateForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (name, id) = path.into_inner();
    let site = sites::get(&state.pool, &name).await?;
    if crate::golive::runs_steps(&site, Kind::Activate) {
        let switch = (Kind::Activate, id, form.live.clone());
        return Ok(watched(&state, site.name, switch, &who, client));
    }
    let how = (Kind::Activate, seen(&form.live));
    let report = state
        .golive
        .switch_to(&name, &id, how, &who.actor(), &client.source)
        .await?;
    super::runs::result(ctx, report)
}

/// A switch of a site with steps: `(kind, release, live as the confirmation page showed it)`
/// started in the background, the browser sent to the page that follows it.
fn watched(
    state: &AppState,
    site: String,
    (kind, release, live): (Kind, String, Option<String>),
    who: &Identity,
    client: ClientInfo,
) -> HttpResponse {
    let (golive, actor, source) = (state.golive.clone(), who.actor(), client.source);
    super::runs::start(state, &site.clone(), move |watch| async move {
        let how = (kind, seen(&live));
        golive
            .switch_watched(&site, &release, how, (&actor, &source), Some(watch))
            .await
    })
}

/// Form of the rollback.
#[derive(Deserialize)]
pub(crate) struct RollbackForm {
    to: Option<String>,
    live: Option<String>,
}

/// `POST /sites/{site}/rollback`.
#[tracing::instrument(skip_all)]
pub(crate) async fn rollback(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    form: web::Form<RollbackForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let to = form.to.as_deref().filter(|t| !t.is_empty());
    let site = sites::get(&state.pool, &name).await?;
    if crate::golive::runs_steps(&site, Kind::Rollback) {
        let target = state.golive.rollback_to(&name, to).await?;
        let switch = (Kind::Rollback, target, form.live.clone());
        return Ok(watched(&state, site.name, switch, &who, client));
    }
    let report = state
        .golive
        .rollback(&name, to, seen(&form.live), &who.actor(), &client.source)
        .await?;
    super::runs::result(ctx, report)
}

#[derive(Template)]
#[template(path = "golive/config.html")]
struct ConfigPage {
    ctx: PageCtx,
    site: Site,
    path: String,
    lines: Vec<Line>,
    marks: Vec<Mark>,
    check: Option<(bool, String)>,
}

/// A line of the vhost: (number, text, whether it names the setting below it).
type Line = (usize, String, bool);
/// A setting's contribution: (line, setting, what it does there).
type Mark = (usize, String, String);

/// The vhost's lines, and where each setting's lines begin (Cutover marks them when it
/// renders the file).
fn annotate(config: &str) -> (Vec<Line>, Vec<Mark>) {
    let mark = crate::apache::serving::SETTING_MARK;
    let mut marks = Vec::new();
    let lines = config
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let from = l.trim_start().strip_prefix(mark);
            if let Some((field, why)) = from.and_then(|f| f.split_once(": ")) {
                marks.push((i + 1, field.to_owned(), why.to_owned()));
            }
            (i + 1, l.to_owned(), from.is_some())
        })
        .collect();
    (lines, marks)
}

async fn config_page(
    ctx: PageCtx,
    state: &AppState,
    name: &str,
    check: Option<(bool, String)>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, name).await?;
    let path = state
        .golive
        .apache
        .vhost_path(&site.name)
        .map_err(|m| AppError::Conflict {
            code: code::APACHE_UNAVAILABLE,
            message: m,
        })?;
    let config = std::fs::read_to_string(&path).unwrap_or_default();
    let (lines, marks) = annotate(&config);
    render(
        StatusCode::OK,
        &ConfigPage {
            ctx,
            site,
            path: path.display().to_string(),
            lines,
            marks,
            check,
        },
    )
}

/// `GET /sites/{site}/config`: the generated VirtualHost.
#[tracing::instrument(skip_all)]
pub(crate) async fn show_config(
    ctx: PageCtx,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    config_page(ctx, &state, &name, None).await
}

/// `POST /sites/{site}/config/check`: runs configtest and shows Apache's own words.
#[tracing::instrument(skip_all)]
pub(crate) async fn check_config(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let out = state
        .golive
        .check_config(&site.name, &who.actor(), &client.source)
        .await?;
    config_page(ctx, &state, &name, Some((out.ok, out.output))).await
}
