//! `Application`: opens the database, builds the HTTP server, runs it until a signal.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer};
use anyhow::Context;
use serde_json::json;
use sqlx::SqlitePool;
use tracing_actix_web::TracingLogger;

use crate::apache::ApacheCtl;
use crate::audit::{self, Event, Outcome};
use crate::auth::password::Hasher;
use crate::auth::throttle::Throttle;
use crate::auth::Auth;
use crate::config::Settings;
use crate::golive::GoLive;
use crate::web::{self, AppState};

/// The opened database and accounts service, shared by `serve` and the CLI commands.
pub struct Core {
    /// The database.
    pub pool: SqlitePool,
    /// Accounts.
    pub auth: Auth,
}

impl Core {
    /// Creates the data folder (private to this user) and opens the database.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        create_private_dir(&settings.data_dir)?;
        crate::db::files::check_data_dir(&settings.data_dir)?;
        // Password hashes and the audit log: readable by this user only, from the first byte.
        crate::db::files::make_private(&settings.database_path())?;
        let pool = crate::db::connect(&settings.database_path()).await?;
        crate::audit::integrity::ensure_started(&pool).await?;
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let auth = Auth {
            pool: pool.clone(),
            hasher: Hasher::new(threads)?,
            throttle: Throttle::default(),
            settings: settings.session.clone(),
            refusals: Default::default(),
        };
        Ok(Self { pool, auth })
    }
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        // 0711: private listing, but Apache's workers may pass through to the sites below.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(dir)
            .with_context(|| format!("creating the data folder {}", dir.display()))?;
    }
    Ok(())
}

/// The running console.
pub struct Application {
    addr: std::net::SocketAddr,
    apache: Arc<ApacheCtl>,
    php: Option<Arc<crate::php::Php>>,
    ssh: Arc<crate::hosts::Ssh>,
    /// Problems found at start-up that people should see (printed by `serve`).
    pub warnings: Vec<String>,
    server: Server,
    pool: SqlitePool,
    first_run_password: Option<String>,
    signals: Option<Signals>,
    refusals: crate::audit::flood::Refusals,
    anchoring: crate::config::AuditSettings,
}

impl Application {
    /// Opens everything and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Taken over first: a SIGTERM that comes while we start (and start Apache) must stop
        // the console in order, not kill it and leave its Apache running.
        let signals = Signals::register();
        let settings = Arc::new(settings);
        let core = Core::open(&settings).await?;
        let first_run_password = core.auth.bootstrap_admin().await?;
        // Uploads cut off by a crash are worthless: nothing refers to them.
        let uploads = settings.data_dir.join("uploads");
        if uploads.is_dir() {
            std::fs::remove_dir_all(&uploads)
                .with_context(|| format!("clearing {}", uploads.display()))?;
        }
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("listening on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        audit::record_alone(
            &core.pool,
            &Event::new("system", "console_start", Outcome::Ok)
                .detail(json!({"listen": listener.local_addr()?.to_string(), "version": env!("CARGO_PKG_VERSION")})),
        )
        .await?;
        let (apache, warnings) = start_apache(&settings, &core.pool).await?;
        let golive = GoLive {
            pool: core.pool.clone(),
            sites_root: settings.sites_root(),
            apache: apache.clone(),
            http: crate::golive::health::client()?,
            health_timeout: Duration::from_secs(settings.apache.health_timeout_seconds),
            php: crate::php::managed(&settings),
            steps: std::sync::Arc::new(settings.step_runner(&core.pool)),
            ssh: Arc::new(settings.ssh()),
        };
        // The hosts of sites on several web servers are checked in the background: a host
        // that hangs must not hold up the start.
        let checker = golive.clone();
        tokio::spawn(async move {
            if let Err(e) = checker.check_hosts().await {
                tracing::error!(error = ?e, "checking the hosts at start-up failed");
            }
        });
        let ssh = golive.ssh.clone();
        let php = golive.php.clone();
        crate::php::watch::start(php.clone(), &core.pool).await;
        let refusals = core.auth.refusals.clone();
        let anchoring = settings.audit.clone();
        let state = actix_web::web::Data::new(AppState {
            pool: core.pool.clone(),
            auth: core.auth,
            settings,
            golive,
            streams: Default::default(),
            runs: Default::default(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    actix_web::web::FormConfig::default()
                        .limit(64 * 1024)
                        .error_handler(web::error::form_refused),
                )
                .configure(web::routes::configure)
                .default_service(actix_web::web::to(web::layout::not_found))
                .wrap(from_fn(web::access::guard))
                .wrap(from_fn(web::headers::security_headers))
                .wrap(TracingLogger::default())
                // Outermost: an oversized head is refused before anything logs or reads it.
                .wrap(from_fn(web::limits::head_limit))
        })
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        Ok(Self {
            php,
            ssh,
            signals,
            addr,
            apache,
            warnings,
            server,
            pool: core.pool,
            first_run_password,
            refusals,
            anchoring,
        })
    }

    /// The Apache this console drives.
    pub fn apache(&self) -> Arc<ApacheCtl> {
        self.apache.clone()
    }

    /// The port the console listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the console listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// On first run, the generated password of `admin` (to print once).
    pub fn first_run_password(&self) -> Option<&str> {
        self.first_run_password.as_deref()
    }

    /// A handle to stop the server from elsewhere (tests).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or the handle stops it), then finishes in-flight requests.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let pool = self.pool.clone();
        let registered = self.signals.take();
        let signals = tokio::spawn(async move {
            let signal = wait_for_signal(registered).await;
            tracing::info!(%signal, "stopping");
            let _ = audit::record_alone(
                &pool,
                &Event::new("system", "console_stop", Outcome::Ok)
                    .detail(json!({"signal": signal})),
            )
            .await;
            handle.stop(true).await;
        });
        let sweeper = tokio::spawn(sweep_sessions(self.pool.clone()));
        let monitor = tokio::spawn(watch_apache(self.apache.clone(), self.pool.clone()));
        // If this future is dropped (e.g. its task aborted), the helpers stop with it: a
        // watcher left behind would restart an Apache someone meant to stop.
        let counter = tokio::spawn(self.refusals.clone().run(self.pool.clone()));
        let a = self.anchoring.clone();
        let anchor = tokio::spawn(crate::audit::checkpoint::run(
            self.pool.clone(),
            a.checkpoint_file.clone(),
            a.syslog,
            Duration::from_secs(a.checkpoint_interval_seconds),
        ));
        let mut helpers = vec![signals, sweeper, monitor, counter, anchor];
        if let Some(php) = self.php.clone() {
            helpers.push(tokio::spawn(crate::php::watch::watch(
                php,
                self.pool.clone(),
            )));
        }
        let _helpers = AbortOnDrop(helpers);
        let result = self.server.await.context("running the HTTP server");
        drop(_helpers);
        // The refusals counted since the last interval are not lost at a stop.
        if let Err(e) = self.refusals.flush(&self.pool).await {
            tracing::warn!(error = ?e, "could not record the repeated refusals");
        }
        // The last checkpoint covers the console's stop.
        if let Ok(Some(head)) = crate::audit::checkpoint::current(&self.pool).await {
            let (file, syslog) = (a.checkpoint_file.as_deref(), a.syslog);
            if let Err(e) = crate::audit::checkpoint::publish(&head, file, syslog).await {
                tracing::warn!(error = ?e, "could not write the audit checkpoint");
            }
        }
        if let Err(e) = self.apache.stop().await {
            tracing::error!(error = ?e, "could not stop the private Apache");
        }
        if let Some(php) = self.php.clone() {
            let _ = crate::blocking::spawn(move || php.stop()).await;
        }
        crate::hosts::close_all(&self.ssh, &self.pool).await;
        self.pool.close().await;
        result
    }
}

/// SIGINT and SIGTERM, caught from the moment they are registered (signals that arrive
/// before anyone waits are kept).
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> Option<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt()).ok()?;
        let term = signal(SignalKind::terminate()).ok()?;
        Some(Signals { int, term })
    }
}

async fn wait_for_signal(signals: Option<Signals>) -> &'static str {
    let Some(Signals { mut int, mut term }) = signals else {
        std::future::pending::<()>().await;
        unreachable!();
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Removes expired sessions now and then (they are refused on use anyway).
async fn sweep_sessions(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_secs(300));
    loop {
        tick.tick().await;
        // Generous bounds: exact time-outs are enforced at each use.
        if let Err(e) = crate::db::sessions::delete_expired(&pool, 24 * 3600, 7 * 24 * 3600).await {
            tracing::warn!(error = ?e, "could not sweep expired sessions");
        }
    }
}

/// Sets up Apache: reconciles disk with the records, then starts the managed instance.
/// Problems are returned as warnings (the console still runs, to show them).
async fn start_apache(
    settings: &Settings,
    pool: &SqlitePool,
) -> anyhow::Result<(Arc<ApacheCtl>, Vec<String>)> {
    let apache = Arc::new(ApacheCtl::from_settings(settings));
    let mut warnings = Vec::new();
    if let ApacheCtl::Unavailable(reason) = apache.as_ref() {
        warnings.push(reason.clone());
    }
    std::fs::create_dir_all(settings.sites_root())
        .with_context(|| format!("creating {}", settings.sites_root().display()))?;
    // Steps a killed console left running: their processes stopped, their runs recorded.
    let interrupted = crate::steps::store::recover(pool).await?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "deploy steps were interrupted by the last stop"
        );
    }
    let vhosts = apache.clone();
    crate::golive::reconcile::reconcile(pool, &settings.sites_root(), move |site| {
        vhosts.vhost_path(site).unwrap_or_default()
    })
    .await?;
    if let ApacheCtl::Managed { .. } = apache.as_ref() {
        // PHP sites' modules, before Apache starts (a console upgraded from one that loaded
        // them always has PHP sites but no modules file yet).
        let php_sites = crate::sites::store::list(pool).await?;
        if php_sites
            .iter()
            .any(|s| s.settings.config.runtime == crate::sites::Runtime::Php)
        {
            if let Err(why) = apache.prepare_php().await {
                warnings.push(why);
            }
        }
        if let Err(why) = apache.check_reach(&settings.sites_root()).await {
            warnings.push(why);
        }
        match apache.start().await {
            Ok(()) => tracing::info!(base = %apache.check_base(), "private Apache running"),
            Err(e) => warnings.push(format!("The private Apache did not start: {e:#}")),
        }
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    Ok((apache, warnings))
}

/// Notices when the managed Apache dies: records it, then starts it again.
async fn watch_apache(apache: Arc<ApacheCtl>, pool: SqlitePool) {
    if !matches!(apache.as_ref(), ApacheCtl::Managed { .. }) {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut was_alive = apache.is_alive().await;
    loop {
        tick.tick().await;
        let alive = apache.is_alive().await;
        if was_alive && !alive {
            tracing::error!("the private Apache stopped running");
            let _ = audit::record_alone(
                &pool,
                &Event::new("system", "apache_died", Outcome::Failed)
                    .detail(json!({"base": apache.check_base()})),
            )
            .await;
            let restarted = apache.ensure_running().await;
            let outcome = if restarted.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Failed
            };
            let detail = json!({"error": restarted.as_ref().err().map(|e| format!("{e:#}"))});
            let _ = audit::record_alone(
                &pool,
                &Event::new("system", "apache_restart", outcome).detail(detail),
            )
            .await;
        }
        was_alive = apache.is_alive().await;
    }
}

/// Aborts background tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
