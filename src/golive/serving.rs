//! What a site's vhost needs from outside its settings: its PHP-FPM pool's socket and its
//! extra directives in checked, re-rendered form.

use super::runner::GoLive;
use crate::sites::{Runtime, Site, SitePaths};

impl GoLive {
    /// The socket of the site's PHP-FPM pool (PHP sites, when PHP-FPM is available).
    pub(crate) fn php_socket(&self, site: &Site) -> Option<std::path::PathBuf> {
        if site.settings.config.runtime != Runtime::Php {
            return None;
        }
        None
    }

    /// The extra directives, parsed and checked again, as the lines the vhost gets.
    pub(crate) fn directives(&self, site: &Site, paths: &SitePaths) -> Result<String, String> {
        crate::sites::render_directives(&site.settings.config.directives, &paths.dir)
    }
}
