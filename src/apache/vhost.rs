//! Rendering of one site's `<VirtualHost>` block.
//!
//! Every value is re-validated here against allow-lists (see [`super::validate`]), so
//! nothing a user typed can add, end or change a directive: no quoting is needed
//! beyond the double quotes around paths, which cannot contain quotes or backslashes.

use std::path::Path;

use super::validate;

/// Longest `ServerAlias` line we write; Apache refuses config lines over 8 KiB.
const ALIAS_LINE_MAX: usize = 8000;

/// What one site's VirtualHost needs.
#[derive(Debug, Clone, Copy)]
pub struct VhostSpec<'a> {
    /// The site's slug (see [`validate::site_name`]).
    pub site: &'a str,
    /// The host name visitors use (see [`validate::server_name`]).
    pub server_name: &'a str,
    /// Further host names, `*.` wildcards allowed (see [`validate::alias`]).
    pub aliases: &'a [String],
    /// Pinned mode: `<site_dir>/releases/<id>`; symlink mode: `<site_dir>/current`.
    pub document_root: &'a Path,
    /// `<sites_root>/<site>`: holds `current`, `releases/` and `shared/`, and gets FollowSymLinks.
    pub site_dir: &'a Path,
    /// Folder for `<site>-access.log` and `<site>-error.log`; must exist before a reload.
    pub log_dir: &'a Path,
    /// A vhost pinned to one release by its DocumentRoot (`<site_dir>/releases/<id>`), switched
    /// by a reload; every response carries `X-Cutover-Release: <id>`. Pinned sites now use
    /// `live_map` instead; this stays for the tests that compare the two.
    pub release: Option<&'a str>,
    /// Pinned mode: `<site_dir>/live.map` (see [`super::livemap`]). Every request is rewritten
    /// once, at its start, into `<site_dir>/releases/<id>/` for the id the map names, and the
    /// response carries `X-Cutover-Release: <id>`; switching rewrites the map, not the vhost.
    /// The document root is then `<site_dir>/current`, which no request is mapped through.
    pub live_map: Option<&'a Path>,
    /// How the site is served: index, maintenance, Options, `.htaccess`, PHP, directives.
    pub serving: super::serving::Serving<'a>,
    /// HTTPS: a second vhost on the TLS address (port 80 then redirects, if asked).
    pub tls: Option<super::serving::TlsVhost<'a>>,
}

/// Response header naming the release that served it (pinned mode; needs mod_headers).
pub const RELEASE_HEADER: &str = "X-Cutover-Release";
/// Header every site's vhost sets to the site's name: the health check knows by it that the
/// answer came from a configuration that has this site (right after a graceful reload, a
/// worker of the old generation may answer from one that does not, with another vhost).
pub const SITE_HEADER: &str = "X-Cutover-Site";

/// Renders the site's VirtualHost, or says which field is unacceptable and why.
///
/// With `release` set the vhost uses `Header`, so the Apache must load mod_headers
/// (the managed one does; on a system Apache: `a2enmod headers`), else configtest fails.
///
/// The address is `*:80 *:*`: `*:80` joins the name-based set of a system Apache whose
/// vhosts use `<VirtualHost *:80>` (Debian's default), where a bare `*:*` vhost is never
/// consulted on port 80; `*:*` matches the managed instance's `Listen 127.0.0.1:PORT`.
pub fn render(spec: &VhostSpec) -> Result<String, String> {
    validate::site_name(spec.site)?;
    validate::server_name(spec.server_name)?;
    for a in spec.aliases {
        validate::alias(a)?;
    }
    validate::config_path(spec.document_root, "document root")?;
    validate::config_path(spec.site_dir, "site folder")?;
    validate::config_path(spec.log_dir, "log folder")?;

    // The site folder is what FollowSymLinks and "Require all granted" apply to,
    // so it must really be this site's folder, and everything served must be inside it.
    if spec.site_dir.file_name().and_then(|n| n.to_str()) != Some(spec.site) {
        return Err(format!(
            "The site folder {} must be named after the site ({}).",
            spec.site_dir.display(),
            spec.site
        ));
    }
    let inside = spec
        .document_root
        .strip_prefix(spec.site_dir)
        .map(|rest| rest.components().next().is_some())
        .unwrap_or(false);
    if !inside {
        return Err(format!(
            "The document root {} must be a folder inside the site folder {} \
             (its current link or one of its releases).",
            spec.document_root.display(),
            spec.site_dir.display()
        ));
    }
    // Logs inside the served tree could be downloaded by anyone.
    if spec.log_dir.starts_with(spec.site_dir) {
        return Err(format!(
            "The log folder {} must not be inside the site folder {}, or visitors could read the logs.",
            spec.log_dir.display(),
            spec.site_dir.display()
        ));
    }
    if let Some(id) = spec.release {
        validate::release_id(id)?;
        // The header must tell the truth about which folder answers.
        if spec.document_root != spec.site_dir.join("releases").join(id) {
            return Err(format!(
                "The document root {} is not the folder of release {id}; in pinned mode it must be {}.",
                spec.document_root.display(),
                spec.site_dir.join("releases").join(id).display()
            ));
        }
    }
    if let Some(map) = spec.live_map {
        check_live_map(spec, map)?;
    }
    let alias_line = spec.aliases.join(" ");
    if alias_line.len() > ALIAS_LINE_MAX {
        return Err(format!(
            "The aliases add up to {} characters; Apache accepts at most {ALIAS_LINE_MAX} on one line. \
             Remove some aliases.",
            alias_line.len()
        ));
    }

    let site = spec.site;
    // Paths passed config_path, so they are valid UTF-8 and safe inside double quotes.
    let docroot = path_str(spec.document_root);
    let site_dir = path_str(spec.site_dir);
    let log_dir = path_str(spec.log_dir);
    let mut out = String::with_capacity(1024);
    out.push_str(&format!(
        "# Generated by Cutover for the site \"{site}\". Do not edit: Cutover overwrites this file\n\
         # whenever the site's settings change or a release goes live.\n"
    ));
    // The names, the content and the logs: the same for HTTP and HTTPS.
    let mut names =
        super::serving::from_setting("server_name, aliases", "the names this site answers to");
    names.push_str(&format!("    ServerName {}\n", spec.server_name));
    if !spec.aliases.is_empty() {
        names.push_str(&format!("    ServerAlias {alias_line}\n"));
    }
    let mut inner = format!("    DocumentRoot \"{docroot}\"\n");
    inner.push_str(&format!("    Header always set {SITE_HEADER} \"{site}\"\n"));
    if let Some(id) = spec.release {
        // "always": error responses (404, 500) must say which release gave them too.
        inner.push_str(&format!(
            "    Header always set {RELEASE_HEADER} \"{id}\"\n"
        ));
    }
    inner.push_str(&super::serving::head(&spec.serving, site)?);
    if let Some(map) = spec.live_map {
        inner.push_str(&rewrite_block(&site_dir, &path_str(map)));
    }
    // The <Directory> block goes on the folder that CONTAINS `current` (FollowSymLinks on
    // `current` itself is not honoured), and covers the releases and their links into shared/.
    inner.push_str(&super::serving::body(&spec.serving, &site_dir)?);
    // Plain files only: a piped log would run a program as root.
    let mut logs = format!("    ErrorLog \"{log_dir}/{site}-error.log\"\n");
    logs.push_str(&format!(
        "    CustomLog \"{log_dir}/{site}-access.log\" combined\n"
    ));
    out.push_str("<VirtualHost *:80 *:*>\n");
    out.push_str(&names);
    match &spec.tls {
        Some(t) if t.tls.redirect_http => out.push_str(&super::serving::redirect_to_https(t.port)),
        _ => out.push_str(&inner),
    }
    out.push_str(&logs);
    out.push_str("</VirtualHost>\n");
    if let Some(t) = &spec.tls {
        out.push_str(&format!(
            "<VirtualHost {}>\n",
            super::serving::tls_address(t.address)?
        ));
        out.push_str(&names);
        out.push_str(&super::serving::tls_lines(t.tls)?);
        out.push_str(&inner);
        out.push_str(&logs);
        out.push_str("</VirtualHost>\n");
    }
    Ok(out)
}

/// The live map must be the site's own, and the vhost must not also pin a release.
fn check_live_map(spec: &VhostSpec, map: &Path) -> Result<(), String> {
    validate::config_path(map, "live-release map")?;
    if map != spec.site_dir.join(super::livemap::FILE_NAME) {
        return Err(format!(
            "The live-release map {} must be {} in the site folder {}.",
            map.display(),
            super::livemap::FILE_NAME,
            spec.site_dir.display()
        ));
    }
    if spec.release.is_some() || spec.document_root != spec.site_dir.join("current") {
        return Err(format!(
            "With a live-release map the document root must be {} and no release is named in the vhost.",
            spec.site_dir.join("current").display()
        ));
    }
    Ok(())
}

/// The mod_rewrite rules of a pinned vhost (fixed text around two validated paths).
///
/// The release is chosen once per request: a sub-request (mod_dir's index lookup) inherits
/// `CUTOVER_RELEASE` from its main request, and an internal redirect (an ErrorDocument) gets
/// it back from `REDIRECT_CUTOVER_RELEASE`, so neither consults the map again and a switch in
/// between cannot mix two releases. Only an id of Cutover's own shape is used; a missing or
/// damaged map answers 503 rather than serving something else.
fn rewrite_block(site_dir: &str, map: &str) -> String {
    let mark = super::serving::from_setting(
        "switch = pinned",
        "each request is served from the release live.map names, so a switch needs no reload",
    );
    let id = super::livemap::ID_PATTERN;
    let key = super::livemap::KEY;
    let lines = [
        "RewriteEngine On".to_owned(),
        format!("RewriteMap cutover \"txt:{map}\""),
        // An internal redirect (ErrorDocument) keeps its request's release.
        format!("RewriteCond \"%{{ENV:REDIRECT_CUTOVER_RELEASE}}\" \"^({id})$\""),
        "RewriteRule \"^\" \"-\" [E=CUTOVER_RELEASE:%1]".to_owned(),
        // A main request reads the map; a sub-request already has its release.
        "RewriteCond \"%{ENV:CUTOVER_RELEASE}\" \"^$\"".to_owned(),
        format!("RewriteCond \"${{cutover:{key}}}\" \"^({id})$\""),
        "RewriteRule \"^\" \"-\" [E=CUTOVER_RELEASE:%1]".to_owned(),
        format!("RewriteCond \"%{{ENV:CUTOVER_RELEASE}}\" \"^({id})$\""),
        format!("RewriteRule \"^/(.*)$\" \"{site_dir}/releases/%1/$1\" [L]"),
        "RewriteRule \"^\" \"-\" [R=503,L]".to_owned(),
        format!("Header always set {RELEASE_HEADER} \"%{{CUTOVER_RELEASE}}e\" env=CUTOVER_RELEASE"),
    ];
    let block: String = lines.iter().map(|l| format!("    {l}\n")).collect();
    mark + &block
}

/// A validated path as text (lossless: validation refused non-UTF-8).
fn path_str(p: &Path) -> String {
    // Trailing slashes are dropped so "<dir>/<site>-error.log" never has "//".
    let s = p.to_string_lossy();
    let trimmed = s.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}
