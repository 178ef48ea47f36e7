//! `POST /sites/{site}/maintenance`: maintenance mode on or off in one tap (the on-call
//! person's tool), through the same checked switch as every settings change.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::auth::Identity;
use crate::error::AppResult;
use crate::sites::store;
use crate::web::client::ClientInfo;
use crate::web::layout::see_other;
use crate::web::AppState;

/// The button's form.
#[derive(Deserialize)]
pub(crate) struct MaintenanceForm {
    /// `on` or `off`.
    mode: String,
}

/// Turns maintenance mode on or off, then back to the site page with what happened.
#[tracing::instrument(skip_all)]
pub(crate) async fn set(
    who: Identity,
    client: ClientInfo,
    name: web::Path<String>,
    form: web::Form<MaintenanceForm>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    let mut settings = site.settings.clone();
    settings.config.maintenance = form.mode == "on";
    let site = state
        .golive
        .change_settings(&site.name, settings, &who.actor(), &client.source)
        .await?;
    let notice = if site.settings.config.maintenance {
        "maintenance-on"
    } else {
        "maintenance-off"
    };
    Ok(see_other(&format!("/sites/{}?notice={notice}", site.name)))
}
