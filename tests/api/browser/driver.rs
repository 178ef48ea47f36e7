//! Headless Chromium through chromedriver: the driver process (stopped by its process group
//! when dropped, panics included), a session with an exact viewport, Chrome DevTools commands
//! through chromedriver, full-page screenshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::{free_port, ChildGuard};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A viewport the tests run at.
#[derive(Clone, Copy, Debug)]
pub struct Viewport {
    /// Folder name for screenshots.
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    /// Phone: touch, `mobile` layout (the viewport meta tag applies).
    pub phone: bool,
}

pub const PHONE: Viewport = Viewport {
    name: "phone-390x844",
    width: 390,
    height: 844,
    phone: true,
};

pub const DESKTOP: Viewport = Viewport {
    name: "desktop-1280x800",
    width: 1280,
    height: 800,
    phone: false,
};

/// A running chromedriver on 127.0.0.1, in its own process group.
pub struct Chromedriver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Dropped last: kills the group.
    _child: ChildGuard,
}

impl Chromedriver {
    /// Starts chromedriver on a free port and waits until it answers `/status`.
    pub async fn start(log: &Path) -> Chromedriver {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(bin).is_file(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver \
                 (the README's test command, bash .ci/test.sh, installs them)"
            );
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(CHROMEDRIVER);
            cmd.arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = ChildGuard::spawn(cmd);
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.0.try_wait() {
                    last = format!("chromedriver exited with {status} (port {port} taken?)");
                    break;
                }
                let ready = reqwest::get(format!("{url}/status"))
                    .await
                    .ok()
                    .filter(|r| r.status().is_success());
                if ready.is_some() {
                    return Chromedriver { url, _child: child };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if last.is_empty() {
                last = "chromedriver did not answer within 15 s".into();
            }
        }
        panic!("chromedriver did not start: {last}");
    }

    /// Opens a Chromium session at `viewport` (JavaScript on or off), with a fresh profile.
    pub async fn session(&self, viewport: Viewport, javascript: bool, profile: &Path) -> Client {
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-breakpad".into(),
            "--disable-crash-reporter".into(),
            "--hide-scrollbars".into(),
            format!(
                "--window-size={},{}",
                viewport.width + 100,
                viewport.height + 200
            ),
            format!("--user-data-dir={}", profile.display()),
        ];
        // Names resolve nowhere: the console and Apache are reached by address, on 127.0.0.1.
        args.push("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1".into());
        args.push("--lang=en-GB".into());
        let mut options = json!({
            "binary": CHROMIUM,
            "args": args,
            // Exact CSS viewport, whatever the headless window's own size.
            // Touch emulation only with JavaScript: with it off, chromedriver's taps on a
            // submit button never finish (the form is not sent); mouse clicks work.
            "mobileEmulation": {"deviceMetrics": {
                "width": viewport.width, "height": viewport.height, "pixelRatio": 1,
                "mobile": viewport.phone, "touch": viewport.phone && javascript,
            }},
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session starts")
    }
}

/// A Chrome DevTools command, sent through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
pub struct Cdp(pub &'static str, pub Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.0, "params": self.1});
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Sends a DevTools command; panics when it fails.
pub async fn cdp(c: &Client, cmd: &'static str, params: Value) -> Value {
    c.issue_cmd(Cdp(cmd, params))
        .await
        .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
}

/// Slows uploads down to `bytes_per_second` (None: full speed), so progress can be watched.
pub async fn throttle_upload(c: &Client, bytes_per_second: Option<u64>) {
    cdp(c, "Network.enable", json!({})).await;
    let up = bytes_per_second.map_or(-1.0, |b| b as f64);
    cdp(
        c,
        "Network.emulateNetworkConditions",
        json!({"offline": false, "latency": 0, "downloadThroughput": -1.0, "uploadThroughput": up}),
    )
    .await;
}

/// Where the screenshots of `viewport` go: `target/screenshots/<viewport>/`, emptied first.
pub fn screenshot_dir(viewport: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots").join(viewport);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Saves a full-page PNG of what the browser shows now.
pub async fn screenshot(c: &Client, path: &Path) {
    use base64::Engine;
    let size = c
        .execute(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]",
            vec![],
        )
        .await
        .expect("page size");
    let (w, h) = (
        size[0].as_f64().unwrap_or(0.0),
        size[1].as_f64().unwrap_or(0.0),
    );
    let shot = cdp(
        c,
        "Page.captureScreenshot",
        json!({"format": "png", "captureBeyondViewport": true,
               "clip": {"x": 0, "y": 0, "width": w, "height": h.min(6000.0), "scale": 1}}),
    )
    .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("screenshot base64");
    std::fs::write(path, png).expect("screenshot written");
}

/// Finds an element or panics with what was looked for and where.
pub async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!("no element {css} on {url}: {e}")
        }
    }
}

/// Polls a JavaScript expression until it is truthy; returns its value.
pub async fn wait_js(c: &Client, within: Duration, what: &str, expr: &str) -> Value {
    let deadline = Instant::now() + within;
    let script = format!("return ({expr});");
    loop {
        // Errors while a page is being replaced are expected: poll again.
        if let Ok(v) = c.execute(&script, vec![]).await {
            let truthy =
                !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
        }
        if Instant::now() >= deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let text = c
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
                .unwrap_or_default();
            let text: String = text
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(600)
                .collect();
            panic!("timed out waiting for {what} (on {url}, which shows:\n{text})");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until a new page (not the one shown when `mark` was called) is loaded and its path
/// matches the regular expression `path`; returns the path.
pub async fn wait_new_page(c: &Client, path: &str) -> String {
    let expr = format!(
        "!window.__cutoverOldPage && document.readyState === 'complete' \
         && new RegExp({}).test(location.pathname) && location.pathname",
        json!(path)
    );
    wait_js(
        c,
        Duration::from_secs(30),
        &format!("a page at {path}"),
        &expr,
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Marks the current page, so [`wait_new_page`] knows when it has been replaced.
pub async fn mark(c: &Client) {
    c.execute("window.__cutoverOldPage = true;", vec![])
        .await
        .expect("mark the page");
}

/// Clicks (taps) `css`, then waits for the next page at `path`.
pub async fn click_to(c: &Client, css: &str, path: &str) -> String {
    mark(c).await;
    find(c, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    wait_new_page(c, path).await
}

/// Opens `url` and waits for the page at `path`.
pub async fn open(c: &Client, url: &str, path: &str) -> String {
    c.goto(url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    wait_new_page(c, path).await
}
