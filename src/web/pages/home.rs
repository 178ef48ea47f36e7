//! The start page.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::{render, PageCtx};
use crate::error::AppResult;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
}

/// `GET /`.
pub async fn show(ctx: PageCtx) -> AppResult<HttpResponse> {
    render(StatusCode::OK, &HomePage { ctx })
}
