//! Browser pages (askama templates in `templates/`).

pub mod account;
pub mod audit;
pub mod golive;
pub mod login;
pub mod releases;
pub mod sites;
pub mod timeline;
pub mod users;

use actix_web::http::header::{ContentType, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use askama::Template;

use super::access::MustChangePassword;
use super::assets;
use crate::auth::{Identity, Role};
use crate::error::AppError;

/// The signed-in user, as the layout shows them.
pub struct NavUser {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// What the layout needs on every page.
pub struct PageCtx {
    /// Who is signed in.
    pub user: Option<NavUser>,
    /// The session's CSRF token for forms (empty when signed out).
    pub csrf: String,
    /// A fixed message chosen by `?notice=` (never text from the URL itself).
    pub notice: Option<&'static str>,
    /// Stylesheet URL, content-hashed.
    pub css: String,
    /// Script URL, content-hashed.
    pub js: String,
}

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "logged-out" => "You are logged out.",
        "password-changed" => "Your password was changed. Your other sessions were ended.",
        "must-change" => "Your password was generated for you: choose your own before going on.",
        "session-ended" => "The session was ended.",
        "token-revoked" => "The token was revoked: it no longer works.",
        "role-changed" => "The role was changed.",
        "user-disabled" => "The user was disabled and all their sessions were ended.",
        "user-enabled" => "The user was enabled.",
        "site-created" => "The site was created. Upload its first release below.",
        "site-saved" => {
            "The site's settings were saved (and Apache uses them, if a release is live)."
        }
        "uploaded" => "The release was uploaded and checked. It is ready to go live.",
        "pinned" => "The release is pinned: clean-up will keep it.",
        "unpinned" => "The release is no longer pinned.",
        "release-deleted" => "The release was deleted.",
        _ => return None,
    })
}

impl PageCtx {
    /// Builds the context from what the access guard left on the request.
    pub fn from_request(req: &HttpRequest) -> Self {
        let ext = req.extensions();
        let who = ext.get::<Identity>();
        let notice = web_query_value(req, "notice").and_then(|k| notice_text(&k));
        let must_change = ext.get::<MustChangePassword>().is_some();
        Self {
            user: who.map(|w| NavUser {
                name: w.name.clone(),
                role: w.role,
            }),
            csrf: who
                .and_then(|w| w.csrf_token())
                .unwrap_or_default()
                .to_owned(),
            notice: notice.or(must_change.then(|| notice_text("must-change")).flatten()),
            css: assets::url("style.css"),
            js: assets::url("app.js"),
        }
    }

    /// Whether the signed-in user is an admin (shows the Users link).
    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role == Role::Admin)
    }
}

fn web_query_value(req: &HttpRequest, key: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .ok()?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

impl FromRequest for PageCtx {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(PageCtx::from_request(req)))
    }
}

/// Renders a template with a status.
pub fn render(status: StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    let html = page
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering a page: {e}")))?;
    Ok(HttpResponse::build(status)
        .insert_header(ContentType::html())
        .body(html))
}

/// 303 to `to` (Post/Redirect/Get).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, to))
        .finish()
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    ctx: &'a PageCtx,
    status: u16,
    title: &'a str,
    code: &'a str,
    message: &'a str,
}

/// An error page that keeps the layout and says how to recover.
pub fn error_page(ctx: &PageCtx, status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let title = match status.as_u16() {
        401 => "Please log in",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Busy",
        422 => "Please check what you entered",
        429 => "Too many attempts",
        500..=599 => "Something went wrong",
        _ => "That did not work",
    };
    let page = ErrorPage {
        ctx,
        status: status.as_u16(),
        title,
        code,
        message,
    };
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .insert_header(ContentType::html())
            .body(html),
        Err(_) => HttpResponse::build(status).body(message.to_owned()),
    }
}

/// Formats Unix seconds as RFC 3339 UTC (pages turn it into local time with a script).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The answer for addresses that match no route.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound(
        "There is nothing at this address. Check the link, or start again from the sites page."
            .into(),
    ))
}
