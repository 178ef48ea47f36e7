//! The health check: a request through Apache with the site's Host header, until it answers
//! 2xx from the new release or the time is up.

use std::time::{Duration, Instant};

/// Header the pinned vhost sets, naming the release that served the response.
pub const RELEASE_HEADER: &str = "x-cutover-release";

/// What the check saw.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// 2xx from the expected release.
    pub healthy: bool,
    /// One line for people and the audit log.
    pub detail: String,
}

/// GETs `base + path` with `Host: host` until a 2xx comes back (from `release` when given:
/// right after a graceful reload an old worker may still answer for a moment).
pub async fn check(
    client: &reqwest::Client,
    base: &str,
    host: &str,
    path: &str,
    release: Option<&str>,
    within: Duration,
) -> Verdict {
    let deadline = Instant::now() + within;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    loop {
        let attempt = client
            .get(&url)
            .header(reqwest::header::HOST, host)
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        let last = match attempt {
            Ok(res) => {
                let status = res.status();
                let served_by = res
                    .headers()
                    .get(RELEASE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let from_new = release.is_none() || served_by.as_deref() == release;
                if from_new && status.is_success() {
                    return Verdict {
                        healthy: true,
                        detail: format!("{path} answered {status}"),
                    };
                }
                let last = format!("{path} answered {status}");
                if from_new {
                    // The new release itself answers an error: no point waiting for it.
                    return Verdict {
                        healthy: false,
                        detail: last,
                    };
                }
                last
            }
            Err(e) => format!("{path} could not be fetched: {e}"),
        };
        if Instant::now() >= deadline {
            return Verdict {
                healthy: false,
                detail: format!("{last} (no healthy answer within {} s)", within.as_secs()),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
