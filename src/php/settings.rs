//! The php.ini settings a site may give its own pool (what `php_value`/`php_flag` did in a
//! classic VirtualHost): names from an allow-list, values checked per kind. Anything that
//! could reach outside the site, run another file or load code is refused with the reason.

use std::collections::BTreeMap;

/// How a setting's value is checked.
#[derive(Clone, Copy)]
enum Kind {
    /// `128M`, `1G`, `1048576` (and `-1` where it means "no limit").
    Size,
    /// A whole number.
    Int,
    /// On/Off.
    Flag,
    /// An `error_reporting` expression such as `E_ALL & ~E_DEPRECATED`.
    Errors,
    /// A time zone name such as `Europe/Berlin`.
    Zone,
    /// Short plain text (letters, digits, a few signs).
    Text,
}

/// The settings a site may change, and how each is checked.
const ALLOWED: &[(&str, Kind)] = &[
    ("memory_limit", Kind::Size),
    ("upload_max_filesize", Kind::Size),
    ("post_max_size", Kind::Size),
    ("max_execution_time", Kind::Int),
    ("max_input_time", Kind::Int),
    ("max_input_vars", Kind::Int),
    ("max_input_nesting_level", Kind::Int),
    ("max_file_uploads", Kind::Int),
    ("error_reporting", Kind::Errors),
    ("display_errors", Kind::Flag),
    ("display_startup_errors", Kind::Flag),
    ("log_errors", Kind::Flag),
    ("html_errors", Kind::Flag),
    ("short_open_tag", Kind::Flag),
    ("date.timezone", Kind::Zone),
    ("default_charset", Kind::Text),
    ("output_buffering", Kind::Text),
    ("zlib.output_compression", Kind::Flag),
    ("precision", Kind::Int),
    ("serialize_precision", Kind::Int),
    ("arg_separator.output", Kind::Text),
    ("realpath_cache_ttl", Kind::Int),
    ("opcache.enable", Kind::Flag),
    ("opcache.validate_timestamps", Kind::Flag),
    ("opcache.revalidate_freq", Kind::Int),
    ("mbstring.language", Kind::Text),
];

/// Why the dangerous names are refused (checked before the allow-list, for a clear reason).
const REFUSED: &[(&str, &str)] = &[
    (
        "auto_prepend_file",
        "it runs another file before every page",
    ),
    ("auto_append_file", "it runs another file after every page"),
    ("extension", "it loads code into PHP"),
    ("zend_extension", "it loads code into PHP"),
    (
        "open_basedir",
        "Cutover limits PHP to the site's own folders",
    ),
    (
        "disable_functions",
        "Cutover's list of disabled functions cannot be changed by a site",
    ),
    (
        "disable_classes",
        "Cutover's list of disabled classes cannot be changed by a site",
    ),
    ("sendmail_path", "it runs a program"),
    ("error_log", "it writes a file where Cutover decides"),
    ("session.save_path", "it writes files where Cutover decides"),
    (
        "session.save_handler",
        "sessions are stored where Cutover decides",
    ),
    ("upload_tmp_dir", "it writes files where Cutover decides"),
    ("sys_temp_dir", "it writes files where Cutover decides"),
    (
        "include_path",
        "it could make PHP look for code outside the site",
    ),
    ("doc_root", "it changes which files PHP runs"),
    ("user_dir", "it changes which files PHP runs"),
    (
        "allow_url_include",
        "it runs code fetched from other servers",
    ),
    ("allow_url_fopen", "it is decided for the whole server"),
    (
        "opcache.memory_consumption",
        "it is shared by every site of this PHP-FPM",
    ),
    (
        "opcache.max_accelerated_files",
        "it is shared by every site of this PHP-FPM",
    ),
    (
        "opcache.file_cache",
        "it writes files where Cutover decides",
    ),
    ("opcache.preload", "it runs a file at start-up"),
];

/// Checks a site's settings; the message names the setting and says why.
pub fn parse(
    raw: &BTreeMap<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, String> {
    if raw.len() > 50 {
        return Err("php.settings: at most 50 settings.".into());
    }
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let shown = crate::vocab::clip(name);
        if !safe(name) {
            return Err(format!(
                "php.settings: the name {shown} has characters no php.ini setting has."
            ));
        }
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| n == name) {
            return Err(format!(
                "php.settings: {name} cannot be set by a site: {why}."
            ));
        }
        if name.starts_with("cgi.") || name.starts_with("phar.") || name.starts_with("mail.") {
            return Err(format!(
                "php.settings: {name} cannot be set by a site: it is decided for the whole server."
            ));
        }
        let kind = match ALLOWED.iter().find(|(n, _)| n == name) {
            Some((_, k)) => *k,
            None if name.starts_with("session.") => Kind::Text,
            None => {
                let names: Vec<&str> = ALLOWED.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "php.settings: {shown} is not a setting a site may change; these are: {}, session.*.",
                    names.join(", ")
                ));
            }
        };
        let text = match value {
            serde_json::Value::String(s) => s.trim_matches([' ', '\t']).to_owned(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => if *b { "On" } else { "Off" }.to_owned(),
            _ => {
                return Err(format!(
                    "php.settings: {name} takes a string, a number or true/false."
                ))
            }
        };
        let value = check(name, kind, &text)?;
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// Whether php-fpm reads `name` as a flag (`php_admin_flag`) rather than a value.
pub fn is_flag(name: &str) -> bool {
    ALLOWED
        .iter()
        .any(|(n, k)| *n == name && matches!(k, Kind::Flag))
}

/// Nothing that could end the line or the `[name]` of a pool directive.
fn safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/+:,& ~|^()!".contains(c))
}

fn check(name: &str, kind: Kind, v: &str) -> Result<String, String> {
    let bad = |what: &str| {
        Err(format!(
            "php.settings: {name} = {} is not {what}.",
            crate::vocab::clip(v)
        ))
    };
    if !safe(v) && !matches!(kind, Kind::Text if v.is_empty()) {
        return bad("a value Cutover writes into a PHP-FPM pool (letters, digits and . _ - / + : , & ~ | ^ ( ) ! only)");
    }
    match kind {
        Kind::Size => {
            let digits = v.strip_suffix(['K', 'M', 'G', 'k', 'm', 'g']).unwrap_or(v);
            if v == "-1"
                || (!digits.is_empty()
                    && digits.len() <= 12
                    && digits.bytes().all(|b| b.is_ascii_digit()))
            {
                Ok(v.to_owned())
            } else {
                bad("a size like 128M, 1G or -1")
            }
        }
        Kind::Int => match v.parse::<i64>() {
            Ok(n) if (-1..=1_000_000_000).contains(&n) => Ok(n.to_string()),
            _ => bad("a whole number"),
        },
        Kind::Flag => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Ok("on".into()),
            "off" | "false" | "no" | "0" | "" => Ok("off".into()),
            _ => bad("on or off"),
        },
        Kind::Errors => {
            if v.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "_&~|^ ()".contains(c))
            {
                Ok(v.to_owned())
            } else {
                bad("an error_reporting expression like E_ALL & ~E_DEPRECATED")
            }
        }
        Kind::Zone => {
            let known = std::path::Path::new("/usr/share/zoneinfo").join(v);
            if !v.contains("..") && !v.starts_with('/') && (known.is_file() || v == "UTC") {
                Ok(v.to_owned())
            } else {
                bad("a time zone name like Europe/Berlin")
            }
        }
        Kind::Text => Ok(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::php::settings::parse;

    fn one(name: &str, value: serde_json::Value) -> Result<BTreeMap<String, String>, String> {
        parse(&BTreeMap::from([(name.to_owned(), value)]))
    }

    #[test]
    fn hostile_names_and_values_never_reach_a_pool() {
        for (name, value) in [
            (
                "memory_limit",
                "128M\nphp_admin_value[auto_prepend_file]=/etc/passwd",
            ),
            ("memory_limit", "128M\r\nx"),
            ("memory_limit", "128M;x"),
            ("memory_limit", "1\u{0}"),
            ("memory_limit", "1\u{2028}"),
            ("display_errors", "on]"),
            ("date.timezone", "\"UTC\""),
            ("date.timezone", "../../etc/passwd"),
            ("session.name", "a=b"),
            ("memory_limit", &"9".repeat(300)),
        ] {
            assert!(one(name, value.into()).is_err(), "{name} = {value:?}");
        }
        for name in [
            "auto_prepend_file",
            "extension",
            "open_basedir",
            "disable_functions",
            "x]\nextension",
            "unknown_thing",
        ] {
            let e = one(name, "x".into()).unwrap_err();
            assert!(e.contains("php.settings"), "{e}");
        }
        assert!(one("auto_prepend_file", "x".into())
            .unwrap_err()
            .contains("runs another file"));
    }

    #[test]
    fn ordinary_settings_pass_and_flags_are_normalised() {
        let ok = parse(&BTreeMap::from([
            ("memory_limit".to_owned(), "256M".into()),
            ("display_errors".to_owned(), true.into()),
            ("max_execution_time".to_owned(), 60.into()),
            ("error_reporting".to_owned(), "E_ALL & ~E_DEPRECATED".into()),
            ("date.timezone".to_owned(), "UTC".into()),
            ("session.gc_maxlifetime".to_owned(), "1440".into()),
        ]))
        .unwrap();
        assert_eq!(ok["display_errors"], "on");
        assert_eq!(ok["memory_limit"], "256M");
        assert!(crate::php::settings::is_flag("display_errors"));
        assert!(!crate::php::settings::is_flag("memory_limit"));
    }
}
