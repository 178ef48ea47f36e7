//! What a site's vhost needs from outside its settings: its PHP-FPM pool's socket and its
//! extra directives in checked, re-rendered form.

use std::time::Instant;

use super::live::Steps;
use super::report::{fail, Failure};
use super::runner::GoLive;
use crate::error::code;
use crate::sites::{Runtime, Site, SitePaths};

impl GoLive {
    /// The socket of the site's PHP-FPM pool (PHP sites, when PHP-FPM is available).
    pub(crate) fn php_socket(&self, site: &Site) -> Option<std::path::PathBuf> {
        if site.settings.config.runtime != Runtime::Php {
            return None;
        }
        self.php.as_ref().map(|php| php.socket(&site.name))
    }

    /// A PHP site's pool, written and tested by PHP-FPM before anything else changes, and the
    /// master running. True when the pool changed (PHP-FPM must then reload).
    pub(crate) async fn php_step(
        &self,
        site: &Site,
        paths: &SitePaths,
        steps: &mut Steps,
    ) -> Result<bool, Failure> {
        if site.settings.config.runtime != Runtime::Php {
            return Ok(false);
        }
        let Some(php) = self.php.clone() else {
            let m = match self.apache.as_ref() {
                crate::apache::ApacheCtl::System { .. } => "This site runs PHP, and in system mode Cutover uses the host's PHP-FPM: set [php] pool_dir (e.g. /etc/php/8.2/fpm/pool.d), and [php] test and reload if they differ from php-fpm8.2 -t and systemctl reload php8.2-fpm, restart Cutover, then try again.",
                _ => "This site runs PHP, but PHP-FPM is not installed on this server: install it (apt-get install php-fpm), restart Cutover, then try again.",
            };
            return Err(fail(code::PHP_UNAVAILABLE, m.into(), false));
        };
        let t = Instant::now();
        self.apache
            .prepare_php()
            .await
            .map_err(|m| fail(code::PHP_UNAVAILABLE, m, false))?;
        let (site, paths) = (site.clone(), paths.clone());
        let result = crate::blocking::spawn(move || write_pool(&php, &site, &paths)).await;
        let (ok, detail, changed) = match result {
            Ok(Ok(changed)) => (
                true,
                if changed {
                    "pool written, PHP-FPM accepts it"
                } else {
                    "pool unchanged"
                }
                .to_owned(),
                changed,
            ),
            Ok(Err(e)) => (false, format!("{e:#}"), false),
            Err(e) => (false, e.to_string(), false),
        };
        steps.push("PHP-FPM pool", t, ok, detail.clone());
        if !ok {
            return Err(fail(
                code::PHP_REFUSED,
                format!("PHP-FPM refused the site's pool: {detail}"),
                false,
            ));
        }
        Ok(changed)
    }

    /// An HTTPS site's certificate, checked before anything changes, and Apache made ready
    /// to serve HTTPS.
    pub(crate) async fn tls_step(&self, site: &Site, steps: &mut Steps) -> Result<(), Failure> {
        let t = Instant::now();
        let Some(checked) = crate::sites::tls::Tls::check_site(
            site.settings.config.tls.as_ref(),
            site.settings.names(),
        )
        .await
        else {
            return Ok(());
        };
        let refused = |m: String| fail(code::TLS_REFUSED, m, false);
        let info = checked.map_err(|m| {
            steps.push("check certificate", t, false, m.clone());
            refused(m)
        })?;
        steps.push(
            "check certificate",
            t,
            true,
            format!("valid until {} ({} days)", info.not_after, info.days_left),
        );
        self.apache.prepare_tls().await.map_err(refused)
    }

    /// The extra directives, parsed and checked again, as the lines the vhost gets.
    pub(crate) fn directives(
        &self,
        site: &Site,
        paths: &SitePaths,
    ) -> Result<(String, String), String> {
        crate::sites::render_directives(&site.settings.config.directives, &paths.dir)
    }
}

/// Writes the pool (the old one back if PHP-FPM refuses it), hands the site's shared folders
/// to PHP's workers, and makes sure the master runs. True when the pool changed.
fn write_pool(php: &crate::php::Php, site: &Site, paths: &SitePaths) -> anyhow::Result<bool> {
    let state = php.state_dir(&site.name)?;
    for shared in &site.settings.shared_paths {
        crate::php::chown_to_worker(&paths.shared().join(shared))?;
    }
    let user = crate::php::worker_user();
    let text = crate::php::pool::render(&crate::php::pool::PoolSpec {
        site: &site.name,
        site_dir: &paths.dir,
        socket: &php.socket(&site.name),
        state_dir: &state,
        log_dir: &php.log_dir(),
        user,
        listen_owner: user,
        settings: &site.settings.config.php.settings,
    })
    .map_err(anyhow::Error::msg)?;
    let old = php.pool_text(&site.name);
    let changed = php.write_pool(&site.name, &text)?;
    if changed {
        let test = php.test()?;
        if !test.ok {
            php.restore_pool(&site.name, old.as_deref())?;
            anyhow::bail!("{}", test.output);
        }
    }
    // A new or changed pool takes effect by a graceful reload (starting the master if needed).
    if changed {
        php.reload()?;
    } else {
        php.ensure_running()?;
    }
    Ok(changed)
}
