//! CSRF defences: a per-session token in every state-changing form, and refusal of requests
//! the browser marks as cross-site.

use crate::auth::secret::hash_secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The form field and header that carry the token.
pub const FIELD: &str = "csrf_token";
/// Header alternative for scripts (uploads with progress).
pub const HEADER: &str = "x-csrf-token";

/// The CSRF token of a session, derived from its secret: stable for the session's life,
/// different for every session, and never stored.
pub fn token_for_session(session_secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(hash_secret("csrf", session_secret))
}

/// Whether the browser's own headers say the request came from another site.
/// `Sec-Fetch-Site` is trusted when present; otherwise `Origin` must name this host.
pub fn is_cross_site(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    host: Option<&str>,
) -> bool {
    if let Some(site) = sec_fetch_site {
        // "none" is a user typing the address or using a bookmark.
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or("");
            !authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::csrf::*;

    #[test]
    fn tokens_differ_per_session() {
        assert_ne!(token_for_session("a"), token_for_session("b"));
        assert_eq!(token_for_session("a"), token_for_session("a"));
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let host = Some("console.example:8080");
        assert!(!is_cross_site(None, None, host));
        assert!(!is_cross_site(
            Some("same-origin"),
            Some("http://console.example:8080"),
            host
        ));
        assert!(is_cross_site(Some("cross-site"), None, host));
        assert!(is_cross_site(Some("same-site"), None, host));
        assert!(is_cross_site(None, Some("http://evil.example"), host));
        assert!(is_cross_site(None, Some("null"), host));
        assert!(is_cross_site(
            None,
            Some("http://console.example:8080.evil"),
            host
        ));
    }
}
