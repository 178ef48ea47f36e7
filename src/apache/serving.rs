//! The part of a site's VirtualHost that says how it is served: index files, maintenance
//! mode, the `<Directory>` block (Options, AllowOverride), and what happens to PHP files.
//!
//! Every value was validated by `crate::sites::config`; it is checked again here, because a
//! vhost is written with root's authority and one stray character could add a directive.

use std::path::Path;

use crate::sites::config::{check_index, check_options, AllowOverride, Runtime, SiteConfig};

/// PHP source files by any name PHP or an editor gives them (any case).
const PHP_FILES: &str = "(?i)\\.(php[0-9]?|phtml|pht|phar|phps|inc)$";
/// The files a PHP site's pool runs; every other PHP-like name is refused.
const PHP_RUN: &str = "(?i)\\.(php|phtml)$";
/// The URL of the maintenance page (outside every release).
pub const MAINTENANCE_URL: &str = "/.cutover-maintenance.html";
/// The header that lets the console's health check through maintenance mode.
pub const HEALTH_KEY_HEADER: &str = "X-Cutover-Health";
/// Seconds a visitor is asked to wait during maintenance.
const RETRY_AFTER: u32 = 300;
/// How a comment line names the setting the lines after it come from (the vhost page shows
/// each setting's contribution by these).
pub const SETTING_MARK: &str = "# setting ";

/// The comment line that says which setting the following lines come from, and why.
pub fn from_setting(field: &str, why: &str) -> String {
    format!("    {SETTING_MARK}{field}: {why}\n")
}

/// What the serving part of a vhost needs beyond the site's settings.
#[derive(Debug, Clone, Copy)]
pub struct Serving<'a> {
    /// The site's v2 settings.
    pub config: &'a SiteConfig,
    /// The site's shared folders (relative, validated): PHP never runs in them.
    pub shared_paths: &'a [String],
    /// PHP sites: the Unix socket of the site's PHP-FPM pool.
    pub php_socket: Option<&'a Path>,
    /// Maintenance on: the page to answer with and the health check's key.
    pub maintenance: Option<(&'a Path, &'a str)>,
    /// Extra directives, already checked and re-rendered (one directive per line).
    pub directives: &'a str,
    /// Their top-level redirects, for the site folder's `<Directory>` block.
    pub redirects: &'a str,
}

/// Lines before the release rewrite: the index and, in maintenance, the 503 for everyone
/// but the console's health check.
pub fn head(s: &Serving, site: &str) -> Result<String, String> {
    check_index(&s.config.directory_index)?;
    let mut out = from_setting(
        "directory_index",
        "the files a folder's address answers with",
    );
    out.push_str(&format!(
        "    DirectoryIndex {}\n",
        s.config.directory_index.join(" ")
    ));
    if let Some((page, key)) = s.maintenance {
        super::validate::config_path(page, "maintenance page")?;
        if key.len() < 20
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            return Err("The maintenance key is not one Cutover made.".into());
        }
        let page = page.to_string_lossy();
        let url = MAINTENANCE_URL.replace('.', "\\.");
        out.push_str(&format!(
            "    {SETTING_MARK}maintenance: every request of {site} answers 503, except the console's health check.\n\
             \x20   RewriteEngine On\n\
             \x20   RewriteCond \"%{{REQUEST_URI}}\" \"!^{url}$\"\n\
             \x20   RewriteCond \"%{{HTTP:{HEALTH_KEY_HEADER}}}\" \"!={key}\"\n\
             \x20   RewriteRule \"^\" \"-\" [R=503,L]\n\
             \x20   RewriteRule \"^{url}$\" \"-\" [L]\n\
             \x20   Alias \"{MAINTENANCE_URL}\" \"{page}\"\n\
             \x20   ErrorDocument 503 {MAINTENANCE_URL}\n\
             \x20   Header always set Retry-After \"{RETRY_AFTER}\" \"expr=%{{REQUEST_STATUS}} == 503\"\n"
        ));
    }
    // Before the release rewrite: a site's RewriteRules must run before the rule that maps
    // the request into the live release (which ends rewriting).
    if !s.directives.trim().is_empty() {
        if s.directives.contains(['\r', '\0']) {
            return Err("The extra directives contain control characters.".into());
        }
        out.push_str(&from_setting(
            "directives",
            "the site's own directives, checked line by line by Cutover",
        ));
        out.push_str(s.directives);
        if !s.directives.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The `<Directory>` block of the site folder, the PHP rules and the extra directives.
pub fn body(s: &Serving, site_dir: &str) -> Result<String, String> {
    let c = s.config;
    check_options(&c.options)?;
    c.allow_override.check()?;
    // Symbolic links must be followed: `current` and the releases' links into shared/ are
    // links. SymLinksIfOwnerMatch is the stricter choice when the site asks for it.
    let mut options: Vec<&str> = c.options.iter().map(String::as_str).collect();
    if !options.contains(&"SymLinksIfOwnerMatch") && !options.contains(&"FollowSymLinks") {
        options.push("FollowSymLinks");
    }
    let mut out = from_setting(
        "options, allow_override",
        "what Apache does in the site's folder, and what an uploaded .htaccess may change",
    );
    out.push_str(&format!("    <Directory \"{site_dir}\">\n"));
    // Absolute, not +/-, so nothing inherited (ExecCGI, Includes) survives.
    out.push_str(&format!("        Options {}\n", options.join(" ")));
    let overrides = c.allow_override.apache_args();
    out.push_str(&format!("        AllowOverride {overrides}\n"));
    if c.allow_override != AllowOverride::default() {
        // An uploaded .htaccess may not send requests anywhere but to files.
        out.push_str("        AllowOverrideList None\n");
    }
    out.push_str("        Require all granted\n");
    if !s.redirects.is_empty() {
        out.push_str(s.redirects);
    }
    out.push_str("    </Directory>\n");
    out.push_str(&php_rules(s, site_dir)?);
    Ok(out)
}

/// PHP files: never sent as source; on a PHP site the pool runs those that exist, never in
/// a shared folder.
fn php_rules(s: &Serving, site_dir: &str) -> Result<String, String> {
    let mut out = String::new();
    match (s.config.runtime, s.php_socket) {
        (Runtime::Static, _) => {
            out.push_str(&from_setting(
                "runtime = static",
                "PHP files are never sent, their source could hold secrets",
            ));
            out.push_str(&deny_files(PHP_FILES, "    "));
        }
        (Runtime::Php, None) => return Err("A PHP site needs its PHP-FPM pool's socket.".into()),
        (Runtime::Php, Some(socket)) => {
            super::validate::config_path(socket, "PHP-FPM socket")?;
            let socket = socket.to_string_lossy();
            out.push_str(&from_setting(
                "runtime = php",
                "PHP through the site's own PHP-FPM pool (its php settings are in the pool), only for files that exist",
            ));
            out.push_str(
                "    # (so /x.jpg/y.php never runs x.jpg); other PHP-like names are refused.\n",
            );
            out.push_str("    SetEnvIf Authorization \"(.*)\" HTTP_AUTHORIZATION=$1\n");
            out.push_str(&format!("    <FilesMatch \"{PHP_RUN}\">\n"));
            out.push_str("        <If \"-f %{REQUEST_FILENAME}\">\n");
            out.push_str(&format!(
                "            SetHandler \"proxy:unix:{socket}|fcgi://localhost\"\n"
            ));
            out.push_str("        </If>\n");
            out.push_str("    </FilesMatch>\n");
            out.push_str(&deny_files("(?i)\\.(php[0-9]|pht|phar|phps|inc)$", "    "));
        }
    }
    for shared in s.shared_paths {
        // Validated as a relative path of safe names; dots are escaped for the pattern.
        if !shared
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        {
            return Err(format!("The shared path {shared} has characters Cutover does not write into Apache's configuration."));
        }
        if s.config.runtime == Runtime::Php && s.config.php_in_shared.contains(shared) {
            out.push_str(&format!(
                "    # PHP may run in the shared folder {shared} (the site's php_in_shared).\n"
            ));
            continue;
        }
        let shared = shared.replace('.', "\\.");
        let site = site_dir.replace('.', "\\.");
        out.push_str(&from_setting(
            "shared_paths",
            "a folder kept from one release to the next; uploads there never run",
        ));
        out.push_str(&format!(
            "    <DirectoryMatch \"^{site}/(current|releases/[^/]+)/{shared}(/|$)\">\n"
        ));
        out.push_str("        # Uploaded files never run: PHP source is refused, not sent.\n");
        out.push_str(&deny_files(PHP_FILES, "        "));
        out.push_str("    </DirectoryMatch>\n");
    }
    Ok(out)
}

fn deny_files(pattern: &str, indent: &str) -> String {
    format!("{indent}<FilesMatch \"{pattern}\">\n{indent}    Require all denied\n{indent}</FilesMatch>\n")
}

/// The HTTPS vhost of a site.
#[derive(Debug, Clone, Copy)]
pub struct TlsVhost<'a> {
    /// `<VirtualHost>` address: `127.0.0.1:8443` (managed) or `*:443` (system).
    pub address: &'a str,
    /// The port visitors reach HTTPS on (named in the redirect unless 443).
    pub port: u16,
    /// Certificate files and options.
    pub tls: &'a crate::sites::tls::Tls,
}

/// A `<VirtualHost>` address Cutover writes: `*:<port>` (system mode, `*:443` by default) or
/// `IP:port`.
pub fn tls_address(a: &str) -> Result<&str, String> {
    let any_port = a
        .strip_prefix("*:")
        .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let ok = any_port || a.parse::<std::net::SocketAddr>().is_ok();
    ok.then_some(a)
        .ok_or_else(|| format!("{a} is not an address for an HTTPS VirtualHost."))
}

/// Port 80's answer when the site redirects to HTTPS: 301 to the same path (the host name is
/// the one the request matched, so only this site's names can appear).
pub fn redirect_to_https(port: u16) -> String {
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let mark = from_setting(
        "tls.redirect_http",
        "port 80 answers 301 to the same address over HTTPS",
    );
    format!(
        "{mark}    RewriteEngine On\n    RewriteRule \"^/(.*)$\" \"https://%{{SERVER_NAME}}{port}/$1\" [R=301,L,NE]\n"
    )
}

/// mod_ssl's lines: certificate, key, chain, and HSTS when asked.
pub fn tls_lines(t: &crate::sites::tls::Tls) -> Result<String, String> {
    t.check_paths()?;
    let mut out = from_setting("tls", "HTTPS with the site's certificate, key and chain");
    out.push_str("    SSLEngine on\n");
    out.push_str(&format!(
        "    SSLCertificateFile \"{}\"\n",
        t.certificate.display()
    ));
    out.push_str(&format!(
        "    SSLCertificateKeyFile \"{}\"\n",
        t.key.display()
    ));
    if let Some(chain) = &t.chain {
        out.push_str(&format!(
            "    SSLCertificateChainFile \"{}\"\n",
            chain.display()
        ));
    }
    if t.hsts {
        out.push_str(&from_setting(
            "tls.hsts",
            "browsers must use HTTPS for a year",
        ));
        out.push_str("    Header always set Strict-Transport-Security \"max-age=31536000\"\n");
    }
    Ok(out)
}
