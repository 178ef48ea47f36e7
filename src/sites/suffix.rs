//! Wildcard aliases may not cover a public suffix: `*.com` or `*.co.uk` would claim every
//! site under it on this Apache. Judged with the `publicsuffix` crate against the Public Suffix
//! List shipped in `data/` (Debian's `publicsuffix` package, 2023-02; refresh it with a release).

use std::sync::OnceLock;

use publicsuffix::{List, Psl};

const LIST: &str = include_str!("../../data/public_suffix_list.dat");

fn list() -> &'static List {
    static PARSED: OnceLock<List> = OnceLock::new();
    PARSED.get_or_init(|| LIST.parse().expect("the shipped public suffix list parses"))
}

/// Whether `name` is itself a public suffix (ICANN or private section), or a single label
/// (a whole top-level domain, listed or not, such as `test` or `internal`).
pub fn is_public_suffix(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    if !name.contains('.') {
        return true;
    }
    list()
        .suffix(name.as_bytes())
        .is_some_and(|s| s.is_known() && s.as_bytes() == name.as_bytes())
}

/// Refuses `*.<suffix>` aliases; other names pass.
pub fn check_wildcard(alias: &str) -> Result<(), String> {
    match alias.strip_prefix("*.") {
        Some(rest) if is_public_suffix(rest) => Err(format!(
            "\"{alias}\" would take every site under \"{rest}\", which is a public suffix (anyone can register names under it). Use a wildcard under your own domain, like *.example.org."
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::sites::suffix::*;

    #[test]
    fn wildcards_over_public_suffixes_are_refused() {
        for bad in [
            "*.com",
            "*.co.uk",
            "*.org",
            "*.github.io",
            "*.test",
            "*.blogspot.com",
        ] {
            assert!(check_wildcard(bad).is_err(), "{bad}");
        }
        for good in [
            "*.example.com",
            "*.shop.co.uk",
            "*.me.github.io",
            "www.example.org",
            "*.a.org",
        ] {
            assert!(check_wildcard(good).is_ok(), "{good}");
        }
    }
}
