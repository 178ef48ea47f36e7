//! The health check: a request through Apache with the site's Host header, until it answers
//! 2xx from the new release or the time is up.

use std::time::{Duration, Instant};

/// Header the pinned vhost sets, naming the release that served the response.
pub const RELEASE_HEADER: &str = "x-cutover-release";
/// Header every site's vhost sets, naming the site (see `apache::vhost::SITE_HEADER`).
pub const SITE_HEADER: &str = "x-cutover-site";

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

/// GETs `base + path` with `Host: host` until a 2xx comes back from `site`'s own vhost (and
/// from `release` when given): right after a graceful reload an old worker may still answer
/// for a moment, from a configuration without the site (another vhost's 404) or with its
/// previous settings.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    client: &reqwest::Client,
    base: &str,
    (site, host): (&str, &str),
    path: &str,
    release: Option<&str>,
    key: Option<&str>,
    within: Duration,
) -> Verdict {
    let deadline = Instant::now() + within;
    let url = format!("{}{path}", base.trim_end_matches('/'));
    loop {
        let mut request = client.get(&url).header(reqwest::header::HOST, host);
        if let Some(key) = key {
            // Lets the check through the site's maintenance page to the release itself.
            request = request.header(crate::apache::serving::HEALTH_KEY_HEADER, key);
        }
        let attempt = request.timeout(Duration::from_secs(3)).send().await;
        let last = match attempt {
            Ok(res) => {
                let status = res.status();
                let served_by = res
                    .headers()
                    .get(RELEASE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let ours = res
                    .headers()
                    .get(SITE_HEADER)
                    .is_some_and(|v| v.as_bytes() == site.as_bytes());
                let from_new = ours && (release.is_none() || served_by.as_deref() == release);
                if from_new && status.is_success() {
                    if let Some(why) = php_source(res).await {
                        return Verdict {
                            healthy: false,
                            detail: format!("{path} answered {status} with {why}"),
                        };
                    }
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

/// Content types servers give PHP source files.
const PHP_SOURCE_TYPES: [&str; 5] = [
    "application/x-httpd-php",
    "application/x-php",
    "text/x-php",
    "application/x-httpd-php-source",
    "application/php",
];

/// Why an answer is PHP source rather than a page, if it is: a PHP page that was sent
/// instead of run must never pass, whatever its status.
async fn php_source(res: reqwest::Response) -> Option<&'static str> {
    let ty = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if PHP_SOURCE_TYPES.iter().any(|t| ty.starts_with(t)) {
        return Some("the type of PHP source code: Apache sent the file instead of running it");
    }
    // The first bytes are enough; a large page is not read whole.
    let mut res = res;
    let mut head = Vec::new();
    while head.len() < 64 {
        match res.chunk().await {
            Ok(Some(c)) => head.extend_from_slice(&c),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    text.get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("<?php"))
        .then_some("PHP source code: Apache sent the file instead of running it")
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
            serve("HTTP/1.1 200 OK\r\nX-Cutover-Site: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into())
                .await;
        let moved = serve(format!(
            "HTTP/1.1 301 Moved\r\nX-Cutover-Site: x\r\nLocation: http://127.0.0.1:{ok}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
        .await;
        let base = format!("http://127.0.0.1:{moved}");
        let v = check(
            &client().unwrap(),
            &base,
            ("x", "x.test"),
            "/",
            None,
            None,
            Duration::from_millis(300),
        )
        .await;
        assert!(!v.healthy, "{v:?}");
        // What the CLI used before: reqwest's default client follows it, and passes.
        let v = check(
            &reqwest::Client::new(),
            &base,
            ("x", "x.test"),
            "/",
            None,
            None,
            Duration::from_millis(300),
        )
        .await;
        assert!(v.healthy, "{v:?}");
    }

    #[tokio::test]
    async fn an_answer_from_a_configuration_without_the_site_is_waited_past() {
        // Another vhost's 404 (an old generation without the site), then a 200 that is not the
        // site's: neither ends the check, which waits for the site's own answer.
        for answer in [
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Cutover-Site: other\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        ] {
            let port = serve(answer.into()).await;
            let base = format!("http://127.0.0.1:{port}");
            let v = check(&client().unwrap(), &base, ("x", "x.test"), "/", None, None, Duration::from_millis(300)).await;
            assert!(!v.healthy && v.detail.contains("no healthy answer within"), "{v:?}");
        }
    }

    #[tokio::test]
    async fn php_source_never_passes() {
        for answer in [
            "HTTP/1.1 200 OK\r\nX-Cutover-Site: x\r\nContent-Type: text/html\r\nContent-Length: 22\r\nConnection: close\r\n\r\n\n  <?PHP echo 'hi'; ?>\n",
            "HTTP/1.1 200 OK\r\nX-Cutover-Site: x\r\nContent-Type: application/x-httpd-php\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        ] {
            let port = serve(answer.into()).await;
            let base = format!("http://127.0.0.1:{port}");
            let v = check(&client().unwrap(), &base, ("x", "x.test"), "/", None, None, Duration::from_millis(300)).await;
            assert!(!v.healthy && v.detail.contains("PHP source"), "{v:?}");
        }
    }
}
