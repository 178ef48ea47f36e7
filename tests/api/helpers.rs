//! Test helpers: an in-process console on port 0 with its own data folder, browser-like
//! clients, and the real binary run as a child process (stopped by its process group).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cutover::app::{Application, Core};
use cutover::auth::password::Password;
use cutover::auth::Role;
use cutover::config::Settings;
use reqwest::redirect::Policy;
use tempfile::TempDir;

/// A running console and what a test needs to drive it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data folder (kept until the test ends).
    pub dir: TempDir,
    /// The generated first-run admin password.
    pub admin_password: String,
    /// Settings it runs with.
    pub settings: Settings,
    /// The private Apache's pid, when the app runs one.
    pub apache_pid: Option<i32>,
    handle: actix_web::dev::ServerHandle,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    apache: std::sync::Arc<cutover::apache::ApacheCtl>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops accepting; the runtime ends with the test anyway.
        drop(self.handle.stop(false));
        // Stop the console's task (and its Apache watcher) before stopping its Apache.
        if let Some(t) = self.task.take() {
            t.abort();
        }
        // The console's own stop, for good: a watcher or switch still running elsewhere cannot
        // start Apache again after it. On a thread of its own (this may be inside a runtime),
        // bounded: a start held up by the test's blocked runtime falls to the kills below.
        let apache = self.apache.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let stop = apache.stop();
                let _ = tokio::time::timeout(Duration::from_secs(10), stop).await;
            });
        })
        .join();
        if let Some(pid) = self.apache_pid.take() {
            kill_apache(pid);
        }
        let pidfile = self.settings.data_dir.join("apache/run/httpd.pid");
        if let Some(pid) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            kill_apache(pid);
        }
        if self.settings.data_dir.join("apache").exists() {
            stop_strays(&self.settings.data_dir);
        }
        stop_php(&self.settings.data_dir);
    }
}

/// Stops the console's private PHP-FPM under `data_dir`, if a test ended without the console's
/// own stop (a failed assertion): by the pid its pid file names, only when that process is
/// this test's master (its command line names this config), with its process group.
pub fn stop_php(data_dir: &Path) {
    let conf = data_dir.join("php/php-fpm.conf");
    let pidfile = data_dir.join("php/run/php-fpm.pid");
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains(&*conf.to_string_lossy()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Stops a private Apache we started: SIGTERM to its process group (it runs in its own
/// session), then SIGKILL if it is still there after a few seconds.
pub fn kill_apache(pid: i32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let group = Pid::from_raw(-pid);
    let _ = kill(group, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && kill(Pid::from_raw(pid), None).is_ok()
        && !crate::support::is_gone(pid)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(group, Signal::SIGKILL);
}

/// The processes running an Apache on the config under `data_dir` (its `-f` path is unique
/// to the test), found by that exact argument in /proc/PID/cmdline.
pub fn apaches_running(data_dir: &Path) -> Vec<i32> {
    let conf = data_dir.join("apache/httpd.conf");
    crate::support::pids_with_args("-f", &conf.to_string_lossy())
}

/// Stops any Apache still running on the config under `data_dir`. A start cut short — a
/// console task aborted while `apache2 -k start` ran — can leave one that no pid file named
/// when we looked. Stopped by PID; checked again briefly for one still starting.
pub fn stop_strays(data_dir: &Path) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let deadline = Instant::now() + Duration::from_millis(300);
    loop {
        for pid in apaches_running(data_dir) {
            // A daemonized Apache leads its own group (with its workers); a launcher does not.
            let me = Pid::from_raw(pid);
            if nix::unistd::getpgid(Some(me)).ok() == Some(me) {
                kill_apache(pid);
            } else {
                let _ = kill(me, Signal::SIGKILL);
            }
        }
        if Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The apache2 binary; tests that need it fail loudly without it.
pub fn apache_binary() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/apache2");
    assert!(p.is_file(), "/usr/sbin/apache2 is missing: these tests need a real Apache (the README's test command installs it)");
    p
}

pub use crate::support::free_port;

/// Settings for a throwaway console.
pub fn test_settings(dir: &Path) -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("data"),
        ..Default::default()
    };
    // Most tests need no Apache: a missing binary makes the console run without one.
    settings.apache.binary = PathBuf::from("/nonexistent/apache2");
    settings
}

/// Starts the real application in-process.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the real application in-process with adjusted settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    adjust(&mut settings);
    match start(dir, settings, None).await {
        Ok(app) => app,
        Err((_, why)) => panic!("app did not start: {why}"),
    }
}

/// Starts the app on `settings`; when it is configured with a real apache2, insists that its
/// private Apache runs.
async fn start(
    dir: TempDir,
    settings: Settings,
    admin_password: Option<String>,
) -> Result<TestApp, (TempDir, String)> {
    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let admin_password = app
        .first_run_password()
        .map(str::to_owned)
        .or(admin_password)
        .unwrap_or_default();
    let apache = app.apache();
    let apache_pid = apache.pid().await;
    let wants_apache = settings.apache.binary.is_file();
    let handle = app.handle();
    if wants_apache && apache_pid.is_none() {
        let why = app.warnings.join("; ");
        drop(handle.stop(false));
        return Err((dir, why));
    }
    let task = Some(tokio::spawn(app.run_until_stopped()));
    Ok(TestApp {
        base,
        dir,
        admin_password,
        settings,
        apache_pid,
        handle,
        task,
        apache,
    })
}

/// Starts the app with a private Apache on a free port (retrying when the port was taken).
pub async fn spawn_app_with_apache(adjust: impl Fn(&mut Settings)) -> TestApp {
    let binary = apache_binary();
    let mut dir = tempfile::tempdir().expect("temp dir");
    // Apache's workers (www-data when we are root) must pass through the test's folder.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut last = String::new();
    for _ in 0..10 {
        let mut settings = test_settings(dir.path());
        settings.apache.binary = binary.clone();
        settings.apache.listen = format!("127.0.0.1:{}", free_port());
        settings.apache.health_timeout_seconds = 5;
        adjust(&mut settings);
        match start(dir, settings, None).await {
            Ok(app) => return app,
            Err((d, why)) if why.contains("in use") => {
                dir = d;
                last = why;
            }
            Err((_, why)) => panic!("the private Apache did not start: {why}"),
        }
    }
    panic!("no free port for Apache after 10 tries: {last}");
}

impl TestApp {
    /// Stops the console the way SIGTERM would: the server, its watchers, then its Apache.
    pub async fn shutdown(mut self) {
        self.handle.stop(true).await;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Stops this console (and its Apache), then starts a new one on the same data folder.
    pub async fn restart(mut self) -> TestApp {
        let settings = self.settings.clone();
        let password = std::mem::take(&mut self.admin_password);
        self.handle.stop(true).await;
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(pid) = self.apache_pid.take() {
            kill_apache(pid);
        }
        let old_dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        match start(old_dir, settings, Some(password)).await {
            Ok(app) => app,
            Err((_, why)) => panic!("restart failed: {why}"),
        }
    }
}

impl TestApp {
    /// Opens the same database as the app (a second pool: WAL allows it).
    pub async fn core(&self) -> Core {
        Core::open(&self.settings).await.expect("core opens")
    }

    /// Creates a user with a known password, returns the password.
    pub async fn add_user(&self, name: &str, role: Role) -> String {
        let password = "swift amber kettle 9472".to_owned();
        self.core()
            .await
            .auth
            .create_user(
                "test",
                &Default::default(),
                name,
                role,
                Some(Password::new(password.clone())),
            )
            .await
            .expect("user created");
        password
    }

    /// Creates an API token for `name`.
    pub async fn token_for(&self, name: &str) -> String {
        self.core()
            .await
            .auth
            .create_token("test", &Default::default(), name, "test")
            .await
            .expect("token")
    }

    /// A new browser-like client (cookies kept, redirects not followed).
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// A browser logged in as `name`.
    pub async fn logged_in(&self, name: &str, password: &str) -> Browser {
        let b = self.browser();
        let res = b.login(name, password).await;
        assert_eq!(res.status(), 303, "log-in of {name} failed");
        b
    }

    /// An admin API token (made once per call; cheap).
    pub async fn admin_token(&self) -> String {
        self.token_for("admin").await
    }

    /// Creates a site through the API; panics unless 201.
    pub async fn create_site(&self, token: &str, body: serde_json::Value) -> serde_json::Value {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/sites", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST site");
        assert_eq!(res.status(), 201, "site creation failed");
        res.json().await.expect("site json")
    }

    /// Uploads archive bytes through the API.
    pub async fn upload(
        &self,
        token: &str,
        site: &str,
        file_name: &str,
        bytes: Vec<u8>,
        note: &str,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .part(
                "archive",
                reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
            )
            .text("note", note.to_owned());
        reqwest::Client::new()
            .post(format!("{}/api/v1/sites/{site}/releases", self.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// `<sites_root>/<site>`.
    pub fn site_dir(&self, site: &str) -> PathBuf {
        self.settings.sites_root().join(site)
    }

    /// A GET with a bearer token.
    pub async fn api_get(&self, path: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// A request with a bearer token and an optional JSON body: its status and JSON answer.
    pub async fn api_send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `POST …/releases/{id}/activate` of `site`.
    pub async fn activate(&self, token: &str, site: &str, id: &str) -> (u16, serde_json::Value) {
        let path = format!("/api/v1/sites/{site}/releases/{id}/activate");
        self.api_send(reqwest::Method::POST, &path, token, None)
            .await
    }

    /// `PATCH /api/v1/sites/{site}` with `body`.
    pub async fn patch_site(
        &self,
        token: &str,
        site: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let path = format!("/api/v1/sites/{site}");
        self.api_send(reqwest::Method::PATCH, &path, token, Some(body))
            .await
    }

    /// A GET through the private Apache for `host`, redirects not followed.
    pub async fn through_apache(&self, host: &str, path: &str) -> reqwest::Response {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(format!("http://{}{path}", self.settings.apache.listen))
            .header("Host", host)
            .send()
            .await
            .expect("Apache answers")
    }
}

/// A client that behaves like a browser for our purposes.
pub struct Browser {
    /// The reqwest client with a cookie store.
    pub client: reqwest::Client,
    /// Base URL.
    pub base: String,
}

/// The first `csrf_token` hidden field of a page (empty when there is none).
pub fn csrf_in(html: &str) -> String {
    crate::support::csrf_in(html).unwrap_or_default()
}

impl Browser {
    fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .expect("client");
        Self {
            client,
            base: base.to_owned(),
        }
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    /// GET a page and return its body.
    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    /// POST a form as is (the caller includes any CSRF token).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// POST a form with the session's CSRF token taken from the account page.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf().await;
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend_from_slice(form);
        self.post_form(path, &fields).await
    }

    /// The session's CSRF token.
    pub async fn csrf(&self) -> String {
        csrf_in(&self.page("/account").await)
    }

    /// Logs in through the form; returns the POST's answer.
    pub async fn login(&self, name: &str, password: &str) -> reqwest::Response {
        let form = self.page("/login").await;
        // Already logged in, /login redirects: a new log-in then carries the session's token.
        let token = match csrf_in(&form) {
            t if t.is_empty() => self.csrf().await,
            t => t,
        };
        assert!(!token.is_empty(), "log-in form has a CSRF token");
        self.post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("user_name", name),
                ("password", password),
            ],
        )
        .await
    }
}

/// Polls `f` until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The real `cutover` binary.
pub fn cutover_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cutover"))
}

/// A child process in its own process group, killed (group and all) when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Spawns `cmd` in a new process group.
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.process_group(0);
        Self(cmd.spawn().expect("spawn child"))
    }

    /// Sends SIGTERM to the group and waits for the exit status (bounded).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pgid = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.0.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "child did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pgid = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
            let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = self.0.wait();
        }
    }
}

/// Runs a CLI command against a config file; returns (success, stdout, stderr).
pub fn run_cli(config: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(cutover_bin());
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn cutover");
    if let Some(input) = stdin {
        // The command may refuse before reading (e.g. a bad role): a closed pipe is fine.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait cutover");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Uploads the archive at `path` (`size` bytes) to `site` through the API, streamed from
/// disk as a script would send it.
pub async fn stream_upload(
    base: &str,
    token: &str,
    site: &str,
    path: &Path,
    size: u64,
) -> reqwest::Response {
    let file = tokio::fs::File::open(path).await.unwrap();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let form = reqwest::multipart::Form::new().part(
        "archive",
        reqwest::multipart::Part::stream_with_length(body, size).file_name(name),
    );
    reqwest::Client::new()
        .post(format!("{base}/api/v1/sites/{site}/releases"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}
