//! A host as typed (API, CLI, site page), checked field by field against allow-lists: each
//! value ends up in an `ssh` command line, a remote path or an Apache file.

use serde::Deserialize;

use crate::apache::validate::config_path;
use crate::error::code;
use crate::error::{AppError, AppResult};

/// The body of `POST /api/v1/sites/{site}/hosts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostInput {
    /// `web1`: lower-case letters, digits, hyphens.
    pub name: String,
    /// `user@address[:port]`.
    pub ssh: String,
    /// The site's folder on the host; must end in `/<site>`.
    pub dir: String,
    /// The host's vhost folder (default `/etc/apache2/sites-enabled`).
    #[serde(default)]
    pub vhost_dir: Option<String>,
    /// The host's Apache log folder (default `/var/log/apache2`).
    #[serde(default)]
    pub log_dir: Option<String>,
    /// configtest (default `apache2ctl configtest`).
    #[serde(default)]
    pub configtest: Option<Vec<String>>,
    /// graceful reload (default `apache2ctl graceful`).
    #[serde(default)]
    pub reload: Option<Vec<String>>,
    /// `http://address[:port]` (default `http://<ssh address>`).
    #[serde(default)]
    pub check_url: Option<String>,
    /// The fingerprint the admin read on the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`):
    /// given, the host is confirmed at once when it matches.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The host's PHP-FPM, for PHP sites (each field has a Debian default).
    #[serde(default)]
    pub php: Option<super::php::HostPhpInput>,
}

/// A host whose every field passed.
#[derive(Debug, Clone)]
pub struct NewHost {
    /// Name.
    pub name: String,
    /// As typed.
    pub ssh: String,
    /// Login user.
    pub user: String,
    /// Address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Site folder.
    pub dir: String,
    /// Vhost folder.
    pub vhost_dir: String,
    /// Log folder.
    pub log_dir: String,
    /// configtest.
    pub configtest: Vec<String>,
    /// reload.
    pub reload: Vec<String>,
    /// Health-check base URL.
    pub check_url: String,
    /// Fingerprint to confirm with.
    pub fingerprint: Option<String>,
    /// PHP-FPM there.
    pub php: super::php::HostPhp,
}

fn bad(field: &str, why: impl std::fmt::Display) -> AppError {
    AppError::invalid(code::INVALID_HOST, format!("{field}: {why}"))
}

/// A host name: 1–32 of `a-z 0-9 -`, starting with a letter or digit.
pub fn host_name(s: &str) -> AppResult<()> {
    let ok = (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(()).ok_or_else(|| {
        bad(
            "name",
            "use 1 to 32 lower-case letters, digits and hyphens, like web1.",
        )
    })
}

/// An address: an IPv4 address, `[IPv6]`, or a DNS name. Never starts with `-`, so it can
/// never be read by `ssh` as an option.
fn address(s: &str) -> bool {
    if let Some(v6) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    s.parse::<std::net::Ipv4Addr>().is_ok()
        || (s.len() <= 253
            && s.split('.').all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

/// `user@address[:port]` → (user, address, port).
pub fn parse_ssh(s: &str) -> AppResult<(String, String, u16)> {
    let why = "write it as user@address or user@address:port, like deploy@10.0.0.5:22.";
    let (user, rest) = s.split_once('@').ok_or_else(|| bad("ssh", why))?;
    let user_ok = (1..=32).contains(&user.len())
        && user.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !user_ok {
        return Err(bad(
            "ssh",
            "the user may have letters, digits, _ . - and starts with a letter.",
        ));
    }
    let (addr, port) = match rest.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') || a.ends_with(']') => {
            let port = p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("ssh", "the port is a number from 1 to 65535."))?;
            (a, port)
        }
        _ => (rest, 22),
    };
    if !address(addr) {
        return Err(bad("ssh", why));
    }
    Ok((user.to_owned(), addr.to_owned(), port))
}

/// A command typed as an argument list.
fn command(field: &str, words: &[String]) -> AppResult<()> {
    if words.is_empty() || words[0].is_empty() {
        return Err(bad(field, "give the program and its arguments as a list."));
    }
    if words.len() > 64 || words.iter().any(|w| w.len() > 4096 || w.contains('\0')) {
        return Err(bad(
            field,
            "at most 64 arguments of at most 4,096 characters, none holding a NUL.",
        ));
    }
    Ok(())
}

/// `http://address[:port]`, nothing after.
fn valid_check_url(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("http://") else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    let (a, port_ok) = match rest.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') || a.ends_with(']') => (a, p.parse::<u16>().is_ok()),
        _ => (rest, true),
    };
    port_ok && address(a)
}

impl HostInput {
    /// Checks every field for site `site`; defaults filled in.
    pub fn validate(self, site: &str) -> AppResult<NewHost> {
        host_name(&self.name)?;
        let (user, address, port) = parse_ssh(&self.ssh)?;
        config_path(std::path::Path::new(&self.dir), "site folder").map_err(|m| bad("dir", m))?;
        if !self.dir.ends_with(&format!("/{site}")) || self.dir.split('/').any(|p| p == "..") {
            return Err(bad(
                "dir",
                format!("the site's folder on the host must end in /{site}, like /srv/www/{site}."),
            ));
        }
        let vhost_dir = self
            .vhost_dir
            .unwrap_or_else(|| "/etc/apache2/sites-enabled".into());
        config_path(std::path::Path::new(&vhost_dir), "vhost folder")
            .map_err(|m| bad("vhost_dir", m))?;
        let log_dir = self.log_dir.unwrap_or_else(|| "/var/log/apache2".into());
        config_path(std::path::Path::new(&log_dir), "log folder").map_err(|m| bad("log_dir", m))?;
        if log_dir.starts_with(&self.dir) {
            return Err(bad(
                "log_dir",
                "the logs must not be inside the site's folder, or visitors could read them.",
            ));
        }
        let configtest = self
            .configtest
            .unwrap_or_else(|| vec!["apache2ctl".into(), "configtest".into()]);
        command("configtest", &configtest)?;
        let reload = self
            .reload
            .unwrap_or_else(|| vec!["apache2ctl".into(), "graceful".into()]);
        command("reload", &reload)?;
        let check_url = self
            .check_url
            .unwrap_or_else(|| format!("http://{address}"));
        if !valid_check_url(&check_url) {
            return Err(bad(
                "check_url",
                "write it as http://address or http://address:port, like http://10.0.0.5.",
            ));
        }
        Ok(NewHost {
            name: self.name,
            ssh: self.ssh,
            user,
            address,
            port,
            dir: self.dir,
            vhost_dir,
            log_dir,
            configtest,
            reload,
            check_url: check_url.trim_end_matches('/').to_owned(),
            fingerprint: self.fingerprint.map(|f| f.trim().to_owned()),
            php: self.php.unwrap_or_default().validate(command)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::hosts::input::*;

    #[test]
    fn ssh_addresses_parse_and_option_like_values_are_refused() {
        assert_eq!(
            parse_ssh("deploy@10.0.0.5:2222").unwrap(),
            ("deploy".into(), "10.0.0.5".into(), 2222)
        );
        assert_eq!(parse_ssh("root@web1.example.org").unwrap().2, 22);
        assert_eq!(parse_ssh("a@[::1]:22").unwrap().1, "[::1]");
        for bad in [
            "10.0.0.5",
            "deploy@-oProxyCommand=x",
            "-l@host",
            "deploy@host:0",
            "deploy@host:99999",
            "de ploy@host",
            "deploy@ho st",
            "deploy@host;id",
            "deploy@$(id)",
            "deploy@",
        ] {
            assert!(parse_ssh(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_folder_must_be_the_sites_own() {
        let input = |dir: &str| HostInput {
            name: "web1".into(),
            ssh: "root@127.0.0.1".into(),
            dir: dir.into(),
            vhost_dir: None,
            log_dir: None,
            configtest: None,
            reload: None,
            check_url: None,
            fingerprint: None,
            php: None,
        };
        assert!(input("/srv/www/shop").validate("shop").is_ok());
        for bad in [
            "/srv/www/other",
            "srv/shop",
            "/srv/../shop",
            "/srv/w w/shop",
            "/",
        ] {
            assert!(input(bad).validate("shop").is_err(), "{bad}");
        }
        let mut logs = input("/srv/shop");
        logs.log_dir = Some("/srv/shop/logs".into());
        assert!(logs.validate("shop").is_err());
        let mut url = input("/srv/shop");
        url.check_url = Some("http://127.0.0.1:8080/x".into());
        assert!(url.validate("shop").is_err());
    }
}
