//! A switch that runs the site's own commands, watched from the browser: the form post starts
//! it in the background and answers with its page, which shows each step as it ends and the
//! running command's output as it arrives (polling with JavaScript, reloading without), then
//! the same result page as any switch.

use std::future::Future;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use crate::error::{AppError, AppResult};
use crate::golive::live::{Live, Snapshot};
use crate::golive::Report;
use crate::web::layout::{render, see_other, PageCtx};
use crate::web::AppState;

/// Starts `switch` in the background (it goes on if the browser goes away) and sends the
/// browser to its page.
pub(crate) fn start<F, Fut>(state: &AppState, site: &str, switch: F) -> HttpResponse
where
    F: FnOnce(Live) -> Fut,
    Fut: Future<Output = AppResult<Report>> + Send + 'static,
{
    let (id, live) = state.runs.start(site);
    let running = switch(live.clone());
    tokio::spawn(async move {
        let result = running.await.map_err(|e| (e.code(), e.to_string()));
        live.finish(result);
    });
    see_other(&format!("/sites/{site}/runs/{id}"))
}

#[derive(Template)]
#[template(path = "golive/run.html")]
struct RunPage {
    ctx: PageCtx,
    site: String,
    run: String,
    snap: Snapshot,
}

fn watched(state: &AppState, site: &str, run: &str) -> AppResult<Live> {
    state.runs.get(site, run).ok_or_else(|| {
        AppError::NotFound(
            "This switch is no longer followed here (the console restarted or it ended over an hour ago). Its result is in the site's history and the audit log.".into(),
        )
    })
}

/// `GET /sites/{site}/runs/{run}`: the switch so far, or its result once done.
#[tracing::instrument(skip_all)]
pub(crate) async fn show(
    ctx: PageCtx,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (site, run) = path.into_inner();
    let snap = watched(&state, &site, &run)?.snapshot();
    if let Some(report) = snap.report {
        return result(ctx, report);
    }
    if let (Some(message), Some(code)) = (snap.error.clone(), snap.error_code) {
        return Err(AppError::Conflict { code, message });
    }
    render(
        StatusCode::OK,
        &RunPage {
            ctx,
            site,
            run,
            snap,
        },
    )
}

/// `GET /sites/{site}/runs/{run}/progress`: what the page polls.
#[tracing::instrument(skip_all)]
pub(crate) async fn progress(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (site, run) = path.into_inner();
    let snap = watched(&state, &site, &run)?.snapshot();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(snap))
}

#[derive(Template)]
#[template(path = "golive/result.html")]
struct ResultPage {
    ctx: PageCtx,
    report: Report,
}

impl ResultPage {
    /// The time all the steps took together.
    fn total_ms(&self) -> u64 {
        self.report.steps.iter().map(|s| s.ms).sum()
    }
}

/// The result page of a switch (200 when done, 422 when not).
pub(crate) fn result(ctx: PageCtx, report: Report) -> AppResult<HttpResponse> {
    let status = if report.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(status, &ResultPage { ctx, report })
}
