//! Plain vocabulary types shared by the database layer and the domain; imports nothing of
//! ours, so `db` and `auth` never import each other in a loop.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The four roles of the contract, in increasing power: each may do all the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads sites, release history, the audit log.
    Viewer,
    /// Viewer + activate an existing release, roll back (the on-call role).
    Operator,
    /// Operator + upload releases.
    Deployer,
    /// Everything: users, tokens of others, sites and their Apache settings.
    Admin,
}

impl Role {
    /// All roles, weakest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Deployer, Role::Admin];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Deployer => "deployer",
            Role::Admin => "admin",
        }
    }

    /// One sentence a non-engineer understands.
    pub fn describe(self) -> &'static str {
        match self {
            Role::Viewer => "can look at sites, release history and the audit log",
            Role::Operator => "can also put an existing release live and roll back",
            Role::Deployer => "can also upload new releases",
            Role::Admin => "can do everything, including managing users and sites",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use viewer, operator, deployer or admin"))
    }
}

/// Whether `s` has the shape of a release id (`YYYYMMDD-HHMMSS-xxxx`): the one check, used
/// before an id reaches a path, the Apache configuration or a database query.
pub fn is_release_id(s: &str) -> bool {
    s.len() == 20
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 15 => b == b'-',
            _ => b.is_ascii_digit() || (i > 15 && (b'a'..=b'f').contains(&b)),
        })
}

/// Input as echoed in a message: short, one line, no control characters.
pub fn clip(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    format!("\"{out}\"")
}
