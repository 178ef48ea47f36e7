//! Going live and rolling back: lock → check the release → write the candidate vhost →
//! configtest → switch → graceful reload → Apache alive → health check → record; and when a
//! step after the switch fails, the previous release is put back the same way.

mod activate;
mod ahead;
mod disk;
mod expect;
mod fleet;
mod fleet_back;
mod fleet_php;
pub mod health;
mod hooks;
pub mod hosts;
pub mod live;
pub(crate) mod maintenance;
mod putback;
pub mod reconcile;
mod record;
mod report;
mod runner;
mod serving;
mod settings;
mod switch;
pub mod timeline;

pub use disk::{
    current_release, point_current, point_live_map, remove_leftover_links, TMP_LINK_PREFIX,
    TMP_MAP_PREFIX,
};
pub use expect::{expect_live, Expect};
pub use hooks::runs_steps;
pub use hosts::Added;
pub use report::{Kind, Report, Step};
pub use runner::GoLive;
