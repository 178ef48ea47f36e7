//! System mode: which host names the machine's other VirtualHosts already answer to, read
//! from `apache2ctl -S`. A site whose name is served elsewhere is not refused (the other
//! vhost may be on its way out), but staff are warned: Apache sends a request to the first
//! VirtualHost whose name matches, so one of the two would never see it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::command::run_command;

/// How long the listing may take before the check is given up (never blocks the change).
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// One name a VirtualHost answers to, as `apache2ctl -S` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The `ServerName` or a `ServerAlias` (lower case; an alias may hold `*` or `?`).
    pub name: String,
    /// The file the VirtualHost is defined in.
    pub file: String,
    /// Its line there.
    pub line: u32,
    /// The port, when listed.
    pub port: Option<u16>,
}

/// Reads the name-based VirtualHosts out of `apache2ctl -S` output: `port 80 namevhost NAME
/// (FILE:LINE)` with its `alias NAME` / `wild alias NAME` lines, and an address's only
/// VirtualHost, `ADDR NAME (FILE:LINE)`. Everything else (`default server`, `ServerRoot:`,
/// warnings) is skipped.
pub fn parse(output: &str) -> Vec<Served> {
    let mut found: Vec<Served> = Vec::new();
    // The VirtualHost the next alias lines belong to.
    let mut owner: Option<Served> = None;
    for raw in output.lines() {
        let line = raw.trim();
        let alias = line
            .strip_prefix("alias ")
            .or_else(|| line.strip_prefix("wild alias "));
        if let (Some(alias), Some(vhost)) = (alias, &owner) {
            let name = alias.trim().to_lowercase();
            found.push(Served {
                name,
                ..vhost.clone()
            });
            continue;
        }
        owner = if let Some(rest) = line.strip_prefix("port ") {
            // `80 namevhost NAME (FILE:LINE)`
            let (port, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            rest.trim_start()
                .strip_prefix("namevhost ")
                .and_then(|rest| place(rest, port.parse().ok()))
        } else if !raw.starts_with(char::is_whitespace) && !line.ends_with("NameVirtualHost") {
            // `ADDR NAME (FILE:LINE)`: the only VirtualHost on that address.
            line.split_once(char::is_whitespace)
                .and_then(|(addr, rest)| {
                    let port = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
                    place(rest.trim(), port)
                })
        } else {
            None
        };
        found.extend(owner.clone());
    }
    found
}

/// `NAME (FILE:LINE)`.
fn place(s: &str, port: Option<u16>) -> Option<Served> {
    let (name, rest) = s.split_once(" (")?;
    let (file, line) = rest.trim_end().strip_suffix(')')?.rsplit_once(':')?;
    Some(Served {
        name: name.trim().to_lowercase(),
        file: file.to_owned(),
        line: line.parse().ok()?,
        port,
    })
}

/// Whether Apache's wildcard `pattern` (`*` any run of characters, `?` one) matches `host`.
fn glob(pattern: &[u8], host: &[u8]) -> bool {
    match (pattern.split_first(), host.split_first()) {
        (None, None) => true,
        (Some((&b'*', rest)), _) => {
            glob(rest, host) || (!host.is_empty() && glob(pattern, &host[1..]))
        }
        (Some((&b'?', rest)), Some((_, h))) => glob(rest, h),
        (Some((p, rest)), Some((c, h))) => p == c && glob(rest, h),
        _ => false,
    }
}

/// Whether two host names (either may be a wildcard) can name the same request.
fn overlap(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_lowercase(), b.to_lowercase());
    glob(a.as_bytes(), b.as_bytes()) || glob(b.as_bytes(), a.as_bytes())
}

/// Warnings, in plain words, for each of `names` that a VirtualHost outside `own_file` (this
/// site's own file, written by Cutover) already answers to.
pub fn clashes(listed: &[Served], names: &[String], own_file: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for name in names {
        for other in listed.iter().filter(|s| s.file != own_file) {
            if !overlap(name, &other.name) {
                continue;
            }
            let port = other
                .port
                .map(|p| format!(" on port {p}"))
                .unwrap_or_default();
            let via = if other.name == name.to_lowercase() {
                String::new()
            } else {
                format!(" (as {})", other.name)
            };
            let text = format!(
                "{name} is already served{port}{via} by another VirtualHost, in {} (line {}). Apache sends each request to the first VirtualHost whose name matches, so requests for {name} may keep going to that site instead of this one. Remove the name from one of the two.",
                other.file, other.line
            );
            if !warnings.contains(&text) {
                warnings.push(text);
            }
        }
    }
    warnings
}

/// Runs `command` (e.g. `apache2ctl -S`) and warns about each of `names` served outside
/// `own_file`; when the listing cannot be had, one warning saying the check was not done.
pub async fn check(command: &[String], names: &[String], own_file: &str) -> Vec<String> {
    let shown = command.join(" ");
    let not_checked = |why: &str| {
        let why: String = why.lines().next().unwrap_or("").chars().take(200).collect();
        vec![format!("Cutover could not check whether another VirtualHost on this server already answers to this site's names: `{shown}` {why}. The site was saved; run `{shown}` yourself to check.")]
    };
    match tokio::time::timeout(LIST_TIMEOUT, run_command(command)).await {
        Err(_) => not_checked(&format!("took longer than {LIST_TIMEOUT:?}")),
        Ok(Err(e)) => not_checked(&format!("could not be run ({e:#})")),
        Ok(Ok(out)) if !out.ok => not_checked(&format!("failed ({})", out.output.trim())),
        Ok(Ok(out)) => clashes(&parse(&out.output), names, own_file),
    }
}

/// The warnings found at each site's last names change, for its page (kept in memory: a
/// restart forgets them, the next change finds them again).
#[derive(Debug, Default)]
pub struct Remembered(Mutex<HashMap<String, Vec<String>>>);

impl Remembered {
    /// Keeps `warnings` for `site` (none: forgets it).
    pub fn set(&self, site: &str, warnings: &[String]) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if warnings.is_empty() {
            map.remove(site);
        } else {
            map.insert(site.to_owned(), warnings.to_vec());
        }
    }

    /// The warnings kept for `site`.
    pub fn get(&self, site: &str) -> Vec<String> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(site).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use crate::apache::served::{check, clashes, parse, Served};

    /// Real `apache2ctl -S` output of a Debian host (with the FQDN warning on stderr).
    const LISTING: &str = "\
AH00558: apache2: Could not reliably determine the server's fully qualified domain name, using 127.0.1.1. Set the 'ServerName' directive globally to suppress this message
VirtualHost configuration:
*:443                  is a NameVirtualHost
         default server example.org (/etc/apache2/sites-enabled/default-ssl.conf:2)
         port 443 namevhost example.org (/etc/apache2/sites-enabled/default-ssl.conf:2)
                 alias www.example.org
         port 443 namevhost shop.example.org (/etc/apache2/sites-enabled/cutover-shop.conf:3)
*:80                   is a NameVirtualHost
         default server example.org (/etc/apache2/sites-enabled/000-default.conf:1)
         port 80 namevhost example.org (/etc/apache2/sites-enabled/000-default.conf:1)
                 alias www.example.org
                 wild alias *.blog.example.org
         port 80 namevhost shop.example.org (/etc/apache2/sites-enabled/cutover-shop.conf:1)
                 alias www.shop.example.org
127.0.0.1:8080         status.local (/etc/apache2/sites-enabled/status.conf:1)
ServerRoot: \"/etc/apache2\"
Main DocumentRoot: \"/var/www/html\"
Main ErrorLog: \"/var/log/apache2/error.log\"
Mutex default: dir=\"/var/run/apache2/\" mechanism=default
PidFile: \"/var/run/apache2/apache2.pid\"
Define: DUMP_VHOSTS
User: name=\"www-data\" id=33
Group: name=\"www-data\" id=33";

    const OWN: &str = "/etc/apache2/sites-enabled/cutover-shop.conf";

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_listing_gives_every_name_with_its_file_and_port() {
        let found = parse(LISTING);
        let row = |name: &str, file: &str, line: u32, port: u16| Served {
            name: name.into(),
            file: format!("/etc/apache2/sites-enabled/{file}"),
            line,
            port: Some(port),
        };
        assert_eq!(
            found,
            vec![
                row("example.org", "default-ssl.conf", 2, 443),
                row("www.example.org", "default-ssl.conf", 2, 443),
                row("shop.example.org", "cutover-shop.conf", 3, 443),
                row("example.org", "000-default.conf", 1, 80),
                row("www.example.org", "000-default.conf", 1, 80),
                row("*.blog.example.org", "000-default.conf", 1, 80),
                row("shop.example.org", "cutover-shop.conf", 1, 80),
                row("www.shop.example.org", "cutover-shop.conf", 1, 80),
                row("status.local", "status.conf", 1, 8080),
            ]
        );
        assert!(parse("").is_empty());
        assert!(parse("Syntax error on line 3 of /etc/apache2/sites-enabled/x.conf:").is_empty());
    }

    #[test]
    fn a_name_served_by_another_file_is_named_with_that_file() {
        let found = parse(LISTING);
        let w = clashes(&found, &names(&["www.example.org"]), OWN);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("www.example.org is already served on port 443"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("/etc/apache2/sites-enabled/default-ssl.conf (line 2)"));
        assert!(w[0].contains("first VirtualHost whose name matches"));
        assert!(w[1].contains("000-default.conf (line 1)"), "{}", w[1]);
        // A wildcard on either side counts; case does not matter.
        let w = clashes(&found, &names(&["News.Blog.Example.org"]), OWN);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("(as *.blog.example.org)"), "{}", w[0]);
        let w = clashes(&found, &names(&["*.example.org"]), OWN);
        assert!(w.iter().any(|w| w.contains("www.example.org")), "{w:?}");
    }

    #[test]
    fn the_sites_own_file_and_free_names_are_no_clash() {
        let found = parse(LISTING);
        let mine = names(&[
            "shop.example.org",
            "www.shop.example.org",
            "new.example.net",
        ]);
        assert!(clashes(&found, &mine, OWN).is_empty());
        // Another Cutover site's file is someone else's.
        let w = clashes(
            &found,
            &names(&["shop.example.org"]),
            "/x/cutover-other.conf",
        );
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[tokio::test]
    async fn a_listing_that_cannot_be_had_is_a_warning_never_a_refusal() {
        let missing = names(&["/nonexistent/apache2ctl", "-S"]);
        let w = check(&missing, &names(&["a.example.org"]), OWN).await;
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("could not check"), "{}", w[0]);
        assert!(w[0].contains("could not be run"), "{}", w[0]);
        let failing = names(&["sh", "-c", "echo 'AH00526: Syntax error' >&2; exit 1"]);
        let w = check(&failing, &names(&["a.example.org"]), OWN).await;
        assert!(w[0].contains("failed (AH00526: Syntax error)"), "{}", w[0]);
        assert!(check(&[], &names(&["a.example.org"]), OWN).await[0].contains("could not"));
        let listing = names(&["printf", "%s", LISTING]);
        let w = check(&listing, &names(&["example.org"]), OWN).await;
        assert_eq!(w.len(), 2, "{w:?}");
    }
}
