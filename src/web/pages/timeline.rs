//! The deployment timeline page of a site.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::error::AppResult;
use crate::golive::timeline::{self, human_duration, Entry};
use crate::sites::{store, Site};
use crate::web::layout::{render, PageCtx};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "sites/timeline.html")]
struct TimelinePage {
    ctx: PageCtx,
    site: Site,
    entries: Vec<Entry>,
}

impl TimelinePage {
    fn duration(&self, e: &Entry) -> String {
        e.seconds_live.map(human_duration).unwrap_or_default()
    }
}

/// `GET /sites/{site}/timeline`.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    ctx: PageCtx,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let site = store::get(&state.pool, &name).await?;
    let entries = timeline::timeline(&state.pool, site.id, &site.name).await?;
    render(StatusCode::OK, &TimelinePage { ctx, site, entries })
}
