//! `/sites/{site}/hosts`: the web servers of a site on several hosts — what each serves, its
//! pinned key, drift — and, for admins, adding, confirming and removing them.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::{Identity, Role};
use crate::error::{AppError, AppResult};
use crate::hosts::{store as hosts, Host, HostInput};
use crate::sites::{store, Site};
use crate::web::client::ClientInfo;
use crate::web::layout::{render, see_other, PageCtx};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "sites/hosts.html")]
struct HostsPage {
    ctx: PageCtx,
    site: Site,
    hosts: Vec<Host>,
    /// Why the hosts disagree, if they do.
    disagree: Option<String>,
    can_admin: bool,
    /// The `authorized_keys` line (admins only).
    authorized_keys: Option<String>,
}

/// Why a site's hosts disagree with each other or with the records, for a banner.
pub(crate) fn disagreement(site: &Site, hosts: &[Host]) -> Option<String> {
    let drifted: Vec<&str> = hosts
        .iter()
        .filter(|h| h.drift.is_some())
        .map(|h| h.name.as_str())
        .collect();
    let off: Vec<&str> = hosts
        .iter()
        .filter(|h| h.confirmed && h.serving != site.active_release)
        .map(|h| h.name.as_str())
        .collect();
    match (drifted.is_empty(), off.is_empty()) {
        (true, true) => None,
        _ => {
            let mut names: Vec<&str> = drifted.into_iter().chain(off).collect();
            names.sort_unstable();
            names.dedup();
            Some(format!(
                "The hosts disagree: {} {} not serving the live release as recorded. See each host's line below; putting a release live again brings every host to it.",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" }
            ))
        }
    }
}

/// `GET /sites/{site}/hosts`.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    ctx: PageCtx,
    who: Identity,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    let hosts = hosts::list(&state.pool, site.id).await?;
    let can_admin = who.role >= Role::Admin;
    let authorized_keys = match can_admin {
        true => Some(
            state
                .golive
                .ssh
                .authorized_keys_line()
                .await
                .map_err(AppError::Internal)?,
        ),
        false => None,
    };
    let disagree = disagreement(&site, &hosts);
    render(
        StatusCode::OK,
        &HostsPage {
            ctx,
            site,
            hosts,
            disagree,
            can_admin,
            authorized_keys,
        },
    )
}

/// The add form: the API's fields, the commands one per line as a shell would split them.
#[derive(Deserialize)]
pub(crate) struct AddForm {
    name: String,
    ssh: String,
    dir: String,
    #[serde(default)]
    vhost_dir: String,
    #[serde(default)]
    log_dir: String,
    #[serde(default)]
    configtest: String,
    #[serde(default)]
    reload: String,
    #[serde(default)]
    check_url: String,
    #[serde(default)]
    fingerprint: String,
}

fn some(s: String) -> Option<String> {
    let s = s.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn words(field: &str, s: String) -> AppResult<Option<Vec<String>>> {
    match some(s) {
        None => Ok(None),
        Some(line) => crate::steps::parse_line(&line).map(Some).map_err(|m| {
            AppError::invalid(crate::error::code::INVALID_HOST, format!("{field}: {m}"))
        }),
    }
}

/// `POST /sites/{site}/hosts`.
#[tracing::instrument(skip_all)]
pub(crate) async fn add(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    form: web::Form<AddForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let f = form.into_inner();
    let input = HostInput {
        name: f.name.trim().to_owned(),
        ssh: f.ssh.trim().to_owned(),
        dir: f.dir.trim().to_owned(),
        vhost_dir: some(f.vhost_dir),
        log_dir: some(f.log_dir),
        configtest: words("configtest", f.configtest)?,
        reload: words("reload", f.reload)?,
        check_url: some(f.check_url),
        fingerprint: some(f.fingerprint),
        php: None,
    };
    let added = state
        .golive
        .add_host(&name, input, (&who.actor(), &client.source))
        .await?;
    Ok(see_other(&format!(
        "/sites/{name}/hosts?notice={}",
        notice(&added)
    )))
}

fn notice(added: &crate::golive::Added) -> &'static str {
    match (&added.host.confirmed, &added.serving_live) {
        (false, _) => "host-added",
        (true, Some(Ok(()))) => "host-serving",
        (true, _) => "host-confirmed",
    }
}

/// The confirm button: the fingerprint the admin was shown.
#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    fingerprint: String,
}

/// `POST /sites/{site}/hosts/{host}/confirm`.
#[tracing::instrument(skip_all)]
pub(crate) async fn confirm(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    form: web::Form<ConfirmForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (site, host) = path.into_inner();
    let added = state
        .golive
        .confirm_host(
            &site,
            &host,
            &form.fingerprint,
            (&who.actor(), &client.source),
        )
        .await?;
    Ok(see_other(&format!(
        "/sites/{site}/hosts?notice={}",
        notice(&added)
    )))
}

/// `POST /sites/{site}/hosts/{host}/remove`.
#[tracing::instrument(skip_all)]
pub(crate) async fn remove(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (site, host) = path.into_inner();
    state
        .golive
        .remove_host(&site, &host, (&who.actor(), &client.source))
        .await?;
    Ok(see_other(&format!(
        "/sites/{site}/hosts?notice=host-removed"
    )))
}
