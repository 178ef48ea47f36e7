//! What every page shares: the page context (who, notices, asset URLs), rendering,
//! redirects, the error page, and small formatters the templates call.

use actix_web::http::header::{ContentType, LOCATION};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use askama::Template;

use super::assets;
use super::request::MustChangePassword;
use crate::auth::{Identity, Role};
use crate::error::code::{self, Code};
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
    /// Favicon URL, content-hashed.
    pub icon: String,
    /// Touch icon URL (home screens that do not read the manifest), content-hashed.
    pub touch_icon: String,
    /// Web-app manifest URL, content-hashed.
    pub manifest: String,
}

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "logged-out" => "You are logged out.",
        "expired" => "Your session had ended, so nothing was done. Log in, then try again.",
        "password-changed" => "Your password was changed. Your other sessions were ended.",
        "must-change" => "Your password was generated for you: choose your own before going on.",
        "session-ended" => "The session was ended.",
        "token-revoked" => "The token was revoked: it no longer works.",
        "tokens-revoked" => {
            "Every API token of this user was revoked: none of them works any more."
        }
        "role-changed" => "The role was changed.",
        "user-disabled" => {
            "The user was disabled: all their sessions were ended and their API tokens revoked."
        }
        "user-enabled" => "The user was enabled.",
        "site-created" => "The site was created. Upload its first release below.",
        "site-saved" => {
            "The site's settings were saved (and Apache uses them, if a release is live)."
        }
        "maintenance-on" => {
            "Maintenance mode is on: visitors get the maintenance page (503) until you turn it off."
        }
        "maintenance-off" => "Maintenance mode is off: visitors get the live release again.",
        "uploaded" => "The release was uploaded and checked. It is ready to go live.",
        "pinned" => "The release is pinned: clean-up will keep it.",
        "unpinned" => "The release is no longer pinned.",
        "release-deleted" => "The release was deleted.",
        "host-added" => "The host was added. Check its key's fingerprint on the host, then confirm it below: nothing runs on it before.",
        "host-confirmed" => "The host's key was confirmed: Cutover stages releases on it and switches it with the others.",
        "host-serving" => "The host's key was confirmed and it now serves the live release.",
        "host-removed" => "The host was removed: the site was taken off it (its release folders stay there).",
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
            icon: assets::url("favicon.svg"),
            touch_icon: assets::url("icon-192.png"),
            manifest: assets::url("manifest.webmanifest"),
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
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("rendering a page")))?;
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
    /// The site the failed request was about: the page offers a way back to it.
    site: Option<&'a str>,
}

/// The site named by a `/sites/{site}/…` path, when it looks like a site name.
fn site_of(path: &str) -> Option<&str> {
    // Only for addresses below a site: the site's own page failing must not link to itself.
    let (name, rest) = path.strip_prefix("/sites/")?.split_once('/')?;
    let plausible = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (plausible && !rest.is_empty()).then_some(name)
}

/// An error page that keeps the layout and says how to recover. `path` is the failed
/// request's path: a page about a site links back to that site.
pub fn error_page(
    ctx: &PageCtx,
    status: StatusCode,
    code: Code,
    message: &str,
    path: &str,
) -> HttpResponse {
    let site = site_of(path);
    let upload = site.is_some() && path.ends_with("/releases");
    let title = match (status.as_u16(), code) {
        (_, code::ALREADY_LIVE) => "Already live",
        (_, code::CHANGED_MEANWHILE) => "The site changed meanwhile",
        (409, code::BUSY) => "Busy",
        (507, _) => "The server needs an administrator",
        (409, _) => "Not done",
        (status, _) => match status {
            413 | 422 if upload => "The archive was refused",
            401 => "Please log in",
            403 => "Not allowed",
            404 => "Not found",
            413 => "Too large",
            422 => "Please check what you entered",
            429 => "Too many attempts",
            500..=599 => "Something went wrong",
            _ => "That did not work",
        },
    };
    let page = ErrorPage {
        ctx,
        status: status.as_u16(),
        title,
        code: code.as_str(),
        message,
        site,
    };
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .insert_header(ContentType::html())
            .body(html),
        Err(_) => HttpResponse::build(status).body(message.to_owned()),
    }
}

/// An audit actor as people read it: `user:alice` → `alice`, `token:ci of alice` →
/// `alice (token ci)`, `cli:root` → `root (command line)`.
pub fn who(actor: &str) -> String {
    if let Some(name) = actor.strip_prefix("user:") {
        name.to_owned()
    } else if let Some((label, name)) = actor
        .strip_prefix("token:")
        .and_then(|t| t.rsplit_once(" of "))
    {
        format!("{name} (token {label})")
    } else if let Some(name) = actor.strip_prefix("cli:") {
        format!("{name} (command line)")
    } else {
        actor.to_owned()
    }
}

/// A step's duration for people: `850 ms`, `1.2 s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
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

#[cfg(test)]
mod tests {
    use super::{duration, site_of, who};

    #[test]
    fn durations_read_in_ms_then_seconds() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(999), "999 ms");
        assert_eq!(duration(1250), "1.2 s");
    }

    #[test]
    fn actors_read_as_names() {
        assert_eq!(who("user:alice"), "alice");
        assert_eq!(who("token:ci deploy of alice"), "alice (token ci deploy)");
        assert_eq!(who("cli:root"), "root (command line)");
        assert_eq!(who("system"), "system");
    }

    #[test]
    fn error_pages_link_back_to_the_site_below_it() {
        assert_eq!(site_of("/sites/blog/releases"), Some("blog"));
        assert_eq!(site_of("/sites/blog/rollback"), Some("blog"));
        assert_eq!(site_of("/sites/blog"), None);
        assert_eq!(site_of("/sites/Bad%20name/releases"), None);
        assert_eq!(site_of("/account"), None);
    }
}
