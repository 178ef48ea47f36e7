//! The health check: a request through Apache with the site's Host header, until it answers
//! 2xx from the new release or the time is up.

use std::time::{Duration, Instant};

/// Header the pinned vhost sets, naming the release that served the response.
pub const RELEASE_HEADER: &str = "x-cutover-release";

/// The HTTP client of every health check (console and CLI alike): it never follows redirects,
/// so a 301 to the public host (still served by the old release) cannot pass a broken one.
pub fn client() -> anyhow::Result<reqwest::Client> {
    use anyhow::Context;
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the health check's HTTP client")
}

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

#[cfg(test)]
mod tests {
    use crate::golive::health::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers every connection with `answer`, for as long as the test runs.
    async fn serve(answer: String) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn a_redirect_to_a_healthy_page_does_not_pass() {
        let ok =
            serve("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into())
                .await;
        let moved = serve(format!(
            "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:{ok}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
        .await;
        let base = format!("http://127.0.0.1:{moved}");
        let v = check(
            &client().unwrap(),
            &base,
            "x.test",
            "/",
            None,
            Duration::from_millis(300),
        )
        .await;
        assert!(!v.healthy, "{v:?}");
        // What the CLI used before: reqwest's default client follows it, and passes.
        let v = check(
            &reqwest::Client::new(),
            &base,
            "x.test",
            "/",
            None,
            Duration::from_millis(300),
        )
        .await;
        assert!(v.healthy, "{v:?}");
    }
}
