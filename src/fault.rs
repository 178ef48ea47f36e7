//! Fault injection for the crash-safety suite (`tests/api/faults`), compiled in only with the
//! cargo feature `fault-injection` (the test build enables it; a release build has none of
//! it: no points, no environment variable read). With the feature, the environment variable
//! `CUTOVER_FAULT=<point>:pause` makes the process write the file named by
//! `CUTOVER_FAULT_MARKER` on reaching that point and stop there, so the test can SIGKILL it at
//! exactly that moment; `<point>:kill-apache` kills the private Apache there, once.

/// Every named point, for the suite to iterate over.
pub const POINTS: &[&str] = &[
    "upload_streaming",
    "extracting",
    "after_extract",
    "after_rename",
    "during_retention",
    "before_vhost",
    "after_vhost",
    "after_configtest",
    "after_switch",
    "before_map_rename",
    "after_map",
    "after_reload",
    "before_record",
];

#[cfg(feature = "fault-injection")]
mod injected;
#[cfg(feature = "fault-injection")]
pub use injected::{point, point_blocking};

/// Marks a point where a crash is survivable by design (async code). Nothing without the
/// `fault-injection` feature.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub async fn point(_name: &'static str) {}

/// [`point`] for code on a blocking thread.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn point_blocking(_name: &'static str) {}
