//! The audit log: review page (filters, keyset pages), streamed exports, and Verify.

use actix_web::http::header::{ContentDisposition, ContentType, DispositionParam, DispositionType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde_json::json;

use crate::audit::query::{self, EventView, Filter, Format};
use crate::audit::{self, Event, Outcome, Verification};
use crate::auth::{Identity, Role};
use crate::error::AppResult;
use crate::web::client::ClientInfo;
use crate::web::layout::{render, PageCtx};
use crate::web::AppState;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    ctx: PageCtx,
    events: Vec<EventView>,
    filter: Filter,
    query: String,
    next_url: Option<String>,
    verdict: Option<(bool, String)>,
}

impl AuditPage {
    fn field<'a>(&self, v: &'a Option<String>) -> &'a str {
        v.as_deref().unwrap_or("")
    }

    /// Whether any filter is set (the filter box then starts open, also on phones).
    fn filtering(&self) -> bool {
        let f = &self.filter;
        [&f.site, &f.actor, &f.action, &f.outcome, &f.from, &f.to]
            .iter()
            .any(|v| v.as_deref().is_some_and(|s| !s.trim().is_empty()))
    }

    /// The action in plain words, for people; the code stays beside it for exports and filters.
    fn label(&self, action: &str) -> &'static str {
        match action {
            "activate" => "Went live",
            "rollback" => "Rolled back",
            "auto_rollback" => "Automatic roll-back",
            "upload" => "Upload",
            "configtest" => "Apache configuration check",
            "reload" => "Apache reload",
            "health_check" => "Site health check",
            "release_pin" => "Release pinned",
            "release_unpin" => "Release unpinned",
            "release_delete" => "Release deleted",
            "retention" => "Old releases cleaned up",
            "drift" => "Records and disk disagree",
            "site_create" => "Site created",
            "site_update" => "Site settings changed",
            "login" => "Log-in",
            "logout" => "Log-out",
            "session_end" => "Session ended",
            "password_change" => "Password changed",
            "password_reset" => "Password reset by an admin",
            "user_create" => "User created",
            "user_role" => "Role changed",
            "user_disable" => "User disabled",
            "user_enable" => "User enabled",
            "token_create" => "API token created",
            "token_revoke" => "API token revoked",
            "token_revoke_all" => "All of a user's API tokens revoked",
            "access_denied" => "Access refused",
            "request_refused" => "Oversized request refused",
            "csrf_failed" => "Form refused (expired or from elsewhere)",
            "audit_export" => "Audit log exported",
            "audit_verify" => "Audit log verified",
            "apache_died" => "Apache stopped running",
            "apache_restart" => "Apache restarted",
            "console_start" => "Console started",
            "console_stop" => "Console stopped",
            _ => "",
        }
    }

    /// The detail's top-level fields as (name, value) lines; text without quotes.
    fn detail_lines(&self, v: &serde_json::Value) -> Vec<(String, String)> {
        let Some(fields) = v.as_object() else {
            return vec![(String::new(), v.to_string())];
        };
        fields
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let shown = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.replace('_', " "), shown)
            })
            .collect()
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

async fn page(
    ctx: PageCtx,
    filter: Filter,
    state: &AppState,
    verdict: Option<(bool, String)>,
) -> AppResult<HttpResponse> {
    let page = query::list(&state.pool, &filter).await?;
    let query = filter.query_string();
    let next_url = page.next.map(|before| {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("/audit?{query}{sep}before={before}")
    });
    render(
        StatusCode::OK,
        &AuditPage {
            ctx,
            events: page.events,
            filter,
            query,
            next_url,
            verdict,
        },
    )
}

/// `GET /audit`.
#[tracing::instrument(skip_all)]
pub(crate) async fn list(
    ctx: PageCtx,
    filter: web::Query<Filter>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    page(ctx, filter.into_inner(), &state, None).await
}

/// `POST /audit/verify` (admins): walks the hash chain and says whether it is intact.
#[tracing::instrument(skip_all)]
pub(crate) async fn verify(
    ctx: PageCtx,
    who: Identity,
    client: ClientInfo,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let verdict = match audit::verify(&state.pool).await? {
        Verification::Intact { events } => (
            true,
            format!("The audit log is intact: {events} events, each chained to the one before."),
        ),
        Verification::Broken { at_id: 0, reason } => (
            false,
            format!("The audit log does not check out: {reason}."),
        ),
        Verification::Broken { at_id, reason } => (
            false,
            format!("The audit log does not check out at event {at_id}: {reason}."),
        ),
    };
    let outcome = if verdict.0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    audit::record_alone(
        &state.pool,
        &Event::new(who.actor(), "audit_verify", outcome)
            .source(&client.source)
            .detail(json!({"result": verdict.1})),
    )
    .await?;
    page(ctx, Filter::default(), &state, Some(verdict)).await
}

async fn export(
    who: Identity,
    client: ClientInfo,
    filter: Filter,
    state: &AppState,
    format: Format,
) -> AppResult<HttpResponse> {
    let detail =
        json!({"format": if format == Format::Csv { "csv" } else { "json" }, "filter": filter});
    audit::record_alone(
        &state.pool,
        &Event::new(who.actor(), "audit_export", Outcome::Ok)
            .source(&client.source)
            .detail(detail),
    )
    .await?;
    let (mime, name) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "cutover-audit.csv"),
        Format::JsonLines => ("application/x-ndjson", "cutover-audit.jsonl"),
    };
    Ok(HttpResponse::Ok()
        .insert_header(ContentType(mime.parse().expect("valid mime")))
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(name.into())],
        })
        .streaming(query::export(state.pool.clone(), filter, format)))
}

/// `GET /audit/export.csv`.
#[tracing::instrument(skip_all)]
pub(crate) async fn export_csv(
    who: Identity,
    client: ClientInfo,
    filter: web::Query<Filter>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    export(who, client, filter.into_inner(), &state, Format::Csv).await
}

/// `GET /audit/export.json` (JSON Lines).
#[tracing::instrument(skip_all)]
pub(crate) async fn export_json(
    who: Identity,
    client: ClientInfo,
    filter: web::Query<Filter>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    export(who, client, filter.into_inner(), &state, Format::JsonLines).await
}

/// Whether the Verify button shows.
pub(crate) fn can_verify(ctx: &PageCtx) -> bool {
    ctx.user.as_ref().is_some_and(|u| u.role >= Role::Admin)
}
