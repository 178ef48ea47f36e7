//! The audit log page (newest first, filters, keyset pages).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;

use super::{render, PageCtx};
use crate::audit::query::{self, EventView, Filter};
use crate::error::AppResult;
use crate::web::AppState;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    ctx: PageCtx,
    events: Vec<EventView>,
    filter: Filter,
    next_url: Option<String>,
}

impl AuditPage {
    fn field<'a>(&self, v: &'a Option<String>) -> &'a str {
        v.as_deref().unwrap_or("")
    }

    /// Whether an event's detail says anything (empty ones get no "Details" control).
    fn has_detail(&self, v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Null => false,
            serde_json::Value::Object(o) => !o.is_empty(),
            _ => true,
        }
    }
}

/// `GET /audit`.
pub async fn list(
    ctx: PageCtx,
    filter: web::Query<Filter>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let filter = filter.into_inner();
    let page = query::list(&state.pool, &filter).await?;
    let next_url = page.next.map(|before| {
        let mut f = filter.clone();
        f.before = Some(before);
        let pairs = [
            ("site", f.site),
            ("actor", f.actor),
            ("action", f.action),
            ("outcome", f.outcome),
            ("before", Some(before.to_string())),
        ];
        let kept: Vec<(&str, String)> = pairs
            .into_iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
            .collect();
        format!(
            "/audit?{}",
            serde_urlencoded::to_string(kept).unwrap_or_default()
        )
    });
    render(
        StatusCode::OK,
        &AuditPage {
            ctx,
            events: page.events,
            filter,
            next_url,
        },
    )
}
