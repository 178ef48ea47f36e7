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

/// Points inside a deploy step (the step's process is running), one per stage: reached only
/// by a site that has steps, so the suite drives them apart from [`POINTS`].
pub const STEP_POINTS: &[&str] = &[
    "step_after_unpack",
    "step_before_switch",
    "step_after_switch",
];

#[cfg(feature = "fault-injection")]
mod injected;
#[cfg(feature = "fault-injection")]
pub use injected::{point, point_blocking};

/// Marks a point where a crash is survivable by design, in async code: with the
/// `fault-injection` feature it may pause there for good; without it, it expands to nothing
/// (not even the point's name reaches the binary).
#[macro_export]
macro_rules! fault_point {
    ($name:literal) => {{
        #[cfg(feature = "fault-injection")]
        $crate::fault::point($name).await;
    }};
}

/// [`fault_point!`] for code on a blocking thread.
#[macro_export]
macro_rules! fault_point_blocking {
    ($name:literal) => {{
        #[cfg(feature = "fault-injection")]
        $crate::fault::point_blocking($name);
    }};
}
