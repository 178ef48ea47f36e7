//! Who someone is and what they may do: roles, user names, passwords, sessions, tokens, throttling.

pub mod accounts;
pub mod csrf;
pub mod login;
pub mod password;
pub mod secret;
pub mod throttle;

use std::fmt;

use sqlx::SqlitePool;

use crate::config::SessionSettings;
pub use crate::vocab::Role;

use serde::Serialize;

/// The accounts service: log-in, sessions, tokens, user management (knows nothing of HTTP).
#[derive(Clone)]
pub struct Auth {
    /// The database.
    pub pool: SqlitePool,
    /// argon2id, off the async threads.
    pub hasher: password::Hasher,
    /// Log-in throttling.
    pub throttle: throttle::Throttle,
    /// Session time-outs.
    pub settings: SessionSettings,
    /// Anonymous refusals, counted per source instead of a row each.
    pub refusals: crate::audit::flood::Refusals,
}

/// A validated user name: it appears in audit actors and pages, so it is kept plain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserName(String);

impl UserName {
    /// Accepts 1–32 characters: lower-case letters, digits, `.`, `_`, `-`, starting with a letter.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim().to_ascii_lowercase();
        let ok = !name.is_empty()
            && name.len() <= 32
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if ok {
            Ok(Self(name))
        } else {
            Err(
                "A user name is 1 to 32 characters: lower-case letters, digits, dots, \
                 underscores or hyphens, starting with a letter."
                    .into(),
            )
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Someone the console has recognised, by session or by API token.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Row id in `users`.
    pub user_id: i64,
    /// Their user name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// How they proved it.
    pub via: Via,
}

/// The credential behind an [`Identity`].
#[derive(Debug, Clone)]
pub enum Via {
    /// A browser session (row id in `sessions`, and its CSRF token).
    Session { session_id: i64, csrf_token: String },
    /// An API token (row id and label).
    Token { token_id: i64, label: String },
}

impl Identity {
    /// The audit actor: `user:<name>` or `token:<label> of <name>`.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Session { .. } => format!("user:{}", self.name),
            Via::Token { label, .. } => format!("token:{label} of {}", self.name),
        }
    }

    /// The session's CSRF token, when signed in through the browser.
    pub fn csrf_token(&self) -> Option<&str> {
        match &self.via {
            Via::Session { csrf_token, .. } => Some(csrf_token),
            Via::Token { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Deployer);
        assert!(Role::Deployer < Role::Admin);
        assert_eq!("deployer".parse::<Role>().unwrap(), Role::Deployer);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn user_names_are_allow_listed() {
        assert_eq!(UserName::parse(" Alice ").unwrap().as_str(), "alice");
        for bad in [
            "",
            "1abc",
            "a b",
            "a\nb",
            "ä",
            "a/b",
            &"a".repeat(33),
            "user:x",
        ] {
            assert!(UserName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
