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
            // The right-most address not itself a trusted proxy is the one the proxy saw.
            let forwarded = header("x-forwarded-for")
                .unwrap_or("")
                .rsplit(',')
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .find(|ip| !trusted_proxies.contains(ip));
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
