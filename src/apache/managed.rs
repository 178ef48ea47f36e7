//! A private Apache that Cutover configures, starts and stops itself.
//!
//! It runs with `apache2 -f ABS_CONF -k start`: Apache daemonizes into its own session,
//! so the websites keep being served while the console restarts or crashes, and no
//! zombie or pipe ties it to the console process. The cost is that a new console must
//! find it again: the pid file, checked against `/proc/PID/cmdline`, is the only
//! handle we trust, and every signal goes to that PID only after that check.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use super::command::{run_command, write_config_file, CommandOutput};
use super::errorlog::{self, nonempty};
use super::reach::{Worker, WORKER_USER};
use super::{mainconf, process, restart, validate};

/// How long Apache may take to answer after `-k start`.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long `-k stop` may take before we signal the PID ourselves (measured: ~1 s).
const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// A private Apache rooted in a folder of ours: `httpd.conf`, `run/`, `logs/`, `sites/`.
#[derive(Debug)]
pub struct ManagedApache {
    root: PathBuf,
    conf: PathBuf,
    listen: SocketAddr,
    binary: PathBuf,
    worker: Worker,
    /// Set when the console stops it for good: nothing may start it again after that.
    retired: bool,
}

impl ManagedApache {
    /// Writes `<root>/httpd.conf` and creates `<root>/{run,logs,sites,default}`; nothing starts yet.
    ///
    /// `listen` is like `127.0.0.1:8081`; `binary` is usually `/usr/sbin/apache2`. All paths
    /// in the config are absolute. `User`/`Group www-data` are written only when we are root.
    pub fn prepare(root: &Path, listen: SocketAddr, binary: &Path) -> anyhow::Result<Self> {
        if listen.port() == 0 {
            bail!("Apache cannot listen on port 0: choose a port for the private web server");
        }
        if !binary.is_file() {
            bail!(
                "Apache is not installed at {} (install the apache2 package)",
                binary.display()
            );
        }
        let event = Path::new(mainconf::MODULES_DIR).join("mod_mpm_event.so");
        if !event.is_file() {
            bail!(
                "Apache's modules are missing: {} does not exist",
                event.display()
            );
        }
        std::fs::create_dir_all(root)
            .with_context(|| format!("could not create {}", root.display()))?;
        // Absolute and symlink-free, so the config, the pid file and the cmdline check
        // all name the same path whatever the working directory.
        let root = root
            .canonicalize()
            .with_context(|| format!("could not resolve {}", root.display()))?;
        validate::config_path(&root, "Apache folder").map_err(|e| anyhow!(e))?;
        for (sub, mode) in [
            ("run", 0o750),
            ("logs", 0o750),
            ("sites", 0o755),
            ("default", 0o755),
        ] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("could not create {}", dir.display()))?;
            // Access logs hold visitors' addresses: only the parent (root or us) opens them.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("could not set the mode of {}", dir.display()))?;
        }
        let worker = Worker::current().map_err(|e| anyhow!(e))?;
        let as_root = nix::unistd::geteuid().is_root();
        let conf = root.join("httpd.conf");
        let text = mainconf::render(&root, listen, as_root, WORKER_USER);
        write_config_file(&conf, &text)
            .with_context(|| format!("could not write {}", conf.display()))?;
        Ok(ManagedApache {
            root,
            conf,
            listen,
            binary: binary.to_path_buf(),
            worker,
            retired: false,
        })
    }

    /// From now on `start` refuses: the console is stopping, and a watcher or a switch still
    /// running must not bring this Apache back after it was stopped.
    pub fn retire(&mut self) {
        self.retired = true;
    }

    /// Makes the instance serve HTTPS on `listen` from its next (re)load: writes mod_ssl and
    /// the Listen line once. True when it wrote them (a reload is then needed anyway).
    pub fn enable_tls(&self, listen: SocketAddr) -> std::io::Result<bool> {
        let dir = self.root.join("tls");
        let file = dir.join("listen.conf");
        let text = mainconf::tls(&self.root, listen);
        if std::fs::read_to_string(&file).is_ok_and(|t| t == text) {
            return Ok(false);
        }
        std::fs::create_dir_all(&dir)?;
        write_config_file(&file, &text)?;
        Ok(true)
    }

    /// Loads the modules PHP sites need (from the next configtest and reload on); true when
    /// that changed the configuration.
    pub fn enable_php(&self) -> std::io::Result<bool> {
        let dir = self.root.join("modules");
        let file = dir.join("php.conf");
        let text = mainconf::php_modules();
        if std::fs::read_to_string(&file).is_ok_and(|t| t == text) {
            return Ok(false);
        }
        std::fs::create_dir_all(&dir)?;
        write_config_file(&file, &text)?;
        Ok(true)
    }

    /// The folder whose `*.conf` files Apache includes (one `<site>.conf` per site).
    pub fn sites_dir(&self) -> PathBuf {
        self.root.join("sites")
    }

    /// The vhost file of `site`; refuses names that are not valid site slugs.
    pub fn vhost_path(&self, site: &str) -> Result<PathBuf, String> {
        validate::site_name(site)?;
        Ok(self.sites_dir().join(format!("{site}.conf")))
    }

    /// The folder for the per-site logs (pass it as the vhost's `log_dir`).
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The address Apache listens on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// The absolute path of the generated main config.
    pub fn config_path(&self) -> &Path {
        &self.conf
    }

    /// The pid file Apache writes (and removes on a clean stop).
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("run").join("httpd.pid")
    }

    /// Starts Apache and returns once it answers HTTP on its port, or fails with Apache's own words.
    ///
    /// A leftover instance of ours (pid file + `/proc/PID/cmdline` naming our config), e.g.
    /// from a crashed console, is stopped first; no other process is ever signalled.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.retired {
            bail!("the console is stopping, so its Apache is not started again");
        }
        if let Some(pid) = self.pid() {
            tracing::warn!(pid, conf = %self.conf.display(), "stopping a leftover private Apache");
            self.stop()
                .await
                .context("could not stop the leftover private Apache")?;
        }
        self.remove_stale_pid_file();
        let log_start = errorlog::len(&self.error_log());
        // Output goes to a file, not a pipe: a daemon that kept our pipe open would make
        // us wait for an EOF that never comes.
        let out_path = self.root.join("run").join("start.out");
        let out = std::fs::File::create(&out_path)
            .with_context(|| format!("could not create {}", out_path.display()))?;
        let started = Instant::now();
        // A clean environment: mod_rewrite's %{ENV:…} and mod_setenvif fall back to the
        // server's own environment, which would otherwise be the console's (its CUTOVER_*).
        let status = tokio::process::Command::new(&self.binary)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C")
            .arg("-f")
            .arg(&self.conf)
            .args(["-k", "start"])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .status();
        let status = tokio::time::timeout(START_DEADLINE, status)
            .await
            .context("apache2 -k start did not return in time")?
            .context("could not run apache2")?;
        let said = std::fs::read_to_string(&out_path).unwrap_or_default();
        let said = said.trim();
        if !status.success() {
            bail!(
                "Apache did not start: {}",
                nonempty(said, "it gave no reason")
            );
        }
        loop {
            if self.is_alive() && process::answers_http(self.listen).await {
                tracing::info!(pid = ?self.pid(), listen = %self.listen, took = ?started.elapsed(), "private Apache is up");
                return Ok(());
            }
            let pid_file_written = process::read_pid_file(&self.pid_file()).is_some();
            if (pid_file_written && !self.is_alive()) || started.elapsed() > START_DEADLINE {
                let log = errorlog::tail(&errorlog::since(&self.error_log(), log_start), 20);
                let what = if self.is_alive() {
                    "does not answer"
                } else {
                    "stopped right after starting"
                };
                bail!(
                    "Apache {what} on {}: {}",
                    self.listen,
                    nonempty(&log, nonempty(said, "its error log says nothing"))
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Checks the configuration (`apache2 -t -f ABS_CONF`); Apache's words are in the output.
    pub async fn configtest(&self) -> anyhow::Result<CommandOutput> {
        run_command(&self.command(&["-t"])).await
    }

    /// Reloads gracefully (`apache2 -f ABS_CONF -k graceful`) and confirms the new config is live.
    ///
    /// A config that does not parse is refused (`ok: false`, Apache's words in `output`) and
    /// the old one keeps serving. After the signal we wait for Apache's log to report the
    /// restart done, since a config can parse and still fail when applied (a busy port).
    /// Calls must not overlap: serialize reloads in the caller.
    pub async fn graceful(&self) -> anyhow::Result<CommandOutput> {
        if !self.is_alive() {
            bail!("the private Apache is not running, so it cannot reload: start it first");
        }
        let log_start = errorlog::len(&self.error_log());
        // The parent and its children before the signal: a new one shows the restart done.
        let before = self.pid().map(|p| (p, restart::children_of(p, &self.conf)));
        let mut out = run_command(&self.command(&["-k", "graceful"])).await?;
        let mut wakes = 0;
        if out.ok {
            if let Some((parent, before)) = &before {
                let (log, check) = (self.error_log(), self.command(&["-t"]));
                let from = restart::Log {
                    path: &log,
                    start: log_start,
                };
                wakes =
                    restart::wake_new_generation(*parent, &self.conf, before, &from, &check).await;
            }
            if let Err(why) = self.confirm_restart(log_start, 1 + wakes).await {
                out.ok = false;
                out.output = why;
            }
        }
        Ok(out)
    }

    /// Our running Apache's PID: from the pid file if it names our Apache, else found by
    /// its command line (see [`process::find_daemon`]).
    pub fn pid(&self) -> Option<i32> {
        process::read_pid_file(&self.pid_file())
            .filter(|p| process::is_ours(*p, &self.conf))
            .or_else(|| process::find_daemon(&self.conf))
    }

    /// True if our Apache is running (pid file + `kill(pid, 0)` + cmdline check).
    pub fn is_alive(&self) -> bool {
        self.pid().is_some()
    }

    /// Stops Apache by its verified pid and waits (bounded) until it is gone.
    ///
    /// `-k stop` first; if that fails (a config that no longer parses) or hangs, SIGTERM
    /// then SIGKILL of that pid and its workers. Doing nothing when it is not running is fine.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(pid) = self.pid() else {
            self.remove_stale_pid_file();
            return Ok(());
        };
        // `-k stop` signals the pid in the pid file; it does nothing if the config no
        // longer parses, hence the fallback to signalling the verified pid ourselves.
        let polite = run_command(&self.command(&["-k", "stop"])).await;
        let gone = match &polite {
            Ok(out) if out.ok => process::wait_gone(pid, &self.conf, STOP_DEADLINE).await,
            _ => false,
        };
        if !gone {
            if let Ok(out) = &polite {
                tracing::warn!(pid, output = %out.output, "apache2 -k stop did not stop it; signalling the pid");
            }
            let conf = self.conf.clone();
            let gone = crate::blocking::spawn(move || process::terminate_blocking(pid, &conf))
                .await
                .context("the stop task failed")?;
            if !gone {
                bail!("Apache (pid {pid}) is still running after SIGTERM and SIGKILL");
            }
        }
        self.remove_stale_pid_file();
        tracing::info!(pid, "private Apache stopped");
        Ok(())
    }

    /// Checks that Apache's workers can get from / down to `path`; the error names the blocking folder.
    ///
    /// The workers are www-data when we run as root, else our own user. The message says
    /// how to fix it (`chmod o+x FOLDER`). Call it for the sites root before going live.
    pub fn check_worker_can_reach(&self, path: &Path) -> Result<(), String> {
        self.worker.can_reach(path)
    }

    /// Waits until Apache's log says the restart it was asked for is done, and it answers.
    ///
    /// `-k graceful` returns as soon as the signal is sent; a config that parses can
    /// still fail when applied (measured: a busy `Listen` port makes the parent exit
    /// ~2 s later, with exit code 0 from `-k graceful`). `restarts`: how many were signalled
    /// (see [`restart::wake_new_generation`]); the last one must be done.
    async fn confirm_restart(&self, log_start: u64, restarts: usize) -> Result<(), String> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let log = errorlog::since(&self.error_log(), log_start);
            let all = errorlog::resumed_count(&log) >= restarts;
            match errorlog::restart_outcome(&log) {
                Some(false) => {
                    return Err(format!(
                        "Apache stopped while reloading: {}",
                        errorlog::tail(&log, 20)
                    ))
                }
                Some(true) if all && process::answers_http(self.listen).await => return Ok(()),
                _ if !self.is_alive() => {
                    return Err(format!(
                        "Apache stopped while reloading: {}",
                        nonempty(&errorlog::tail(&log, 20), "its error log says nothing")
                    ))
                }
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "Apache did not confirm the reload within {START_DEADLINE:?}: {}",
                        errorlog::tail(&log, 20)
                    ))
                }
                // A restart is confirmed ~20 ms after the signal: a coarser poll would add
                // up to its own period to every reload (reading the log's new tail is cheap).
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// `apache2 -f ABS_CONF <args>` as an argument list (the -f path must be absolute).
    fn command(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![
            self.binary.to_string_lossy().into_owned(),
            "-f".to_string(),
            self.conf.to_string_lossy().into_owned(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    }

    /// The main error log, where Apache writes once it has started.
    fn error_log(&self) -> PathBuf {
        self.log_dir().join("error.log")
    }

    /// Removes the pid file if the process it names is not our Apache (killed, or PID reused).
    fn remove_stale_pid_file(&self) {
        let file = self.pid_file();
        if let Some(pid) = process::read_pid_file(&file) {
            if process::is_ours(pid, &self.conf) {
                return;
            }
        }
        let _ = std::fs::remove_file(file);
    }
}
