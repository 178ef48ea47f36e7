//! What a go-live works out before its switch, handed to it so the switch need not do it
//! again: the hosts the checks read, and the next live map written while they ran.

use super::disk;

/// The new live map being written off the async threads (see [`disk::NextMap`]).
pub(crate) type NextMapTask = tokio::task::JoinHandle<std::io::Result<disk::NextMap>>;

/// What a go-live brings to the switch beyond what a put-back or a settings change has.
#[derive(Default)]
pub(crate) struct Ahead {
    /// Run the site's `before_switch` commands after configtest (a failure there puts the
    /// old vhost back).
    pub before_switch: bool,
    /// The site's hosts, read already by the checks.
    pub hosts: Option<Vec<crate::hosts::Host>>,
    /// The new live map, written while the checks ran.
    pub map: Option<NextMapTask>,
}
