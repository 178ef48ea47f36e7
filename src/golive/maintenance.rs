//! The files maintenance mode needs: the page visitors get (the live release's own
//! `maintenance.html` when it has one, else Cutover's) and the key that lets the console's
//! health check through, so a release can go live behind the maintenance page.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::sites::SitePaths;

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
