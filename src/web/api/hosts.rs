//! `/api/v1/sites/{site}/hosts` and `/api/v1/ssh-key`: the hosts of a site on several web
//! servers, and the key Cutover logs in to them with.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Identity;
use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::hosts::{store, HostInput};
use crate::sites::store as sites;
use crate::web::client::ClientInfo;
use crate::web::AppState;

/// `GET /api/v1/sites/{site}/hosts`.
#[tracing::instrument(skip_all)]
pub(crate) async fn list(
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = sites::get(&state.pool, &name).await?;
    let hosts = store::list(&state.pool, site.id).await?;
    Ok(HttpResponse::Ok().json(json!({"hosts": hosts})))
}

/// `POST /api/v1/sites/{site}/hosts`: a [`HostInput`]; 201 with the host's fingerprint.
#[tracing::instrument(skip_all)]
pub(crate) async fn add(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let input: HostInput = parse(&body)?;
    let added = state
        .golive
        .add_host(&name, input, (&who.actor(), &client.source))
        .await?;
    Ok(HttpResponse::Created().json(answer(added)))
}

/// The body of `POST …/hosts/{host}/confirm`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Confirm {
    fingerprint: String,
}

/// `POST /api/v1/sites/{site}/hosts/{host}/confirm`: `{"fingerprint": "SHA256:…"}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn confirm(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (site, host) = path.into_inner();
    let c: Confirm = parse(&body)?;
    let added = state
        .golive
        .confirm_host(&site, &host, &c.fingerprint, (&who.actor(), &client.source))
        .await?;
    Ok(HttpResponse::Ok().json(answer(added)))
}

/// `DELETE /api/v1/sites/{site}/hosts/{host}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn remove(
    who: Identity,
    client: ClientInfo,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (site, host) = path.into_inner();
    let warning = state
        .golive
        .remove_host(&site, &host, (&who.actor(), &client.source))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"removed": host, "warning": warning})))
}

/// `GET /api/v1/ssh-key`: Cutover's public key and the `authorized_keys` line for hosts.
#[tracing::instrument(skip_all)]
pub(crate) async fn ssh_key(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let ssh = &state.golive.ssh;
    let public_key = ssh.public_key().await.map_err(AppError::Internal)?;
    let line = ssh
        .authorized_keys_line()
        .await
        .map_err(AppError::Internal)?;
    Ok(HttpResponse::Ok().json(json!({"public_key": public_key, "authorized_keys": line})))
}

fn answer(added: crate::golive::Added) -> serde_json::Value {
    let mut v = serde_json::to_value(&added.host).unwrap_or_default();
    v["authorized_keys"] = json!(added.authorized_keys);
    if let Some(r) = added.serving_live {
        v["serving_live"] = json!(r.is_ok());
        v["serving_live_error"] = json!(r.err());
    }
    v
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> AppResult<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        AppError::invalid(code::BAD_JSON, format!("{field}: {}", e.inner()))
    })
}
