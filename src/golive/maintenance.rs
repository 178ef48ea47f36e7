//! The files maintenance mode needs: the page visitors get (the live release's own
//! `maintenance.html` when it has one, else Cutover's) and the key that lets the console's
//! health check through, so a release can go live behind the maintenance page.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::runner::GoLive;
use crate::hosts::{remote, Host};
use crate::sites::{Site, SitePaths};

/// The site's own page, if the live release ships one.
const SITE_PAGE: &str = "maintenance.html";
/// Cutover's page, written into the site folder (outside every release).
const OWN_PAGE: &str = ".cutover-maintenance.html";
/// The health check's key (0600; only the console and root read it).
const KEY_FILE: &str = ".health-key";

/// The page that answers during maintenance (through `current`, so a release put live behind
/// it brings its own page), and the health key. Creates what is missing.
///
/// Small synchronous file work: callers run it off the async threads or accept one tiny read.
pub fn files(paths: &SitePaths) -> io::Result<(PathBuf, String)> {
    let key = key(paths)?;
    let own = paths.current().join(SITE_PAGE);
    if own.is_file() {
        return Ok((own, key));
    }
    let page = paths.dir.join(OWN_PAGE);
    if !page.is_file() {
        std::fs::write(&page, PAGE)?;
    }
    Ok((page, key))
}

/// The site's health key (made at first use).
fn key(paths: &SitePaths) -> io::Result<String> {
    let key_path = paths.dir.join(KEY_FILE);
    let key = match std::fs::read_to_string(&key_path) {
        Ok(k) if k.trim().len() >= 20 => k.trim().to_owned(),
        _ => {
            let key = crate::auth::secret::random_token();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&key_path)?;
            io::Write::write_all(&mut f, key.as_bytes())?;
            f.sync_all()?;
            key
        }
    };
    Ok(key)
}

impl GoLive {
    /// The maintenance page and key for `site`'s vhost, here or on `host`: on a host it is
    /// Cutover's page, written there with the vhost ([`Self::page_on`]); the key is this
    /// machine's, which the health check of every host sends.
    pub(crate) fn maintenance_for(
        &self,
        site: &Site,
        paths: &SitePaths,
        host: Option<&Host>,
    ) -> Result<Option<(PathBuf, String)>, String> {
        if !site.settings.config.maintenance {
            return Ok(None);
        }
        let why = |e: io::Error| format!("The maintenance page could not be prepared: {e}.");
        match host {
            None => files(paths).map(Some).map_err(why),
            Some(h) => {
                let here = SitePaths::new(&self.sites_root, &site.name);
                Ok(Some((h.dir().join(OWN_PAGE), key(&here).map_err(why)?)))
            }
        }
    }

    /// The key the health check sends to get past the maintenance page, in maintenance.
    pub(crate) fn health_key(&self, site: &Site) -> Option<String> {
        let here = SitePaths::new(&self.sites_root, &site.name);
        self.maintenance_for(site, &here, None)
            .ok()
            .flatten()
            .map(|(_, k)| k)
    }

    /// Writes Cutover's maintenance page on `host` when the site is in maintenance.
    pub(crate) async fn page_on(&self, site: &Site, host: &Host) -> Result<(), String> {
        if !site.settings.config.maintenance {
            return Ok(());
        }
        let path = format!("{}/{OWN_PAGE}", host.dir);
        remote::write_file(&self.ssh, host, &path, PAGE).await
    }
}

/// Cutover's maintenance page: plain, readable on a phone, no outside resources.
const PAGE: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>Down for maintenance</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#222}</style>
</head><body>
<h1>Down for maintenance</h1>
<p>This site is being updated and will be back shortly. Please try again in a few minutes.</p>
</body></html>
";
