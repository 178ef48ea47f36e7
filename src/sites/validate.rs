//! Allow-lists for every site setting: each ends up in an Apache config or a path, so anything
//! not plainly safe is refused with a sentence saying what is allowed.

// Names end up in Apache's configuration: the Apache module owns their allow-lists, and
// every caller validates through these (one source of truth).
pub use crate::apache::validate::{alias, server_name, site_name};

/// The health-check path: `/` then URL-safe characters only.
pub fn health_path(s: &str) -> Result<(), String> {
    let ok = s.starts_with('/')
        && s.len() <= 200
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b))
        && !s.split('/').any(|p| p == "..");
    ok.then_some(()).ok_or_else(|| {
        "The health-check path starts with / and uses only letters, digits and / . _ ~ -, like \
         / or /health.html."
            .into()
    })
}

/// A shared path: relative, parts of `A-Z a-z 0-9 . _ -`, no `.`/`..` parts, ≤ 8 deep.
pub fn shared_path(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('/').collect();
    let ok = !s.is_empty()
        && s.len() <= 200
        && parts.len() <= 8
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    ok.then_some(()).ok_or_else(|| {
        format!(
            "{:?} is not a valid shared path. Use a relative folder like uploads or \
             media/cache: letters, digits, dots, underscores and hyphens, parts separated by /.",
            shorten(s)
        )
    })
}

fn shorten(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

#[cfg(test)]
mod tests {
    use crate::sites::validate::*;

    #[test]
    fn names_follow_rfc_1123() {
        for good in [
            "example.org",
            "a",
            "www.shop-1.example.org",
            &format!("{}.org", "a".repeat(63)),
        ] {
            assert!(server_name(good).is_ok(), "{good}");
        }
        let attacks = [
            "",
            "-a.org",
            "a-.org",
            "a..org",
            ".org",
            "a.org.",
            "*.a.org",
            "A.org",
            "a_b.org",
            "a.org\nCustomLog \"|/bin/sh\"",
            "a.org\r\nInclude /etc/passwd",
            "a.org\\",
            "\"a.org\"",
            "${VAR}",
            "</VirtualHost>",
            "a\0.org",
            "a\u{2028}.org",
            "a org",
            &"a".repeat(64),
            &format!("{}.org", "a.".repeat(130)),
        ];
        for bad in attacks {
            assert!(server_name(bad).is_err(), "{bad:?}");
            assert!(alias(bad).is_err() || bad == "*.a.org", "{bad:?}");
        }
        assert!(alias("*.a.org").is_ok());
        assert!(alias("*.*.a.org").is_err());
    }

    #[test]
    fn site_names_health_and_shared_paths() {
        assert!(site_name("shop-2").is_ok());
        for bad in ["", "Shop", "-x", "x-", "a/b", "a.b", &"a".repeat(41)] {
            assert!(site_name(bad).is_err(), "{bad}");
        }
        assert!(health_path("/").is_ok() && health_path("/health.html").is_ok());
        for bad in ["", "health", "/a b", "/a?b", "/../x", "/a\n", "/%2e"] {
            assert!(health_path(bad).is_err(), "{bad:?}");
        }
        assert!(shared_path("uploads").is_ok() && shared_path("media/cache").is_ok());
        for bad in [
            "", "/abs", "a/../b", "./a", "a//b", "a b", "a\\b", "a$b", "a\"b", "a\nb", "a/",
        ] {
            assert!(shared_path(bad).is_err(), "{bad:?}");
        }
    }
}
