//! Shared pieces of the benchmarks: a throwaway data folder, the real `cutover serve` binary
//! run as its own process (in its own process group, stopped by that group, also on panic
//! and Ctrl-C), users and tokens seeded through the library, statistics, `/proc` memory
//! readings and a few archive builders.
//!
//! Every bench includes this file with `mod common;` and uses only part of it.
#![allow(dead_code)]

pub mod load;
pub mod raw;
pub mod releases;
pub mod watch;

#[path = "../../tests/support/mod.rs"]
pub mod support;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use cutover::app::Core;
use cutover::auth::password::Password;
use cutover::auth::Role;
use cutover::config::Settings;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The password every bench user gets (passes the product's password rules).
pub const PASSWORD: &str = "swift amber kettle 9472";

// ---------------------------------------------------------------------------------------
// Processes: everything we start is registered by process group, so Ctrl-C and panics stop
// it by that group (never by name).
// ---------------------------------------------------------------------------------------

static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Temporary folders to remove on Ctrl-C (exiting skips their `Drop`).
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(pgid: i32) {
    GROUPS.lock().unwrap().push(pgid);
}

fn unregister(pgid: i32) {
    GROUPS.lock().unwrap().retain(|g| *g != pgid);
}

/// On Ctrl-C: SIGTERM every registered process group, a short grace, SIGKILL, remove the
/// temporary folders, exit 130.
/// (Panics are covered by the guards' `Drop`.)
pub fn stop_everything_on_ctrl_c() {
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            let groups = GROUPS.lock().unwrap().clone();
            eprintln!("interrupted: stopping {} process group(s)", groups.len());
            for g in &groups {
                let _ = kill(Pid::from_raw(-g), Signal::SIGTERM);
            }
            std::thread::sleep(Duration::from_secs(3));
            for g in &groups {
                let _ = kill(Pid::from_raw(-g), Signal::SIGKILL);
            }
            if std::env::var_os("KEEP_BENCH_DIR").is_none() {
                for d in DIRS.lock().unwrap().iter() {
                    let _ = std::fs::remove_dir_all(d);
                }
            }
            std::process::exit(130);
        }
    });
}

fn is_gone(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_err() || support::is_gone(pid)
}

/// SIGTERM to a process group, wait up to `grace` for its leader, then SIGKILL the group.
pub fn stop_group(pgid: i32, grace: Duration) {
    let _ = kill(Pid::from_raw(-pgid), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !is_gone(pgid) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(Pid::from_raw(-pgid), Signal::SIGKILL);
    unregister(pgid);
}

// ---------------------------------------------------------------------------------------
// The data folder and settings.
// ---------------------------------------------------------------------------------------

/// A temporary folder, mode 0755: Apache's workers (www-data when we are root) must pass
/// through it to reach the sites. Removed at the end unless `KEEP_BENCH_DIR` is set.
pub struct BenchDir(Option<tempfile::TempDir>);

impl BenchDir {
    /// A new folder under the system's temp folder.
    pub fn new(name: &str) -> Self {
        Self::new_in(name, &std::env::temp_dir())
    }

    /// A new folder under `base`.
    pub fn new_in(name: &str, base: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("cutover-bench-{name}-"))
            .tempdir_in(base)
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod 0755");
        DIRS.lock().unwrap().push(dir.path().to_path_buf());
        Self(Some(dir))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_BENCH_DIR").is_some() {
            let dir = self.0.take().unwrap().keep();
            eprintln!("kept {}", dir.display());
        }
    }
}

#[allow(unused_imports)]
pub use support::free_port;

/// Settings for a bench console under `dir`: with a private Apache, or without any.
pub fn settings(dir: &Path, with_apache: bool) -> Settings {
    let mut s = Settings {
        listen: format!("127.0.0.1:{}", free_port()),
        data_dir: dir.join("data"),
        ..Default::default()
    };
    s.session.secure_cookie = cutover::config::SecureCookie::Never;
    s.apache.listen = format!("127.0.0.1:{}", free_port());
    s.apache.health_timeout_seconds = 10;
    if !with_apache {
        // A missing binary: the console runs without Apache (nothing here needs it).
        s.apache.binary = PathBuf::from("/nonexistent/apache2");
    }
    s
}

/// The TOML file `cutover serve --config` reads, from the fields the benches set.
pub fn write_config(s: &Settings, path: &Path) -> anyhow::Result<()> {
    let text = format!(
        "listen = \"{}\"\ndata_dir = \"{}\"\n\n[session]\nsecure_cookie = \"never\"\n\n\
         [apache]\nlisten = \"{}\"\nbinary = \"{}\"\nhealth_timeout_seconds = {}\n",
        s.listen,
        s.data_dir.display(),
        s.apache.listen,
        s.apache.binary.display(),
        s.apache.health_timeout_seconds
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Creates users (role, password [`PASSWORD`]) through the library, before or while the
/// console runs (SQLite in WAL mode allows a second writer process).
pub async fn seed_users(s: &Settings, users: &[(&str, Role)]) -> anyhow::Result<()> {
    let core = Core::open(s).await?;
    for (name, role) in users {
        core.auth
            .create_user(
                "bench",
                &Default::default(),
                name,
                *role,
                Some(Password::new(PASSWORD.to_owned())),
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating {name}: {e}"))?;
    }
    core.pool.close().await;
    Ok(())
}

/// An API token for `user`.
pub async fn token(s: &Settings, user: &str) -> anyhow::Result<String> {
    let core = Core::open(s).await?;
    let t = core
        .auth
        .create_token("bench", &Default::default(), user, "bench")
        .await
        .map_err(|e| anyhow::anyhow!("token for {user}: {e}"))?;
    core.pool.close().await;
    Ok(t)
}

// ---------------------------------------------------------------------------------------
// The console as its own process.
// ---------------------------------------------------------------------------------------

/// `target/release/cutover serve` in its own process group, stopped (with its private
/// Apache) when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it runs with.
    pub settings: Settings,
    /// Its standard output and error.
    pub log: PathBuf,
    /// How long from spawning until `/healthz` answered.
    pub started_in: Duration,
    apache_pid: Option<i32>,
}

/// The release binary cargo built for this bench.
pub fn cutover_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cutover"))
}

impl Server {
    /// Starts the console on `settings` (written to `<dir>/cutover.toml`); with Apache
    /// configured, retries on other ports when Apache finds its port taken. `settings`
    /// is updated to what finally ran.
    pub async fn start(dir: &Path, settings: &mut Settings) -> anyhow::Result<Server> {
        let wants_apache = settings.apache.binary.is_file();
        let mut last = String::new();
        for attempt in 0..10 {
            if attempt > 0 {
                settings.listen = format!("127.0.0.1:{}", free_port());
                settings.apache.listen = format!("127.0.0.1:{}", free_port());
            }
            let config = dir.join("cutover.toml");
            write_config(settings, &config)?;
            let log = dir.join(format!("console-{attempt}.log"));
            let out = std::fs::File::create(&log)?;
            let mut cmd = Command::new(cutover_bin());
            cmd.arg("--config")
                .arg(&config)
                .arg("serve")
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .process_group(0);
            // Only the config file speaks: no CUTOVER_* variable of ours may leak in.
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("CUTOVER_") {
                    cmd.env_remove(k);
                }
            }
            let spawned = Instant::now();
            let child = cmd.spawn().context("spawning cutover serve")?;
            register(child.id() as i32);
            let mut server = Server {
                child,
                base: format!("http://{}", settings.listen),
                settings: settings.clone(),
                log: log.clone(),
                started_in: Duration::ZERO,
                apache_pid: None,
            };
            match server.wait_ready(Duration::from_secs(120)).await {
                Ok(apache) => {
                    server.started_in = spawned.elapsed();
                    if wants_apache && apache != "running" {
                        last = std::fs::read_to_string(&log).unwrap_or_default();
                        drop(server);
                        if last.contains("in use") {
                            continue;
                        }
                        bail!("the private Apache did not start:\n{last}");
                    }
                    if wants_apache {
                        server.apache_pid = server.read_apache_pid();
                        if let Some(pid) = server.apache_pid {
                            register(pid);
                        }
                    }
                    return Ok(server);
                }
                Err(e) => {
                    last = format!(
                        "{e:#}\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    drop(server);
                    if last.contains("in use") {
                        continue;
                    }
                    bail!("the console did not start: {last}");
                }
            }
        }
        bail!("no free ports after 10 tries: {last}")
    }

    /// Waits for `/healthz`; returns what it says of Apache.
    async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<String> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("cutover serve exited with {status}");
            }
            if let Ok(res) = client
                .get(format!("{}/healthz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                if res.status().is_success() {
                    let v: serde_json::Value = res.json().await?;
                    return Ok(v["apache"].as_str().unwrap_or("").to_owned());
                }
            }
            if Instant::now() > deadline {
                bail!("cutover serve did not answer /healthz within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The private Apache's pid (pid file, checked against `/proc/PID/cmdline`).
    fn read_apache_pid(&self) -> Option<i32> {
        let conf = self
            .settings
            .data_dir
            .canonicalize()
            .ok()?
            .join("apache/httpd.conf");
        let pid: i32 = std::fs::read_to_string(self.apache_dir().join("run/httpd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        support::has_args(pid, "-f", &conf.to_string_lossy()).then_some(pid)
    }

    /// The console's pid (for `/proc` readings).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The managed Apache's folder (`httpd.conf`, `sites/`, `logs/`, `run/`).
    pub fn apache_dir(&self) -> PathBuf {
        self.settings.data_dir.join("apache")
    }

    /// `127.0.0.1:PORT` of the private Apache.
    pub fn apache_addr(&self) -> std::net::SocketAddr {
        self.settings.apache.listen.parse().unwrap()
    }

    /// `<sites_root>/<site>`.
    pub fn site_dir(&self, site: &str) -> PathBuf {
        self.settings.sites_root().join(site)
    }

    /// Stops the console (SIGTERM to its group: it stops its Apache itself), then makes
    /// sure the Apache we saw is gone too (its own process group, since it daemonizes).
    pub fn stop(&mut self) {
        let pgid = self.child.id() as i32;
        if let Ok(None) = self.child.try_wait() {
            let _ = kill(Pid::from_raw(-pgid), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = kill(Pid::from_raw(-pgid), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        unregister(pgid);
        if let Some(pid) = self.apache_pid.take() {
            if !is_gone(pid) {
                stop_group(pid, Duration::from_secs(5));
            }
            unregister(pid);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// The console's API and pages.
// ---------------------------------------------------------------------------------------

/// A JSON POST with a bearer token; (status, body).
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut req = http.post(url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(serde_json::Value::Null)))
}

/// PATCHes `body` to `url`: (status, JSON answer).
pub async fn patch_json(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let res = http
        .patch(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(serde_json::Value::Null)))
}

/// Uploads archive bytes as a release; returns its id.
pub async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    site: &str,
    archive: Vec<u8>,
) -> anyhow::Result<String> {
    let form = reqwest::multipart::Form::new().part(
        "archive",
        reqwest::multipart::Part::bytes(archive).file_name("release.tar.gz"),
    );
    let res = http
        .post(format!("{base}/api/v1/sites/{site}/releases"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    if status != 201 {
        bail!("upload to {site} answered {status}: {body}");
    }
    Ok(body["id"].as_str().unwrap_or_default().to_owned())
}

#[allow(unused_imports)]
pub use support::csrf_in;

/// A browser-like client (cookies kept, redirects not followed).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Logs `client` in through the form; returns the POST's status (303 when it worked).
pub async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> anyhow::Result<u16> {
    let form = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let token = csrf_in(&form).context("the log-in form has no csrf_token")?;
    let res = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("user_name", user),
            ("password", password),
        ])
        .send()
        .await?;
    Ok(res.status().as_u16())
}

// ---------------------------------------------------------------------------------------
// Statistics.
// ---------------------------------------------------------------------------------------

/// Milliseconds, as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of unsorted samples (`p` in 0–100); NaN when empty.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// The median.
pub fn median(samples: &[f64]) -> f64 {
    percentile(samples, 50.0)
}

/// `p50 / p99 / max` of millisecond samples, as text.
pub fn dist(samples: &[f64]) -> String {
    format!(
        "p50 {:7.2} ms  p99 {:7.2} ms  max {:7.2} ms  (n={})",
        percentile(samples, 50.0),
        percentile(samples, 99.0),
        samples.iter().cloned().fold(f64::NAN, f64::max),
        samples.len()
    )
}

// ---------------------------------------------------------------------------------------
// Memory from /proc.
// ---------------------------------------------------------------------------------------

fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident memory now (VmRSS), KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// Peak resident memory since start or the last [`reset_peak`] (VmHWM), KiB.
pub fn peak_kib(pid: i32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`, Linux ≥ 4.0).
pub fn reset_peak(pid: i32) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/clear_refs"))
        .and_then(|mut f| f.write_all(b"5"))
        .is_ok()
}

/// Samples VmRSS of a process every few milliseconds on a thread, keeping the highest.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: i32) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            max.max(rss_kib(pid).unwrap_or(0))
        });
        Self { stop, thread }
    }

    /// Stops; the highest VmRSS seen, KiB.
    pub fn finish(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// KiB as MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------
// Archives and the machine.
// ---------------------------------------------------------------------------------------

#[allow(unused_imports)]
pub use support::archives::targz;

/// Deterministic pseudo-random bytes (xorshift64*), incompressible like images are.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One line describing the machine: CPU model and count, memory, kernel, Apache version.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let apache = Command::new("/usr/sbin/apache2")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim_start_matches("Server version:").trim().to_owned())
        })
        .unwrap_or_else(|| "no apache2".into());
    format!(
        "{cpus} x {model}, {:.1} GiB RAM, Linux {}, {apache}",
        mem as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

/// False (after saying so) when not run by `cargo bench`: `cargo test --all-targets` (the CI
/// command) also builds and runs `harness = false` benches, without the `--bench` flag that
/// `cargo bench` passes, and minutes of load in a debug build have no place in a test run.
pub fn invoked_by_cargo_bench(name: &str) -> bool {
    let yes = std::env::args().skip(1).any(|a| a == "--bench");
    if !yes {
        println!("{name}: skipped (run it with `cargo bench --bench {name}`)");
    }
    yes
}

/// Prints the bench's heading (name, date, machine).
pub fn heading(name: &str) {
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("== {name} — {date}");
    println!("   machine: {}", machine());
}

/// "met" or "MISSED".
pub fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// A settings change that rewrites a site's vhost (one alias more, or none), made through the
/// library as an admin's change would be: the next switch of that site needs a reload.
pub async fn change_aliases(
    core: &Core,
    settings: &Settings,
    site: &str,
    round: usize,
) -> anyhow::Result<()> {
    use cutover::sites::store;
    let current = store::get(&core.pool, site).await?;
    let mut new = current.settings.clone();
    new.aliases = if round % 2 == 0 {
        vec![format!("alias{round}.{site}.bench.test")]
    } else {
        Vec::new()
    };
    let source = cutover::audit::Source::default();
    store::update(
        &core.pool,
        &settings.sites_root(),
        "bench",
        &source,
        &current,
        &new,
    )
    .await?;
    Ok(())
}
