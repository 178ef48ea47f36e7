//! Shared helpers for tests that run a real private Apache on 127.0.0.1.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::command::write_config_file;
use super::super::managed::ManagedApache;
use super::super::process;
use super::super::vhost::RELEASE_HEADER;
use super::super::vhost::{render, VhostSpec};

/// The Debian apache2 binary; tests that need it fail (never skip) without it.
pub const APACHE: &str = "/usr/sbin/apache2";

/// The apache2 binary, or a loud failure telling how to install it.
pub fn apache_binary() -> &'static Path {
    assert!(
        Path::new(APACHE).is_file(),
        "{APACHE} is missing: these tests need a real Apache (apt-get install -y apache2)"
    );
    Path::new(APACHE)
}

/// A temp folder that Apache's worker user can traverse (tempdirs are 0700).
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub use super::support::free_port;

/// Kills our Apache by the PID in its pid file when dropped (e.g. when a test panics).
pub struct Guard {
    pid_file: PathBuf,
    conf: PathBuf,
}

impl Guard {
    /// A guard for the instance configured by `apache`.
    pub fn new(apache: &ManagedApache) -> Guard {
        Guard {
            pid_file: apache.pid_file(),
            conf: apache.config_path().to_path_buf(),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Read the pid now, not at creation: a restart may have replaced it.
        if let Some(pid) = process::read_pid_file(&self.pid_file) {
            if process::is_ours(pid, &self.conf) {
                process::terminate_blocking(pid, &self.conf);
            }
        }
    }
}

/// Prepares and starts a private Apache in `root` on a free port, retrying when
/// another test grabbed the port between our probe and Apache's bind.
pub async fn start_private(root: &Path) -> (ManagedApache, Guard) {
    let mut last = String::new();
    for _ in 0..10 {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut apache = ManagedApache::prepare(root, addr, apache_binary()).expect("prepare");
        let guard = Guard::new(&apache);
        match apache.start().await {
            Ok(()) => return (apache, guard),
            Err(e) if format!("{e:#}").contains("Address already in use") => {
                last = format!("{e:#}")
            }
            Err(e) => panic!("Apache did not start: {e:#}"),
        }
    }
    panic!("no free port after 10 tries: {last}");
}

/// A site folder `<sites_root>/<site>` with `releases/<id>/index.html` per release.
pub fn make_site(sites_root: &Path, site: &str, releases: &[(&str, &str)]) -> PathBuf {
    let site_dir = sites_root.join(site);
    for (id, body) in releases {
        let dir = site_dir.join("releases").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), body).unwrap();
    }
    std::fs::create_dir_all(site_dir.join("shared")).unwrap();
    site_dir
}

/// Renders and writes the vhost of `site` (server name `<site>.test`) with `docroot`.
pub fn write_vhost(apache: &ManagedApache, site: &str, site_dir: &Path, docroot: &Path) {
    let server_name = format!("{site}.test");
    let spec = VhostSpec {
        site,
        server_name: &server_name,
        aliases: &[],
        document_root: docroot,
        site_dir,
        log_dir: &apache.log_dir(),
        // A docroot inside releases/ is pinned mode: the vhost names the release.
        release: (docroot.parent() == Some(site_dir.join("releases").as_path()))
            .then(|| docroot.file_name().and_then(|n| n.to_str()))
            .flatten(),
        live_map: None,
        serving: crate::apache::tests::plain(),
        tls: None,
    };
    let text = render(&spec).expect("render");
    write_config_file(&apache.vhost_path(site).unwrap(), &text).unwrap();
}

/// What one request got back.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The `X-Cutover-Release` header, if any.
    pub release: Option<String>,
    /// The body.
    pub body: String,
}

/// `GET http://<addr><path>` with `Host: host`, on a fresh connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> Answer {
    // No pool: a graceful reload closes idle keep-alive connections.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let resp = client
        .get(format!("http://{addr}{path}"))
        .header(reqwest::header::HOST, host)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} (Host: {host}) on {addr}: {e}"));
    let status = resp.status().as_u16();
    let release = resp
        .headers()
        .get(RELEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Answer {
        status,
        release,
        body: resp.text().await.unwrap_or_default(),
    }
}

/// Polls until `GET path` for `host` returns 200 with exactly `body`; panics with what it got.
pub async fn expect_body(addr: SocketAddr, host: &str, path: &str, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = get(addr, host, path).await;
        if seen.status == 200 && seen.body == body {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected 200 {body:?} for {host}{path}, got {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
