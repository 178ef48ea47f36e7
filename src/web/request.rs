//! Small facts about requests that the guard, the pages and the API share.

use actix_web::http::header;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cutover_session";
/// Name of the cookie holding the log-in form's CSRF token (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "cutover_login_csrf";
/// Set on identities whose password was generated: they may only change it (or log out).
#[derive(Clone, Copy)]
pub struct MustChangePassword;

/// Whether a page request comes from a script that asked for JSON (`Accept: application/json`
/// and not HTML): its errors are then answered as in the API, not as a page.
pub fn wants_json(headers: &header::HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

/// Query of a comparison (the page and the API).
#[derive(serde::Deserialize)]
pub struct CompareQuery {
    /// The older release.
    pub from: String,
    /// The newer release.
    pub to: String,
}
