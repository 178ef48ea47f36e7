//! The allow-list of a site's extra directives: which names, and which arguments.

use std::path::Path;

/// Directives a site may use, by what they do. Nothing here runs a program, loads code,
/// reads files outside the site or reaches past its vhost (arguments are checked below).
const ALLOWED: &[&str] = &[
    "header",
    "requestheader",
    "redirect",
    "redirectmatch",
    "redirectpermanent",
    "redirecttemp",
    "rewriteengine",
    "rewritecond",
    "rewriterule",
    "rewritebase",
    "rewriteoptions",
    "errordocument",
    "expiresactive",
    "expiresbytype",
    "expiresdefault",
    "addtype",
    "addcharset",
    "adddefaultcharset",
    "addencoding",
    "addlanguage",
    "defaultlanguage",
    "forcetype",
    "removetype",
    "directoryindex",
    "directoryslash",
    "fallbackresource",
    "setenvif",
    "setenvifnocase",
    "browsermatch",
    "browsermatchnocase",
    "setenv",
    "unsetenv",
    "require",
    "authtype",
    "authname",
    "authuserfile",
    "authgroupfile",
    "authbasicprovider",
    "limitrequestbody",
    "addoutputfilterbytype",
    "setoutputfilter",
    "fileetag",
    "alias",
    "aliasmatch",
];
/// Sections a site may open.
const SECTIONS: &[&str] = &[
    "location",
    "locationmatch",
    "files",
    "filesmatch",
    "if",
    "elseif",
    "else",
    "limit",
    "limitexcept",
    "requireall",
    "requireany",
    "requirenone",
    "ifmodule",
    "directory",
    "directorymatch",
];
/// Names refused with a specific reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "customlog",
        "a log with a pipe runs a program, and a path writes a file outside the site",
    ),
    (
        "errorlog",
        "a log with a pipe runs a program, and a path writes a file outside the site",
    ),
    (
        "transferlog",
        "a log with a pipe runs a program, and a path writes a file outside the site",
    ),
    ("logformat", "log formats are Cutover's"),
    (
        "authmerging",
        "Cutover makes each section's access rules combine with its own (AuthMerging And)",
    ),
    ("include", "it reads another configuration file"),
    ("includeoptional", "it reads another configuration file"),
    ("loadmodule", "it loads code into Apache"),
    ("loadfile", "it loads code into Apache"),
    ("define", "it defines variables for the whole server"),
    ("undefine", "it defines variables for the whole server"),
    ("scriptalias", "it runs programs"),
    ("scriptaliasmatch", "it runs programs"),
    (
        "sethandler",
        "a handler can run programs or show the server's internals",
    ),
    ("addhandler", "a handler can run programs"),
    ("action", "it runs programs"),
    ("rewritemap", "a map reads files or runs programs"),
    (
        "options",
        "the site's options are the separate options field",
    ),
    (
        "allowoverride",
        "what .htaccess may change is the separate allow_override field",
    ),
    (
        "php_value",
        "PHP settings are the site's php.settings field",
    ),
    ("php_flag", "PHP settings are the site's php.settings field"),
    (
        "php_admin_value",
        "PHP settings are the site's php.settings field",
    ),
    (
        "php_admin_flag",
        "PHP settings are the site's php.settings field",
    ),
    (
        "virtualhost",
        "the site's directives are already inside its own VirtualHost",
    ),
    ("documentroot", "the document root is Cutover's"),
    (
        "servername",
        "the site's names are its server_name and aliases fields",
    ),
    (
        "serveralias",
        "the site's names are its server_name and aliases fields",
    ),
    ("proxy", "it sends requests to other servers"),
    (
        "alias",
        "the release's own folders are what the site serves",
    ),
    (
        "aliasmatch",
        "the release's own folders are what the site serves",
    ),
];

pub(crate) fn check(
    name: &str,
    section: bool,
    words: &[String],
    site_dir: &Path,
) -> Result<(), String> {
    let args = &words[1..];
    let lower: Vec<String> = words.iter().map(|w| w.to_ascii_lowercase()).collect();
    if let Some((_, why)) = REFUSED
        .iter()
        .find(|(n, _)| *n == name || name.starts_with("proxy"))
    {
        let shown = if name.starts_with("proxy") {
            "it sends requests to other servers"
        } else {
            why
        };
        return Err(format!(
            "{} cannot be used here: {shown}.",
            words[0].trim_matches(['<', '>'])
        ));
    }
    let known = if section {
        SECTIONS.contains(&name)
    } else {
        ALLOWED.contains(&name)
    };
    if !known {
        return Err(format!(
            "{} is not a directive a site may use. Allowed: headers, redirects, rewrites, error pages, caching (Expires), types and charsets, index files, environment variables, access rules (Require, Basic authentication) and <Location>/<Files>/<If> sections.",
            crate::vocab::clip(&words[0])
        ));
    }
    let reads = ["file(", "filesize(", "filemod(", "%{file:", "osenv("];
    if lower.iter().any(|w| reads.iter().any(|f| w.contains(f))) {
        return Err(
            "an expression that reads a file or the server's environment cannot be used.".into(),
        );
    }
    // Types and filters that hand a file to a program, an interpreter or server-side includes.
    let runs = |w: &String| {
        ["cgi", "php", "x-httpd", "includes", "server-"]
            .iter()
            .any(|t| w.contains(t))
    };
    let typed = matches!(
        name,
        "addtype" | "forcetype" | "addoutputfilterbytype" | "setoutputfilter"
    );
    if typed && lower[1..].iter().any(runs) {
        return Err(format!(
            "{} cannot name a type or filter that runs programs, PHP or server-side includes.",
            words[0]
        ));
    }
    let web = |a: &str| !a.contains("://") || a.starts_with("http://") || a.starts_with("https://");
    if name.starts_with("redirect") {
        if let Some(a) = args.iter().find(|a| !web(a)) {
            return Err(format!(
                "{} sends visitors to {}: only http:// and https:// addresses.",
                words[0],
                crate::vocab::clip(a)
            ));
        }
    }
    if lower
        .iter()
        .any(|w| w.contains("cutover_") || w.contains("x-cutover"))
    {
        return Err("CUTOVER_ variables and X-Cutover headers are Cutover's own.".into());
    }
    let inside = |p: &str| inside_site(p, site_dir);
    match name {
        "rewriteengine" if lower.get(1).is_some_and(|w| w == "off") => {
            return Err(
                "RewriteEngine Off would stop the rewrite that serves the live release.".into(),
            );
        }
        "rewriterule" => {
            let flags = args
                .get(2)
                .map(|f| f.to_ascii_uppercase())
                .unwrap_or_default();
            let flag_list: Vec<&str> = flags
                .trim_matches(['[', ']'])
                .split(',')
                .map(str::trim)
                .collect();
            let bad_flag = |f: &&str| {
                ["P", "PROXY"].contains(f)
                    || ["H=", "HANDLER=", "T=", "TYPE="]
                        .iter()
                        .any(|p| f.starts_with(p))
            };
            if flag_list.iter().any(bad_flag) {
                return Err("RewriteRule with [P] (proxy), a handler or a type is not allowed: it sends requests to other servers or runs programs.".into());
            }
            let target = args.get(1).map(String::as_str).unwrap_or("");
            // The substitution picks a file: the request must not choose its folder, and it
            // must not climb out of the site.
            let dynamic = target.trim_start_matches('/').starts_with(['$', '%']);
            if target.contains("%{")
                || target.contains("..")
                || (target.starts_with('/') && dynamic)
            {
                return Err(format!(
                    "RewriteRule to {} could serve a file outside the site: a substitution may use $1… inside a path, but not server variables, .., or a back-reference as its first folder.",
                    crate::vocab::clip(target)
                ));
            }
            if !web(target) {
                return Err(format!(
                    "RewriteRule to {}: only http:// and https:// addresses.",
                    crate::vocab::clip(target)
                ));
            }
            let first = target
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            // A substitution whose first folder exists at the root is read as a file path:
            // even inside the site's folder that reaches other releases and Cutover's files.
            if target.starts_with('/') && !first.is_empty() && Path::new("/").join(first).is_dir() {
                return Err(format!(
                    "RewriteRule to {target} would serve a file outside the site."
                ));
            }
        }
        "authuserfile" | "authgroupfile" if !args.first().is_some_and(|p| inside(p)) => {
            return Err(format!("{} must be a file inside the site's folder {} (its shared folder is the usual place).", words[0], site_dir.display()));
        }
        "directory" | "directorymatch" => {
            let target = args.first().map(|a| a.trim_end_matches('>')).unwrap_or("");
            let escaped = format!("^{}", site_dir.display().to_string().replace('.', "\\."));
            let ok = if name == "directory" {
                inside(target)
            } else {
                // Anchored at the site's folder, then a folder boundary; no alternative or
                // quoting trick that could match a folder elsewhere.
                let pattern = target.trim_matches('"');
                let rest = pattern.strip_prefix(&escaped).unwrap_or("\u{0}");
                let boundary = rest.strip_prefix("(/|$)");
                let rest = boundary.unwrap_or(rest);
                let bounded = boundary.is_some() || rest.starts_with('/') || rest == "$";
                let tricks = ["|", "\\Q", "(?", ".."];
                bounded && !tricks.iter().any(|t| rest.contains(t))
            };
            if !ok {
                return Err(format!(
                    "<{}> must name a folder inside the site's folder {}.",
                    words[0].trim_start_matches('<'),
                    site_dir.display()
                ));
            }
        }
        "errordocument" => {
            let doc = args.get(1).map(String::as_str).unwrap_or("");
            let url =
                doc.starts_with('/') || doc.starts_with("http://") || doc.starts_with("https://");
            if !url && words.len() > 2 && !doc.contains(' ') && doc.contains('/') {
                return Err(
                    "ErrorDocument takes a URL path, a full URL, or a quoted message.".into(),
                );
            }
        }
        _ => {}
    }
    Ok(())
}

/// A path that stays inside `site_dir` (absolute, no `..`).
fn inside_site(p: &str, site_dir: &Path) -> bool {
    let p = Path::new(p.trim_end_matches('>'));
    p.is_absolute()
        && p.starts_with(site_dir)
        && !p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}
