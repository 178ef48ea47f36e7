//! Who is on the other end of a request: address, scheme, browser, request id.
//! Forwarded headers are believed only from configured trusted proxies.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::dev::ServiceRequest;
use actix_web::HttpMessage;

use crate::audit::Source;

/// Facts about the client, computed once per request by the access guard.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's address.
    pub ip: IpAddr,
    /// Whether the browser reached us over HTTPS (directly or through a trusted proxy).
    pub https: bool,
    /// For the audit log.
    pub source: Source,
}

/// One `X-Forwarded-For` entry: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn parse_entry(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// The client a chain of trusted proxies saw: walking `X-Forwarded-For` from the right, the
/// first entry that is not a trusted proxy. An entry that cannot be read ends the walk with
/// nothing believed: whatever stands left of it was written by someone we cannot vouch for.
pub fn forwarded_client(header: &str, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    for entry in header.rsplit(',') {
        let ip = parse_entry(entry)?;
        if !trusted_proxies.contains(&ip) {
            return Some(ip);
        }
    }
    None
}

/// Longest User-Agent kept in the audit log and session list.
const MAX_USER_AGENT: usize = 256;

impl ClientInfo {
    /// Reads the request's socket and headers.
    pub fn of(req: &ServiceRequest, trusted_proxies: &[IpAddr]) -> Self {
        let peer = req
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let (ip, https) = if trusted_proxies.contains(&peer) {
            let forwarded =
                forwarded_client(header("x-forwarded-for").unwrap_or(""), trusted_proxies);
            let https =
                header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
            (forwarded.unwrap_or(peer), https)
        } else {
            (peer, req.app_config().secure())
        };
        let user_agent = header("user-agent").map(|ua| {
            ua.chars()
                .filter(|c| !c.is_control())
                .take(MAX_USER_AGENT)
                .collect::<String>()
        });
        let request_id = req
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string());
        Self {
            ip,
            https,
            source: Source {
                ip: Some(ip.to_string()),
                user_agent,
                request_id,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::web::client::*;

    #[test]
    fn forwarded_entries_with_ports_are_read_and_the_walk_stops_at_a_stranger() {
        let trusted: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let got = |h: &str| forwarded_client(h, &trusted).map(|ip| ip.to_string());
        assert_eq!(got("203.0.113.9"), Some("203.0.113.9".into()));
        // The attacker's entry to the left of the proxy's `ip:port` is not believed.
        assert_eq!(
            got("6.6.6.6, 198.51.100.7:51234"),
            Some("198.51.100.7".into())
        );
        assert_eq!(
            got("6.6.6.6, [2001:db8::5]:443"),
            Some("2001:db8::5".into())
        );
        assert_eq!(got("6.6.6.6, [2001:db8::6]"), Some("2001:db8::6".into()));
        // Trusted proxies are skipped, with or without ports.
        assert_eq!(
            got("198.51.100.7, 127.0.0.1:80, [::1]:8080"),
            Some("198.51.100.7".into())
        );
        // Something unreadable ends the walk: nothing to its left is believed.
        assert_eq!(got("6.6.6.6, garbage"), None);
        assert_eq!(got("6.6.6.6, unknown, 127.0.0.1"), None);
        assert_eq!(got(""), None);
    }
}
