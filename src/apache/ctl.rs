//! `ApacheCtl`: the one handle the console uses, whichever Apache it drives (managed,
//! system, or none when apache2 is not installed). Reloads are serialised.

use std::path::PathBuf;

use tokio::sync::Mutex;

use super::command::CommandOutput;
use super::managed::ManagedApache;
use super::served::Remembered;
use super::system::SystemApache;
use crate::config::{ApacheMode, Settings};

/// The Apache the console drives.
pub enum ApacheCtl {
    /// A private instance under the data folder.
    Managed {
        /// The instance (start/stop need `&mut`; the lock also serialises reloads).
        apache: Mutex<ManagedApache>,
        /// Where its per-site logs go.
        log_dir: PathBuf,
        /// Where its vhost files go.
        sites_dir: PathBuf,
        /// `http://127.0.0.1:PORT`.
        base: String,
        /// Where HTTPS sites are served (`[apache] tls_listen`), if it is an address.
        tls_listen: Option<std::net::SocketAddr>,
    },
    /// The host's Apache, through configured commands.
    System {
        /// Commands and vhost folder.
        apache: SystemApache,
        /// Serialises configtest/reload.
        busy: Mutex<()>,
        /// What the last check of each site's names found.
        served: Remembered,
        /// Per-site logs.
        log_dir: PathBuf,
        /// Health-check base URL.
        base: String,
        /// Where the health check reaches it over HTTPS.
        tls_check: Option<std::net::SocketAddr>,
        /// The `<VirtualHost>` address of HTTPS sites (`*:443`).
        tls_vhost: String,
    },
    /// Going live is impossible (e.g. apache2 is not installed); the reason says why.
    Unavailable(String),
}

impl ApacheCtl {
    /// Builds the handle from the settings (managed: writes the main config, does not start).
    pub fn from_settings(settings: &Settings) -> Self {
        let a = &settings.apache;
        match a.mode {
            ApacheMode::Managed => {
                if !a.binary.is_file() {
                    return Self::Unavailable(format!(
                        "Apache is not installed ({} is missing), so releases cannot go live. Install it (apt-get install apache2) and restart Cutover.",
                        a.binary.display()
                    ));
                }
                let listen = match a.listen.parse() {
                    Ok(l) => l,
                    Err(_) => return Self::Unavailable(format!("[apache] listen = {:?} is not an address like 127.0.0.1:8081.", a.listen)),
                };
                match ManagedApache::prepare(&settings.data_dir.join("apache"), listen, &a.binary) {
                    Ok(m) => Self::Managed {
                        log_dir: m.log_dir(),
                        sites_dir: m.sites_dir(),
                        base: format!("http://{}", m.listen()),
                        tls_listen: a.tls_listen.parse().ok(),
                        apache: Mutex::new(m),
                    },
                    Err(e) => Self::Unavailable(format!("The private Apache could not be set up: {e:#}")),
                }
            }
            ApacheMode::System => match &a.vhost_dir {
                Some(dir) => Self::System {
                    apache: SystemApache {
                        vhost_dir: dir.clone(),
                        configtest: a.configtest.clone(),
                        reload: a.reload.clone(),
                        vhosts: a.vhosts_command.clone(),
                    },
                    busy: Mutex::new(()),
                    served: Remembered::default(),
                    log_dir: a.log_dir.clone(),
                    base: a.check_url.clone(),
                    tls_check: a.tls_check_addr.parse().ok(),
                    tls_vhost: a.tls_vhost_address.clone(),
                },
                None => Self::Unavailable("System mode needs [apache] vhost_dir: the folder Apache includes site configurations from.".into()),
            },
        }
    }

    fn unavailable(reason: &str) -> anyhow::Error {
        anyhow::anyhow!("{reason}")
    }

    /// Where a site's vhost file lives.
    pub fn vhost_path(&self, site: &str) -> Result<PathBuf, String> {
        match self {
            Self::Managed { sites_dir, .. } => {
                super::validate::site_name(site)?;
                Ok(sites_dir.join(format!("{site}.conf")))
            }
            Self::System { apache, .. } => apache.vhost_path(site),
            Self::Unavailable(r) => Err(r.clone()),
        }
    }

    /// Where per-site logs go.
    pub fn log_dir(&self) -> PathBuf {
        match self {
            Self::Managed { log_dir, .. } | Self::System { log_dir, .. } => log_dir.clone(),
            Self::Unavailable(_) => PathBuf::from("/nonexistent"),
        }
    }

    /// Base URL of health checks.
    pub fn check_base(&self) -> String {
        match self {
            Self::Managed { base, .. } | Self::System { base, .. } => base.clone(),
            Self::Unavailable(_) => String::new(),
        }
    }

    /// The `<VirtualHost>` address of HTTPS sites and where the health check reaches them.
    pub fn tls_addresses(&self) -> Result<(String, std::net::SocketAddr), String> {
        match self {
            Self::Managed { tls_listen: Some(a), .. } => Ok((a.to_string(), *a)),
            Self::Managed { .. } => Err("[apache] tls_listen is not an address like 127.0.0.1:8443, so HTTPS sites cannot be served.".into()),
            Self::System { tls_check: Some(a), tls_vhost, .. } => {
                crate::apache::serving::tls_address(tls_vhost)
                    .map(|v| (v.to_owned(), *a))
            }
            Self::System { .. } => Err("[apache] tls_check_addr is not an address like 127.0.0.1:443.".into()),
            Self::Unavailable(r) => Err(r.clone()),
        }
    }

    /// Makes Apache ready to serve HTTPS: the managed instance loads mod_ssl and listens on
    /// `tls_listen`; the host's Apache must have mod_ssl enabled (`a2enmod ssl`) already.
    pub async fn prepare_tls(&self) -> Result<(), String> {
        match self {
            Self::Managed {
                apache,
                tls_listen: Some(a),
                ..
            } => {
                let guard = apache.lock().await;
                guard
                    .enable_tls(*a)
                    .map(drop)
                    .map_err(|e| format!("HTTPS could not be set up for the private Apache: {e}."))
            }
            _ => self.tls_addresses().map(drop),
        }
    }

    /// The managed instance loads what PHP sites need (system mode: the host's Apache must
    /// have `proxy_fcgi` enabled; configtest and the health check say so otherwise).
    pub async fn prepare_php(&self) -> Result<(), String> {
        match self {
            Self::Managed { apache, .. } => apache
                .lock()
                .await
                .enable_php()
                .map(drop)
                .map_err(|e| format!("PHP could not be set up for the private Apache: {e}.")),
            _ => Ok(()),
        }
    }

    /// Starts the managed instance (stopping a stale one of ours first).
    pub async fn start(&self) -> anyhow::Result<()> {
        match self {
            Self::Managed { apache, .. } => apache.lock().await.start().await,
            Self::System { .. } => Ok(()),
            Self::Unavailable(r) => Err(Self::unavailable(r)),
        }
    }

    /// Starts the managed instance if it is not running.
    pub async fn ensure_running(&self) -> anyhow::Result<()> {
        if let Self::Managed { apache, .. } = self {
            let mut a = apache.lock().await;
            if !a.is_alive() {
                a.start().await?;
            }
        }
        Ok(())
    }

    /// Stops the managed instance for good (by its pid; nothing starts it again). A start that
    /// was cut short (its task aborted while Apache daemonized) may appear a moment later:
    /// look again, briefly.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let Self::Managed { apache, .. } = self else {
            return Ok(());
        };
        let mut a = apache.lock().await;
        a.retire();
        a.stop().await?;
        for _ in 0..5 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if a.pid().is_some() {
                a.stop().await?;
            }
        }
        Ok(())
    }

    /// `configtest`, in Apache's own words.
    pub async fn configtest(&self) -> anyhow::Result<CommandOutput> {
        match self {
            Self::Managed { apache, .. } => apache.lock().await.configtest().await,
            Self::System { apache, busy, .. } => {
                let _g = busy.lock().await;
                apache.configtest().await
            }
            Self::Unavailable(r) => Err(Self::unavailable(r)),
        }
    }

    /// Graceful reload.
    pub async fn reload(&self) -> anyhow::Result<CommandOutput> {
        match self {
            Self::Managed { apache, .. } => apache.lock().await.graceful().await,
            Self::System { apache, busy, .. } => {
                let _g = busy.lock().await;
                apache.reload().await
            }
            Self::Unavailable(r) => Err(Self::unavailable(r)),
        }
    }

    /// Whether Apache's parent process is running (system mode: assumed).
    pub async fn is_alive(&self) -> bool {
        match self {
            Self::Managed { apache, .. } => apache.lock().await.is_alive(),
            Self::System { .. } => true,
            Self::Unavailable(_) => false,
        }
    }

    /// The managed instance's pid.
    pub async fn pid(&self) -> Option<i32> {
        match self {
            Self::Managed { apache, .. } => apache.lock().await.pid(),
            _ => None,
        }
    }

    /// `running`, `stopped` or `unavailable`, for /healthz and pages.
    pub async fn status(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            _ if self.is_alive().await => "running",
            _ => "stopped",
        }
    }

    /// System mode: warnings when another VirtualHost on the machine already answers to one
    /// of `names` of `site` (or when that could not be checked), remembered for the site's
    /// page. None otherwise: the private Apache serves Cutover's sites only.
    pub async fn check_names(&self, site: &str, names: &[String]) -> Vec<String> {
        let Self::System { apache, served, .. } = self else {
            return Vec::new();
        };
        let warnings = apache.served_elsewhere(site, names).await;
        served.set(site, &warnings);
        warnings
    }

    /// What the last [`ApacheCtl::check_names`] of `site` found.
    pub fn name_warnings(&self, site: &str) -> Vec<String> {
        match self {
            Self::System { served, .. } => served.get(site),
            _ => Vec::new(),
        }
    }

    /// Checks Apache's workers can read the sites (managed mode); the reason when not.
    pub async fn check_reach(&self, path: &std::path::Path) -> Result<(), String> {
        match self {
            Self::Managed { apache, .. } => apache.lock().await.check_worker_can_reach(path),
            _ => Ok(()),
        }
    }
}
