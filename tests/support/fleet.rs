//! "Hosts" on this machine for the several-hosts tests and bench: each a private OpenSSH
//! `sshd` (own config, host key, `authorized_keys` and pid file under its folder, listening on
//! 127.0.0.1 on a free port) and a private Apache on 127.0.0.1 with a Debian-like vhost
//! folder, both stopped by their pids (the sshd with every session it forked) when dropped.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const MODULES: &str = "/usr/lib/apache2/modules";
const SSHD: &str = "/usr/sbin/sshd";

/// Every session's command passes through this (sshd's `ForceCommand`), so a test can hold a
/// host at a chosen moment: while `hold-switch` (or `hold-rsync`) exists in the host's `ssh`
/// folder, an armed switch (or rsync) session waits before it starts, having created
/// `held-switch` (`held-rsync`); at most 60 s. Otherwise it runs the command as the login
/// shell would.
const GATE: &str = r#"#!/bin/sh
d="{dir}"
case "$SSH_ORIGINAL_COMMAND" in
  *"echo armed"*) what=switch ;;
  "rsync --server"*) what=rsync ;;
  *) what= ;;
esac
if [ -n "$what" ] && [ -e "$d/hold-$what" ]; then
  touch "$d/held-$what"; n=0
  while [ -e "$d/hold-$what" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
fi
exec sh -c "$SSH_ORIGINAL_COMMAND"
"#;

/// One host.
pub struct TestHost {
    /// Its name (`web1`).
    pub name: String,
    /// Its folder.
    pub root: PathBuf,
    /// sshd's port.
    pub ssh_port: u16,
    /// Apache's port.
    pub http_port: u16,
    /// Its Apache's pid (kept here: the pid file goes with the test's folder).
    apache: Option<i32>,
    /// Its sshd's pid.
    sshd: Option<i32>,
    /// Its PHP-FPM master, once started (see [`TestHost::start_php`]).
    php: Option<std::process::Child>,
}

fn apache_binary() -> String {
    let p = "/usr/sbin/apache2";
    assert!(
        Path::new(p).is_file(),
        "{p} is missing: these tests need a real Apache (the test command installs it)"
    );
    p.into()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// `pid` and every process below it (sshd's sessions), children first.
fn tree(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1));
            if ppid.and_then(|p| p.parse::<i32>().ok()) == Some(parent) && !all.contains(&child) {
                all.push(child);
            }
        }
        i += 1;
    }
    all.reverse();
    all
}

fn signal_all(pids: &[i32], sig: Signal) {
    for p in pids {
        let _ = kill(Pid::from_raw(*p), sig);
    }
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !super::is_gone(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl TestHost {
    /// Starts host `name` in `root` (which must be readable by Apache's workers).
    pub fn start(root: &Path, name: &str) -> TestHost {
        let root = root.join(name);
        for d in [
            "apache/sites-enabled",
            "apache/conf-enabled",
            "apache/run",
            "apache/logs",
            "srv",
            "ssh",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let mut host = TestHost {
            name: name.into(),
            root,
            ssh_port: 0,
            http_port: 0,
            apache: None,
            sshd: None,
            php: None,
        };
        host.write_apache_conf();
        host.start_apache();
        host.new_host_key();
        host.start_sshd();
        host
    }

    fn write_apache_conf(&mut self) {
        let a = self.root.join("apache");
        let ad = a.display();
        let user = if nix::unistd::geteuid().is_root() {
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let mut conf = format!("ServerRoot {ad}\nDefaultRuntimeDir {ad}/run\nPidFile {ad}/run/apache2.pid\nMutex file:{ad}/run default\nTimeout 30\nKeepAlive On\n{user}ServerName {}.test\nErrorLog {ad}/logs/error.log\nLogLevel warn\n", self.name);
        for m in [
            "mpm_event",
            "authz_core",
            "authz_host",
            "authn_core",
            "dir",
            "mime",
            "headers",
            "rewrite",
            "alias",
            "setenvif",
            "env",
            "proxy",
            "proxy_fcgi",
        ] {
            conf.push_str(&format!("LoadModule {m}_module {MODULES}/mod_{m}.so\n"));
        }
        conf.push_str("TypesConfig /etc/mime.types\nDirectoryIndex index.html\n<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\nIncludeOptional conf-enabled/*.conf\nIncludeOptional sites-enabled/*.conf\n");
        write(&a.join("apache2.conf"), &conf);
    }

    /// `apache2 -d ROOT -f CONF …` as an argument list (the host's configtest and reload).
    pub fn apache_command(&self, args: &[&str]) -> Vec<String> {
        let a = self.root.join("apache");
        let mut argv = vec![
            apache_binary(),
            "-d".into(),
            a.display().to_string(),
            "-f".into(),
            a.join("apache2.conf").display().to_string(),
            "-C".into(),
            format!("Listen 127.0.0.1:{}", self.http_port),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        argv
    }

    /// Starts (or starts again) its Apache, on a fresh port the first time.
    pub fn start_apache(&mut self) {
        for _ in 0..5 {
            if self.http_port == 0 {
                self.http_port = super::free_port();
            }
            let argv = self.apache_command(&["-k", "start"]);
            let out = Command::new(&argv[0]).args(&argv[1..]).output().unwrap();
            let pid_file = self.root.join("apache/run/apache2.pid");
            let deadline = Instant::now() + Duration::from_secs(10);
            while out.status.success() && pid_in(&pid_file).is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if out.status.success() && pid_in(&pid_file).is_some() {
                self.apache = pid_in(&pid_file);
                return;
            }
            self.http_port = 0;
        }
        panic!("the Apache of host {} did not start", self.name);
    }

    /// Its Apache's pid.
    pub fn apache_pid(&self) -> Option<i32> {
        self.apache
    }

    /// Stops its Apache (a host whose web server died), workers included (its own group).
    pub fn stop_apache(&mut self) {
        if let Some(pid) = self.apache.take() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            wait_gone(pid);
            let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = std::fs::remove_file(self.root.join("apache/run/apache2.pid"));
        }
    }

    /// A new host key (a reinstalled machine, or another one at the same address).
    pub fn new_host_key(&self) {
        let key = self.root.join("ssh/host_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts its sshd, on a fresh port the first time.
    pub fn start_sshd(&mut self) {
        assert!(
            Path::new(SSHD).exists(),
            "sshd must be installed (the test command installs openssh-server)"
        );
        // Debian's sshd insists on its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let s = self.root.join("ssh");
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
            .name;
        for _ in 0..5 {
            if self.ssh_port == 0 {
                self.ssh_port = super::free_port();
            }
            let sd = s.display();
            write(&s.join("gate"), &GATE.replace("{dir}", &sd.to_string()));
            std::fs::set_permissions(
                s.join("gate"),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            // `SetEnv SHLVL=1`: bash (the login shell sshd runs every session's command with)
            // then skips the login user's ~/.bashrc, which it reads for SSH sessions. Here that
            // user is whoever runs the tests, and this machine's root runs `pyenv init` there:
            // 100 ms and more of every session, which a deploy user's shell would not cost.
            write(&s.join("sshd_config"), &format!("Port {}\nListenAddress 127.0.0.1\nHostKey {sd}/host_key\nPidFile {sd}/sshd.pid\nAuthorizedKeysFile {sd}/authorized_keys\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowUsers {user}\nLogLevel INFO\nMaxStartups 100\nMaxSessions 100\nForceCommand {sd}/gate\nSetEnv SHLVL=1\n", self.ssh_port));
            let _ = std::fs::remove_file(s.join("sshd.pid"));
            let out = Command::new(SSHD)
                .arg("-f")
                .arg(s.join("sshd_config"))
                .arg("-E")
                .arg(s.join("sshd.log"))
                .output()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while out.status.success()
                && pid_in(&s.join("sshd.pid")).is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            let listening = std::net::TcpStream::connect(("127.0.0.1", self.ssh_port)).is_ok();
            if out.status.success() && pid_in(&s.join("sshd.pid")).is_some() && listening {
                self.sshd = pid_in(&s.join("sshd.pid"));
                return;
            }
            self.ssh_port = 0;
        }
        panic!(
            "the sshd of host {} did not start: {}",
            self.name,
            std::fs::read_to_string(s.join("sshd.log")).unwrap_or_default()
        );
    }

    fn sshd_tree(&self) -> Vec<i32> {
        self.sshd.map(tree).unwrap_or_default()
    }

    /// Kills its sshd and every session it forked (a host that went down).
    pub fn stop_sshd(&mut self) {
        let all = self.sshd_tree();
        self.sshd = None;
        signal_all(&all, Signal::SIGKILL);
        for p in all {
            wait_gone(p);
        }
        let _ = std::fs::remove_file(self.root.join("ssh/sshd.pid"));
    }

    /// Cuts every connection to it (the network dropped them): every process below the
    /// listening sshd is killed; the sshd itself goes on accepting new ones.
    pub fn cut(&self) {
        let mut below = self.sshd_tree();
        below.retain(|p| Some(*p) != self.sshd);
        signal_all(&below, Signal::SIGKILL);
        for p in below {
            wait_gone(p);
        }
    }

    /// From now on, sessions of `what` ("switch" or "rsync") wait at the gate (see [`GATE`]).
    pub fn hold(&self, what: &str) {
        let _ = std::fs::remove_file(self.root.join(format!("ssh/held-{what}")));
        write(&self.root.join(format!("ssh/hold-{what}")), "");
    }

    /// A session of `what` waits at the gate.
    pub fn is_held(&self, what: &str) -> bool {
        self.root.join(format!("ssh/held-{what}")).exists()
    }

    /// Lets held sessions of `what` go on, and the next ones through.
    pub fn release(&self, what: &str) {
        let _ = std::fs::remove_file(self.root.join(format!("ssh/hold-{what}")));
    }

    /// Its site folder holds a switch armed but not done (`.current-tmp-*`).
    pub fn is_armed(&self, site: &str) -> bool {
        std::fs::read_dir(self.site_dir(site))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".current-tmp-"))
    }

    /// How many SSH connections logged in so far (sshd logs each at level INFO).
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(self.root.join("ssh/sshd.log"))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }

    /// Freezes its sshd and sessions (a hung host: connections open, nothing answers).
    pub fn hang(&self) {
        signal_all(&self.sshd_tree(), Signal::SIGSTOP);
    }

    /// Thaws a hung host.
    pub fn resume(&self) {
        signal_all(&self.sshd_tree(), Signal::SIGCONT);
    }

    /// Lets `public_key` log in.
    pub fn authorize(&self, public_key: &str) {
        write(
            &self.root.join("ssh/authorized_keys"),
            &format!("restrict {public_key}\n"),
        );
    }

    /// The site's folder on this host.
    pub fn site_dir(&self, site: &str) -> PathBuf {
        self.root.join("srv").join(site)
    }

    /// The host's reload: `-k graceful` through `deploy/apache-graceful`, as the README asks
    /// of a system Apache (a second graceful when the first started no new process).
    pub fn reload_command(&self) -> Vec<String> {
        let mut argv = vec![
            concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/apache-graceful").to_string(),
            self.root
                .join("apache/run/apache2.pid")
                .display()
                .to_string(),
        ];
        argv.extend(self.apache_command(&["-k", "graceful"]));
        argv
    }

    /// The body of `POST /api/v1/sites/{site}/hosts` for this host.
    pub fn input(&self, site: &str) -> serde_json::Value {
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .unwrap()
            .unwrap()
            .name;
        serde_json::json!({
            "name": self.name,
            "ssh": format!("{user}@127.0.0.1:{}", self.ssh_port),
            "dir": self.site_dir(site).display().to_string(),
            "vhost_dir": self.root.join("apache/sites-enabled").display().to_string(),
            "log_dir": self.root.join("apache/logs").display().to_string(),
            "configtest": self.apache_command(&["-t"]),
            "reload": self.reload_command(),
            "check_url": format!("http://127.0.0.1:{}", self.http_port),
        })
    }

    /// Starts a private PHP-FPM for this host (its own config, pool folder, sockets and pid,
    /// under the host's folder; a placeholder pool, as Debian's `www`, so it starts with none
    /// of Cutover's), stopped by its pid when the host is dropped.
    pub fn start_php(&mut self) {
        let binary = cutover::php::find_binary().expect(
            "php-fpm must be installed for the PHP host tests (the test command installs php-fpm)",
        );
        let p = self.root.join("php");
        for d in ["pools", "sock", "run", "logs"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        let pd = p.display();
        let user = match nix::unistd::geteuid().is_root() {
            true => "user = www-data\ngroup = www-data\n",
            false => "",
        };
        write(
            &p.join("php.ini"),
            "; the test host's own, empty: no system php.ini\n",
        );
        write(&p.join("php-fpm.conf"), &format!("[global]\npid = {pd}/run/php-fpm.pid\nerror_log = {pd}/logs/php-fpm.log\ndaemonize = no\ninclude = {pd}/pools/*.conf\n[placeholder]\n{user}listen = {pd}/sock/placeholder.sock\npm = ondemand\npm.max_children = 1\n"));
        let child = Command::new(&binary)
            .args(self.php_args())
            .arg("--nodaemonize")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        self.php = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while pid_in(&p.join("run/php-fpm.pid")).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            pid_in(&p.join("run/php-fpm.pid")).is_some(),
            "the PHP-FPM of host {} did not start: {}",
            self.name,
            std::fs::read_to_string(p.join("logs/php-fpm.log")).unwrap_or_default()
        );
    }

    fn php_args(&self) -> Vec<String> {
        let p = self.root.join("php");
        vec![
            "--fpm-config".into(),
            p.join("php-fpm.conf").display().to_string(),
            "-c".into(),
            p.join("php.ini").display().to_string(),
        ]
    }

    /// The `php` of the host's body: its PHP-FPM's folders and commands.
    pub fn php_input(&self) -> serde_json::Value {
        let p = self.root.join("php");
        let binary = cutover::php::find_binary().unwrap().display().to_string();
        let mut test = vec![binary];
        test.extend(self.php_args());
        test.push("-t".into());
        let pid = pid_in(&p.join("run/php-fpm.pid")).expect("start_php first");
        serde_json::json!({
            "pool_dir": p.join("pools").display().to_string(),
            "socket_dir": p.join("sock").display().to_string(),
            "test": test,
            "reload": ["kill", "-USR2", pid.to_string()],
        })
    }

    /// Its host key's fingerprint, as its admin would read it.
    pub fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(self.root.join("ssh/host_key.pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// The release its `current` names.
    pub fn current(&self, site: &str) -> Option<String> {
        let target = std::fs::read_link(self.site_dir(site).join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.resume();
        if let Some(mut php) = self.php.take() {
            let _ = nix::sys::signal::killpg(Pid::from_raw(php.id() as i32), Signal::SIGKILL);
            let _ = php.wait();
        }
        self.stop_sshd();
        self.stop_apache();
    }
}
