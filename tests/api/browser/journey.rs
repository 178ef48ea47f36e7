//! The journeys: what a person does in the browser, step by step, with what they must see.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover::auth::Role;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::Client;
use serde_json::{json, Value};

use crate::archives::targz;
use crate::browser::checks::page_ok;
use crate::browser::driver::{
    cdp, click_to, find, open, screenshot, screenshot_dir, throttle_upload, wait_js, Chromedriver,
    Viewport,
};
use crate::helpers::{eventually, spawn_app_with_apache, TestApp};

const SITE: &str = "shop";
const HOST: &str = "shop.example.test";
const RELEASE_PAGE: &str = "^/sites/shop/releases/[^/]+$";
/// Upload speed while the progress bar is watched: the 6 MB archive takes about 2 s.
const SLOW_UPLOAD: u64 = 3_000_000;

/// A console with its Apache, a site, a known admin, a browser session, screenshots.
/// Fields drop in this order, also on panic: the browser and its driver (killed as a process
/// group), then its profile folder, then the console and its Apache.
struct Run {
    c: Client,
    _driver: Chromedriver,
    /// Archives, the browser profile, chromedriver's log.
    work: tempfile::TempDir,
    app: TestApp,
    vp: Viewport,
    password: String,
    shots: PathBuf,
    step: u32,
    /// Pages seen (GET addresses), for the narrow-phone sweep.
    visited: Vec<String>,
}

impl Run {
    async fn start(vp: Viewport, javascript: bool, folder: &str) -> Run {
        let app = spawn_app_with_apache(|_| {}).await;
        let password = app.add_user("boss", Role::Admin).await;
        let token = app.token_for("boss").await;
        app.create_site(&token, json!({"name": SITE, "server_name": HOST}))
            .await;
        let work = tempfile::tempdir().expect("work dir");
        let driver = Chromedriver::start(&work.path().join("chromedriver.log")).await;
        let c = driver
            .session(vp, javascript, &work.path().join("profile"))
            .await;
        Run {
            app,
            c,
            vp,
            password,
            work,
            shots: screenshot_dir(folder),
            step: 0,
            visited: Vec::new(),
            _driver: driver,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }

    /// Checks the page shown (layout, touch targets, text, labels, contrast) and saves its
    /// screenshot as the next step.
    async fn step(&mut self, name: &str) {
        page_ok(&self.c, name).await;
        self.shoot(name).await;
        let url = self.c.current_url().await.expect("url").to_string();
        if !self.visited.contains(&url) {
            self.visited.push(url);
        }
    }

    async fn shoot(&mut self, name: &str) {
        self.step += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.step));
        screenshot(&self.c, &path).await;
    }

    async fn text(&self, css: &str) -> String {
        find(&self.c, css).await.text().await.expect("text")
    }

    async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.expect("script runs")
    }

    /// Writes an archive to the work folder, for the file picker.
    fn archive(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.work.path().join(name);
        std::fs::write(&path, bytes).expect("archive written");
        path
    }

    async fn log_in_with_taps(&mut self, then: &str) {
        find(&self.c, "#user_name")
            .await
            .send_keys("boss")
            .await
            .unwrap();
        find(&self.c, "#password")
            .await
            .send_keys(&self.password)
            .await
            .unwrap();
        click_to(
            &self.c,
            "main form[action='/login'] button[type=submit]",
            then,
        )
        .await;
    }

    async fn log_out(&mut self) {
        click_to(&self.c, "nav form[action='/logout'] button", "^/login$").await;
    }

    /// Picks a file with the file picker (or drops it on the upload box) and sends it.
    async fn choose_file(&self, path: &Path, drop: bool) {
        if drop {
            let bytes = std::fs::read(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            drop_file(&self.c, &bytes, &name).await;
        } else {
            find(&self.c, "#archive")
                .await
                .send_keys(&path.display().to_string())
                .await
                .expect("file chosen");
        }
    }

    /// Uploads from the site page: progress bar while sending, then the new release's page
    /// with its Go live button. Returns the release id.
    async fn upload(&mut self, path: &Path, note: &str, drop: bool, watch: bool) -> String {
        self.choose_file(path, drop).await;
        find(&self.c, "#note").await.send_keys(note).await.unwrap();
        if watch {
            throttle_upload(&self.c, Some(SLOW_UPLOAD)).await;
        }
        crate::browser::driver::mark(&self.c).await;
        find(&self.c, "#upload-button").await.click().await.unwrap();
        if watch {
            // The bar shows percent and bytes while the file is on its way.
            let shown = wait_js(
                &self.c,
                Duration::from_secs(20),
                "the upload progress bar",
                "(() => { const f = document.getElementById('upload-form'); \
                   const bar = document.getElementById('upload-bar'); \
                   return f && f.dataset.uploadState === 'sending' && bar.getBoundingClientRect().height > 0 \
                     && Number(bar.value) > 0 && Number(bar.value) < 100 \
                     && [document.getElementById('upload-phase').textContent, \
                         document.getElementById('upload-bytes').textContent]; })()",
            )
            .await;
            let (phase, bytes) = (shown[0].as_str().unwrap(), shown[1].as_str().unwrap());
            assert!(phase.starts_with("Sending "), "phase shown: {phase}");
            assert!(
                regex::Regex::new(r"^\d+% · [\d.]+ (bytes|kB|MB) of [\d.]+ MB$")
                    .unwrap()
                    .is_match(bytes),
                "percent and bytes shown: {bytes}"
            );
            page_ok(&self.c, "uploading").await;
            self.shoot("uploading").await;
        }
        crate::browser::driver::wait_new_page(&self.c, RELEASE_PAGE).await;
        if watch {
            throttle_upload(&self.c, None).await;
        }
        self.step("uploaded-release").await;
        assert!(
            self.text(".notice").await.contains("ready to go live"),
            "upload notice"
        );
        let id = self.text("h1 code").await;
        assert!(self.text("#go-live").await.contains("Go live"));
        id
    }

    /// From a release page: Go live → confirmation → result.
    async fn go_live(&mut self, id: &str, content: &str) {
        click_to(&self.c, "#go-live", "^/sites/shop/releases/[^/]+/activate$").await;
        self.step("confirm-go-live").await;
        assert!(self.text("h1").await.contains(id));
        click_to(
            &self.c,
            "main .confirm form button[type=submit]",
            "^/sites/shop/releases/[^/]+/activate$",
        )
        .await;
        self.step("went-live").await;
        assert_eq!(
            find(&self.c, "[data-outcome]")
                .await
                .attr("data-outcome")
                .await
                .unwrap()
                .as_deref(),
            Some("ok"),
            "go live worked: {}",
            self.text("main").await
        );
        served_eventually(&self.app, content).await;
    }

    /// Leaves no page of the site unchecked: every other page, and an error page.
    async fn visit_other_pages(&mut self, first: &str, second: &str) {
        let pages = [
            ("/account", "^/account$", "account"),
            ("/audit", "^/audit$", "audit-log"),
            // Filtering: the filter box is open on phones too, so its controls are checked.
            ("/audit?outcome=ok", "^/audit$", "audit-log-filtered"),
            ("/admin/users", "^/admin/users$", "users"),
            ("/admin/users/boss", "^/admin/users/boss$", "user"),
            ("/sites/new", "^/sites/new$", "add-site"),
            (
                "/sites/shop/settings",
                "^/sites/shop/settings$",
                "site-settings",
            ),
            (
                "/sites/shop/config",
                "^/sites/shop/config$",
                "apache-config",
            ),
        ];
        for (path, pattern, name) in pages {
            open(&self.c, &self.url(path), pattern).await;
            self.step(name).await;
        }
        let compare = format!("/sites/shop/compare?from={first}&to={second}");
        open(&self.c, &self.url(&compare), "^/sites/shop/compare$").await;
        self.step("compare").await;
        // An error keeps the layout and offers the way back.
        open(
            &self.c,
            &self.url("/sites/shop/releases/no-such-release"),
            "^/sites/shop/releases/no-such-release$",
        )
        .await;
        self.step("error-not-found").await;
        assert!(self.text("main .actions").await.contains("Back to shop"));
    }
}

/// What Apache serves for the site right now.
async fn served(app: &TestApp) -> Option<String> {
    let res = reqwest::Client::new()
        .get(format!("http://{}/", app.settings.apache.listen))
        .header("Host", HOST)
        .send()
        .await
        .ok()?;
    res.text().await.ok()
}

async fn served_eventually(app: &TestApp, content: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("Apache serving {content:?}"),
        || async { served(app).await.filter(|b| b.contains(content)) },
    )
    .await;
}

/// Incompressible bytes (xorshift), so the archive is as big as its content.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn release(title: &str, extra: usize) -> Vec<u8> {
    let page = format!("<!doctype html><title>{title}</title><h1>{title}</h1>");
    let blob = noise(extra, 0x9e37_79b9_7f4a_7c15 ^ extra as u64);
    targz(&[("index.html", page.as_bytes()), ("assets/blob.bin", &blob)])
}

/// Drops a file on the upload box the way a browser does (DragEvents carrying a DataTransfer).
async fn drop_file(c: &Client, bytes: &[u8], name: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let got = c
        .execute(
            "const [b64, name] = arguments;
             const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
             const dt = new DataTransfer();
             dt.items.add(new File([bytes], name, { type: 'application/gzip' }));
             const zone = document.getElementById('dropzone');
             const fire = (type) => zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
             fire('dragenter'); fire('dragover');
             const highlighted = zone.classList.contains('dragging');
             fire('drop');
             const input = document.getElementById('archive');
             return [highlighted, input.files.length ? input.files[0].name : null];",
            vec![json!(b64), json!(name)],
        )
        .await
        .expect("drop script");
    assert_eq!(
        got[0],
        json!(true),
        "the box lights up while a file is dragged over it"
    );
    assert_eq!(got[1], json!(name), "the dropped file is the one chosen");
}

/// Presses a key (keyboard use, not a tap).
async fn press(c: &Client, key: Key) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key.into() })
        .then(KeyAction::Up { value: key.into() });
    c.perform_actions(keys).await.expect("key press");
}

/// Tabs through the page until `css` has the focus, checking that each focused element shows
/// a focus ring.
async fn tab_to(c: &Client, css: &str) {
    for _ in 0..60 {
        press(c, Key::Tab).await;
        let v = c
            .execute(
                "const el = document.activeElement; const s = getComputedStyle(el);
                 return [el.matches(arguments[0]), s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
                         el.tagName + '#' + el.id + ' ' + (el.innerText || '').slice(0, 30)];",
                vec![json!(css)],
            )
            .await
            .expect("focus");
        assert_eq!(v[1], json!(true), "no visible focus on {}", v[2]);
        if v[0] == json!(true) {
            return;
        }
    }
    panic!("{css} cannot be reached with the Tab key");
}

/// Log in → upload (progress) → go live → a refused archive → a second release → log out,
/// then from the site's address: log in and roll back in at most three taps (or with the
/// keyboard on the desktop), every page checked and photographed.
pub async fn release_and_roll_back(vp: Viewport) {
    let mut run = Run::start(vp, true, vp.name).await;

    open(&run.c, &run.url("/login"), "^/login$").await;
    run.step("login").await;
    run.log_in_with_taps("^/$").await;
    run.step("sites").await;

    click_to(&run.c, "main a.button[href='/sites/shop']", "^/sites/shop$").await;
    run.step("site-empty").await;
    assert!(run.text(".live").await.contains("Nothing is live"));

    // First release: big enough (6 MB of noise) for progress events to be watched.
    let big = run.archive("shop-1.tar.gz", &release("Release one", 6_000_000));
    let first = run.upload(&big, "First release", false, true).await;
    run.go_live(&first, "Release one").await;

    // A file that is not an archive: refused, with the reason in plain words, on the page.
    click_to(&run.c, "main .back a", "^/sites/shop$").await;
    let bad = run.archive("notes.tar.gz", b"these are notes, not an archive");
    run.choose_file(&bad, false).await;
    find(&run.c, "#upload-button").await.click().await.unwrap();
    let refusal = wait_js(
        &run.c,
        Duration::from_secs(20),
        "the refusal",
        "!document.getElementById('upload-error').hidden && document.getElementById('upload-error').innerText",
    )
    .await;
    let refusal = refusal.as_str().unwrap();
    assert!(
        refusal.contains("The archive was refused") && refusal.contains("Upload a .zip"),
        "refusal says why and what to do: {refusal}"
    );
    run.step("upload-refused").await;

    // Second release: dropped on the box on the desktop, picked on the phone.
    run.c.refresh().await.unwrap();
    crate::browser::driver::wait_new_page(&run.c, "^/sites/shop$").await;
    let small = run.archive("shop-2.tar.gz", &release("Release two", 1000));
    let second = run.upload(&small, "Second release", !vp.phone, false).await;
    run.go_live(&second, "Release two").await;

    run.visit_other_pages(&first, &second).await;

    // Roll back, starting from the site's address (a bookmark) while logged out.
    run.log_out().await;
    open(&run.c, &run.url("/sites/shop"), "^/login$").await;
    let mut taps = 0;
    if vp.phone {
        run.log_in_with_taps("^/sites/shop$").await;
        taps += 1;
    } else {
        find(&run.c, "#user_name")
            .await
            .send_keys("boss")
            .await
            .unwrap();
        let pw = format!("{}{}", run.password, char::from(Key::Enter));
        crate::browser::driver::mark(&run.c).await;
        find(&run.c, "#password")
            .await
            .send_keys(&pw)
            .await
            .unwrap();
        crate::browser::driver::wait_new_page(&run.c, "^/sites/shop$").await;
    }
    run.step("site-live").await;
    let live = run.text(".live").await;
    assert!(
        live.contains(&second) && live.contains("Second release"),
        "{live}"
    );
    assert!(
        live.contains("Put live by") && live.contains("boss"),
        "{live}"
    );
    assert!(
        live.contains(" ago") || live.contains("just now"),
        "local time with 'ago': {live}"
    );
    let button = run.text("#rollback").await;
    assert!(
        button.contains(&format!("Roll back to {first}")),
        "{button}"
    );
    assert!(
        live.contains("First release") && live.contains("live until"),
        "{live}"
    );
    // Prominent: on the first screen, without scrolling.
    let bottom = run
        .js("return document.getElementById('rollback').getBoundingClientRect().bottom <= window.innerHeight")
        .await;
    assert_eq!(
        bottom,
        json!(true),
        "the Roll back button is on the first screen"
    );

    if vp.phone {
        click_to(&run.c, "#rollback", "^/sites/shop/rollback$").await;
        taps += 1;
    } else {
        crate::browser::driver::mark(&run.c).await;
        tab_to(&run.c, "#rollback").await;
        press(&run.c, Key::Enter).await;
        crate::browser::driver::wait_new_page(&run.c, "^/sites/shop/rollback$").await;
    }
    run.step("confirm-rollback").await;
    let confirm = run.text("main .confirm").await;
    assert!(
        confirm.contains(&second) && confirm.contains(&first),
        "the confirmation names both releases: {confirm}"
    );
    if vp.phone {
        click_to(
            &run.c,
            "main .confirm form button[type=submit]",
            "^/sites/shop/rollback$",
        )
        .await;
        taps += 1;
        assert!(taps <= 3, "{taps} taps from log-in to a finished rollback");
    } else {
        crate::browser::driver::mark(&run.c).await;
        tab_to(&run.c, "main .confirm form button[type=submit]").await;
        press(&run.c, Key::Enter).await;
        crate::browser::driver::wait_new_page(&run.c, "^/sites/shop/rollback$").await;
    }
    run.step("rolled-back").await;
    assert!(run.text("h1").await.contains("Rolled back"));
    let steps = run
        .js("return [...document.querySelectorAll('.steps li')].map(li => li.innerText)")
        .await;
    let steps: Vec<&str> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let timed = regex::Regex::new(r"^ok .+ \d+(\.\d)? (ms|s)").unwrap();
    assert!(steps.len() >= 3, "steps: {steps:?}");
    assert!(
        steps.iter().all(|s| timed.is_match(s)),
        "steps with durations: {steps:?}"
    );
    served_eventually(&run.app, "Release one").await;

    click_to(&run.c, "main .actions a.button.primary", "^/sites/shop$").await;
    run.step("site-after-rollback").await;
    assert!(run.text(".live").await.contains(&first));

    if vp.phone {
        narrowest_phone(&mut run).await;
    }
    run.c.clone().close().await.expect("session closed");
}

/// Every page seen, again at 360 px (the narrowest phone we support), and the log-in page.
async fn narrowest_phone(run: &mut Run) {
    // chromedriver applies its own emulation at each navigation: narrow the page after it.
    async fn narrow(c: &Client) {
        cdp(
            c,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 360, "height": 640, "deviceScaleFactor": 1, "mobile": true}),
        )
        .await;
        wait_js(
            c,
            Duration::from_secs(5),
            "a 360 px viewport",
            "window.innerWidth === 360",
        )
        .await;
    }
    let pages = run.visited.clone();
    for url in pages {
        run.c.goto(&url).await.expect("page opens");
        narrow(&run.c).await;
        page_ok(&run.c, &format!("{url} at 360 px")).await;
    }
    run.log_out().await;
    narrow(&run.c).await;
    page_ok(&run.c, "login at 360 px").await;
    run.shots = run.shots.with_file_name(format!("{}-at-360", run.vp.name));
    let _ = std::fs::remove_dir_all(&run.shots);
    std::fs::create_dir_all(&run.shots).expect("screenshot folder");
    run.shoot("login").await;
}

/// The critical actions as plain form posts, with JavaScript switched off in the browser:
/// log in, upload (and a refused archive), go live, roll back.
pub async fn without_javascript(vp: Viewport) {
    let folder = format!("{}-no-javascript", vp.name);
    let mut run = Run::start(vp, false, &folder).await;
    open(&run.c, &run.url("/sites/shop"), "^/login$").await;
    run.step("login").await;
    run.log_in_with_taps("^/sites/shop$").await;
    run.step("site-empty").await;
    // The page's script did not run: times are still as the server wrote them.
    let raw = run
        .js("return [...document.querySelectorAll('time')].every(t => t.textContent === t.getAttribute('datetime'))")
        .await;
    assert_eq!(raw, json!(true), "JavaScript is off in this browser");

    let mut ids = Vec::new();
    for (n, title) in ["Release one", "Release two"].iter().enumerate() {
        let path = run.archive(&format!("shop-{n}.tar.gz"), &release(title, 1000));
        run.choose_file(&path, false).await;
        find(&run.c, "#note").await.send_keys(title).await.unwrap();
        click_to(&run.c, "#upload-button", RELEASE_PAGE).await;
        run.step("uploaded-release").await;
        let id = run.text("h1 code").await;
        run.go_live(&id, title).await;
        click_to(&run.c, "main .back a", "^/sites/shop$").await;
        ids.push(id);
    }

    // A refused archive: an error page in the layout, with the reason and the way back.
    let bad = run.archive("notes.zip", b"not a zip at all");
    run.choose_file(&bad, false).await;
    click_to(&run.c, "#upload-button", "^/sites/shop/releases$").await;
    run.step("upload-refused").await;
    assert!(run.text("h1").await.contains("The archive was refused"));
    assert!(run.text(".reason").await.contains("Upload a .zip"));
    click_to(&run.c, "main .actions a.button.primary", "^/sites/shop$").await;

    run.step("site-live").await;
    assert!(run.text("#rollback").await.contains(&ids[0]));
    click_to(&run.c, "#rollback", "^/sites/shop/rollback$").await;
    run.step("confirm-rollback").await;
    click_to(
        &run.c,
        "main .confirm form button[type=submit]",
        "^/sites/shop/rollback$",
    )
    .await;
    run.step("rolled-back").await;
    assert!(run.text("h1").await.contains("Rolled back"));
    served_eventually(&run.app, "Release one").await;
    run.c.clone().close().await.expect("session closed");
}
