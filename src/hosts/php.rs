//! PHP-FPM on a host (system mode there, as `[php]` is here): where Cutover writes the site's
//! pool file, where the pool's socket is made, the host's own test and reload commands, and the
//! user the pool's workers run as. Defaults are Debian's `php8.2-fpm`.

use serde::{Deserialize, Serialize};

use crate::apache::validate::config_path;
use crate::error::{code, AppError, AppResult};
use crate::php::host_settings::PhpSettings;

/// `php` of `POST /api/v1/sites/{site}/hosts`: each field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPhpInput {
    /// Pool folder (default `/etc/php/8.2/fpm/pool.d`).
    #[serde(default)]
    pub pool_dir: Option<String>,
    /// Socket folder (default `/run/php`).
    #[serde(default)]
    pub socket_dir: Option<String>,
    /// Checks PHP-FPM's whole configuration (default `php-fpm8.2 -t`).
    #[serde(default)]
    pub test: Option<Vec<String>>,
    /// Graceful reload (default `systemctl reload php8.2-fpm`).
    #[serde(default)]
    pub reload: Option<Vec<String>>,
    /// The pool's workers and the socket's owner (default `www-data`, Apache's user).
    #[serde(default)]
    pub user: Option<String>,
}

/// A host's PHP-FPM, every field checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostPhp {
    /// Pool folder.
    pub pool_dir: String,
    /// Socket folder.
    pub socket_dir: String,
    /// Test command.
    pub test: Vec<String>,
    /// Reload command.
    pub reload: Vec<String>,
    /// Workers' user.
    pub user: String,
}

impl Default for HostPhp {
    /// Debian's `php8.2-fpm`: the commands and socket folder `[php]` defaults to here.
    fn default() -> Self {
        let here = PhpSettings::default();
        Self {
            pool_dir: "/etc/php/8.2/fpm/pool.d".into(),
            socket_dir: here.socket_dir.display().to_string(),
            test: here.test,
            reload: here.reload,
            user: "www-data".into(),
        }
    }
}

fn bad(field: &str, why: impl std::fmt::Display) -> AppError {
    AppError::invalid(code::INVALID_HOST, format!("php.{field}: {why}"))
}

impl HostPhpInput {
    /// Checks every field; defaults filled in. `command` checks an argument list.
    pub fn validate(
        self,
        command: impl Fn(&str, &[String]) -> AppResult<()>,
    ) -> AppResult<HostPhp> {
        let d = HostPhp::default();
        let pool_dir = self.pool_dir.unwrap_or(d.pool_dir);
        config_path(std::path::Path::new(&pool_dir), "pool folder")
            .map_err(|m| bad("pool_dir", m))?;
        let socket_dir = self.socket_dir.unwrap_or(d.socket_dir);
        config_path(std::path::Path::new(&socket_dir), "socket folder")
            .map_err(|m| bad("socket_dir", m))?;
        let test = self.test.unwrap_or(d.test);
        command("php.test", &test)?;
        let reload = self.reload.unwrap_or(d.reload);
        command("php.reload", &reload)?;
        let user = self.user.unwrap_or(d.user);
        let ok = (1..=32).contains(&user.len())
            && user.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && user
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if !ok || user == "root" {
            return Err(bad(
                "user",
                "a user name like www-data (lower-case letters, digits, _ and -), never root.",
            ));
        }
        Ok(HostPhp {
            pool_dir,
            socket_dir,
            test,
            reload,
            user,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::hosts::php::*;

    fn command(_: &str, w: &[String]) -> AppResult<()> {
        match w.is_empty() {
            true => Err(AppError::invalid(code::INVALID_HOST, "empty")),
            false => Ok(()),
        }
    }

    #[test]
    fn a_host_s_php_fpm_is_checked_and_defaults_to_debian_s() {
        let php = HostPhpInput::default().validate(command).unwrap();
        assert_eq!(php, HostPhp::default());
        let root = HostPhpInput {
            user: Some("root".into()),
            ..Default::default()
        };
        assert!(root.validate(command).is_err(), "workers never run as root");
        let odd = HostPhpInput {
            pool_dir: Some("/etc/php/8.2/fpm/pool.d\nx".into()),
            ..Default::default()
        };
        assert!(odd.validate(command).is_err());
        let none = HostPhpInput {
            reload: Some(vec![]),
            ..Default::default()
        };
        assert!(none.validate(command).is_err());
    }
}
