//! Tests of the Apache module; those that need Apache run a private one on 127.0.0.1.

mod attacks;
mod borrowed_hostile;
mod directives;
mod harness;
mod lifecycle;
mod livemap;
mod serving;
#[path = "../../../tests/support/mod.rs"]
mod support;
mod validation;

/// The serving part of a plain static site (every default).
pub(crate) fn plain() -> crate::apache::serving::Serving<'static> {
    static DEFAULT: std::sync::LazyLock<crate::sites::SiteConfig> =
        std::sync::LazyLock::new(Default::default);
    crate::apache::serving::Serving {
        config: &DEFAULT,
        shared_paths: &[],
        php_socket: None,
        maintenance: None,
        directives: "",
        redirects: "",
    }
}
