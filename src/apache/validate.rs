//! Validation of everything that ends up in an Apache config file or a path.
//!
//! These are allow-lists: a value passes only if every character is one we know
//! to be inert in Apache's config syntax, so no quoting or escaping is ever needed.

use std::path::{Component, Path};

/// Longest site slug we accept.
pub const SITE_NAME_MAX: usize = 40;
/// Longest host name (RFC 1123).
pub const SERVER_NAME_MAX: usize = 253;
/// Longest path we put in a config (Linux PATH_MAX).
pub const PATH_MAX: usize = 4096;

/// Shows a user's input safely inside a message: control and invisible characters become escapes.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    format!("\"{out}\"")
}

/// Checks a site slug: 1–40 of `a-z 0-9 -`, starting with a letter or digit, not ending with `-`.
pub fn site_name(s: &str) -> Result<(), String> {
    const RULE: &str = "a site name is 1 to 40 lower-case letters (a-z), digits and hyphens, \
                        starting with a letter or digit and not ending with a hyphen, like my-shop";
    if s.is_empty() {
        return Err(format!("The site name is empty: {RULE}."));
    }
    if s.len() > SITE_NAME_MAX {
        return Err(format!("{} is too long: {RULE}.", shown(s)));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        let hint = if c.is_ascii_uppercase() {
            " (use lower case)"
        } else {
            ""
        };
        return Err(format!(
            "{} contains {}{hint}: {RULE}.",
            shown(s),
            shown(&c.to_string())
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(format!(
            "{} starts or ends with a hyphen: {RULE}.",
            shown(s)
        ));
    }
    Ok(())
}

/// Checks a host name for `ServerName` (RFC 1123, lower case only, no wildcard, no trailing dot).
///
/// Upper case is refused rather than folded: callers store names lower-cased, so an
/// upper-case letter here means a value skipped normalisation and should be caught.
pub fn server_name(s: &str) -> Result<(), String> {
    if s.starts_with("*.") {
        return Err(format!(
            "{} is a wildcard: the server name must be one exact host name like www.example.org; \
             put wildcard names like *.example.org in the aliases instead.",
            shown(s)
        ));
    }
    host_name(s, "server name")
}

/// Checks a `ServerAlias` entry: a host name as for [`server_name`], optionally preceded by `*.`.
pub fn alias(s: &str) -> Result<(), String> {
    match s.strip_prefix("*.") {
        Some(rest) => host_name(rest, "alias").map_err(|e| format!("In {}: {e}", shown(s))),
        None => host_name(s, "alias"),
    }
}

/// The shared RFC 1123 check; `what` names the field in messages.
fn host_name(s: &str, what: &str) -> Result<(), String> {
    let rule = format!(
        "a {what} is made of lower-case letters, digits, hyphens and dots, like www.example.org"
    );
    if s.is_empty() {
        return Err(format!(
            "The {what} is empty: {rule}; enter the name visitors type in their browser."
        ));
    }
    if s.len() > SERVER_NAME_MAX {
        return Err(format!(
            "{} is longer than {SERVER_NAME_MAX} characters, which no host name can be.",
            shown(s)
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '.'))
    {
        if c.is_ascii_uppercase() {
            return Err(format!(
                "{} contains capital letters: write the {what} in lower case.",
                shown(s)
            ));
        }
        return Err(format!(
            "{} contains {}: {rule}. Leave out http://, slashes, ports and spaces.",
            shown(s),
            shown(&c.to_string())
        ));
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err(format!(
                "{} has an empty part (a dot at the start or end, or two dots in a row): {rule}.",
                shown(s)
            ));
        }
        if label.len() > 63 {
            return Err(format!(
                "{} has a part longer than 63 characters between dots, which host names cannot have.",
                shown(s)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "{} has a part that starts or ends with a hyphen ({}): parts between dots \
                 must start and end with a letter or digit.",
                shown(s),
                shown(label)
            ));
        }
    }
    Ok(())
}

/// Checks a release id: 1–64 of `A-Z a-z 0-9 . _ -`, not starting with a dot.
pub fn release_id(s: &str) -> Result<(), String> {
    if crate::vocab::is_release_id(s) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a valid release id: Cutover names releases like 20260101-120000-ab12 \
             (date, time, four hex digits). Pick the release from the list instead of typing it.",
            shown(s)
        ))
    }
}

/// Checks a path that goes into a config: absolute, only `A-Z a-z 0-9 . _ / -`, no `..`.
///
/// `what` names the field in messages ("document root", "log folder"…).
pub fn config_path(p: &Path, what: &str) -> Result<(), String> {
    let Some(s) = p.to_str() else {
        return Err(format!(
            "The {what} {} is not valid UTF-8; use a folder whose name has only letters, digits, \
             dots, underscores, hyphens and slashes.",
            shown(&p.to_string_lossy())
        ));
    };
    if !p.is_absolute() {
        return Err(format!(
            "The {what} {} must be an absolute path (starting with /).",
            shown(s)
        ));
    }
    if s.len() > PATH_MAX {
        return Err(format!("The {what} is longer than {PATH_MAX} characters."));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !matches!(c, 'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '/' | '-'))
    {
        return Err(format!(
            "The {what} {} contains {}: Cutover only puts folders whose names have letters, \
             digits, dots, underscores, hyphens and slashes into Apache's configuration; \
             move or rename the folder.",
            shown(s),
            shown(&c.to_string())
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "The {what} {} contains \"..\": give the folder's real path without \"..\".",
            shown(s)
        ));
    }
    Ok(())
}
