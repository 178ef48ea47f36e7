//! A console run as a separate process with its own data folder and private Apache.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    apache_binary, cutover_bin, free_port, kill_apache, run_cli, stop_strays, ChildGuard,
};

pub const HOST: &str = "shop.example.test";

/// A data folder, its config, and the console process when it runs.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
    pub apache_listen: String,
    pub token: String,
    pub base: String,
    pub server: Option<ChildGuard>,
    /// index.html content of each uploaded release.
    pub content: HashMap<String, String>,
    /// Where the sites live.
    pub sites_root: PathBuf,
    starts: usize,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.terminate();
        }
        if let Some(pid) = self.apache_pid() {
            kill_apache(pid);
        }
        stop_strays(&self.data);
    }
}

impl Env {
    /// A fresh data folder with an admin token and a pinned site `shop`.
    pub fn new(extra_config: &str) -> Env {
        let binary = apache_binary();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let data = dir.path().join("data");
        let apache_listen = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("cutover.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\n{extra_config}\n[apache]\nlisten = \"{apache_listen}\"\nbinary = {binary:?}\nhealth_timeout_seconds = 5\n"
            ),
        )
        .unwrap();
        let (ok, _, err) = run_cli(
            &config,
            &["user", "add", "ops", "--role", "admin", "--password-stdin"],
            Some("fault suite passphrase 31\n"),
        );
        assert!(ok, "{err}");
        let (_, out, _) = run_cli(&config, &["token", "create", "ops"], None);
        let token = out.trim_end().lines().last().unwrap().to_owned();
        let (ok, _, err) = run_cli(
            &config,
            &[
                "site",
                "add",
                "shop",
                "--server-name",
                HOST,
                "--keep",
                "1",
                "--shared",
                "uploads",
            ],
            None,
        );
        assert!(ok, "{err}");
        let sites_root = cutover::config::Settings::load(Some(&config))
            .unwrap()
            .sites_root();
        Env {
            dir,
            config,
            data,
            apache_listen,
            token,
            base: String::new(),
            server: None,
            content: HashMap::new(),
            sites_root,
            starts: 0,
        }
    }

    /// Starts `cutover serve` (with a fault point when given) and waits until it answers.
    pub fn start(&mut self, fault: Option<&str>) {
        let mut cmd = Command::new(cutover_bin());
        self.starts += 1;
        let log = self.dir.path().join(format!("serve-{}.log", self.starts));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(point) = fault {
            let spec = if point.contains(':') {
                point.to_owned()
            } else {
                format!("{point}:pause")
            };
            cmd.env("CUTOVER_FAULT", spec)
                .env("CUTOVER_FAULT_MARKER", self.marker())
                .env(
                    "CUTOVER_FAULT_PIDFILE",
                    self.data.join("apache/run/httpd.pid"),
                );
        }
        let mut child = ChildGuard::spawn(cmd);
        let stdout = child.0.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = lines
            .by_ref()
            .map(|l| l.unwrap())
            .find_map(|l| {
                l.strip_prefix("Cutover is running at ")
                    .map(|u| u.trim_end_matches('/').to_owned())
            })
            .unwrap_or_else(|| {
                panic!(
                    "the console did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.base = base;
        self.server = Some(child);
        let _ = std::fs::remove_file(self.marker());
    }

    /// Stops the console cleanly (SIGTERM), which also stops its Apache.
    pub fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            assert!(s.terminate().success(), "clean exit on SIGTERM");
        }
    }

    /// SIGKILLs the console's process group (Apache lives in its own session and survives,
    /// as it would after a real crash).
    pub fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            let pgid = nix::unistd::Pid::from_raw(-(s.0.id() as i32));
            nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
            let _ = s.0.wait();
        }
    }

    pub fn marker(&self) -> PathBuf {
        self.dir.path().join("fault-reached")
    }

    /// Waits until the console reports it reached the fault point.
    pub fn wait_for_marker(&self, point: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.marker().exists() {
            assert!(
                Instant::now() < deadline,
                "the console never reached {point}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn apache_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.data.join("apache/run/httpd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn site_dir(&self) -> PathBuf {
        self.sites_root.join("shop")
    }

    /// Uploads release-A and release-B, putting A live first (with one release kept, B would
    /// otherwise push A out); returns their ids.
    pub fn two_releases_first_live(&mut self) -> Vec<String> {
        let mut ids = Vec::new();
        for name in ["release-A", "release-B"] {
            let (status, r) = self.upload(name);
            assert_eq!(status, 201, "{r}");
            let id = r["id"].as_str().unwrap().to_owned();
            self.content.insert(id.clone(), name.into());
            if ids.is_empty() {
                assert_eq!(self.activate(&id).0, 200);
            }
            ids.push(id);
        }
        ids
    }

    /// A handle for requests from another thread.
    pub fn client_for(base: &str, token: &str) -> Remote {
        Remote {
            base: base.to_owned(),
            token: token.to_owned(),
        }
    }

    fn remote(&self) -> Remote {
        Env::client_for(&self.base, &self.token)
    }

    pub fn get(&self, path: &str) -> Value {
        self.remote().get(path)
    }

    pub fn upload(&self, name: &str) -> (u16, Value) {
        self.remote().upload(name)
    }

    pub fn activate(&self, id: &str) -> (u16, Value) {
        self.remote().activate(id)
    }

    /// What the private Apache serves for the site.
    pub fn served(&self) -> String {
        reqwest::blocking::Client::new()
            .get(format!("http://{}/", self.apache_listen))
            .header("Host", HOST)
            .send()
            .and_then(|r| r.text())
            .unwrap_or_else(|e| format!("(no answer: {e})"))
    }

    /// `cutover audit verify` on this data folder.
    pub fn verify(&self) -> (bool, String) {
        let (ok, out, err) = run_cli(&self.config, &["audit", "verify"], None);
        (ok, format!("{out}{err}"))
    }
}

/// `apache2 -t` on the managed instance's main config.
pub fn configtest(data: &Path) -> (bool, String) {
    let out = Command::new(apache_binary())
        .arg("-t")
        .arg("-f")
        .arg(data.join("apache/httpd.conf"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The console's API, usable from any thread.
#[derive(Clone)]
pub struct Remote {
    pub base: String,
    pub token: String,
}

impl Remote {
    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    pub fn get(&self, path: &str) -> Value {
        self.client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Uploads a release whose index.html says `name` (plus 2 MB of noise, so the upload
    /// streams for a while); returns the response status and body.
    pub fn upload(&self, name: &str) -> (u16, Value) {
        let noise: Vec<u8> = (0..2_000_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8 ^ name.len() as u8)
            .collect();
        let bytes = crate::archives::tar(&[
            ("index.html", name.as_bytes()),
            ("assets/", b""),
            ("assets/blob.bin", &noise),
            ("uploads/", b""),
        ]);
        let form = reqwest::blocking::multipart::Form::new().part(
            "archive",
            reqwest::blocking::multipart::Part::bytes(bytes).file_name("r.tar"),
        );
        let res = self
            .client()
            .post(format!("{}/api/v1/sites/shop/releases", self.base))
            .bearer_auth(&self.token)
            .multipart(form)
            .send();
        match res {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }

    pub fn activate(&self, id: &str) -> (u16, Value) {
        match self
            .client()
            .post(format!(
                "{}/api/v1/sites/shop/releases/{id}/activate",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
        {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    }
}
