//! Releases: safe archive intake, the release store, shared paths and retention.

pub mod archive;
mod build;
mod compare;
pub mod incoming;
pub mod ingest;
pub mod manage;
mod queue;
pub mod retention;
pub mod shared;
pub mod store;

use serde::Serialize;

/// A release as the API and pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct Release {
    /// Row id.
    #[serde(skip)]
    pub pk: i64,
    /// The release id (also its folder name).
    pub id: String,
    /// Live, previous, ready, failed or deleted (live/previous come from activations).
    pub state: ReleaseState,
    /// SHA-256 of the uploaded archive.
    pub sha256: String,
    /// Archive size.
    pub bytes: i64,
    /// Unpacked size.
    pub unpacked_bytes: i64,
    /// Number of files.
    pub files: i64,
    /// Archive format.
    pub format: Option<String>,
    /// Audit actor of the uploader.
    pub uploaded_by: String,
    /// RFC 3339 UTC.
    pub uploaded_at: String,
    /// Free text from the uploader.
    pub note: String,
    /// The uploaded file's name (display only; never a path).
    pub original_name: String,
    /// Kept by retention whatever its age.
    pub pinned: bool,
    /// Why the upload was refused, for failed ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// Where a release stands. The database stores ready, failed or deleted; live and previous
/// are read from the record of activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    /// Serving now.
    Live,
    /// Served just before the live one.
    Previous,
    /// On disk, usable.
    Ready,
    /// Refused at upload: no folder.
    Failed,
    /// Its folder was removed (retention or by hand); the record stays.
    Deleted,
}

impl ReleaseState {
    /// The state as the API and the database write it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Live => "live",
            ReleaseState::Previous => "previous",
            ReleaseState::Ready => "ready",
            ReleaseState::Failed => "failed",
            ReleaseState::Deleted => "deleted",
        }
    }

    /// A stored state (ready, failed, deleted); anything else is not usable.
    pub(crate) fn from_db(s: &str) -> Self {
        match s {
            "ready" => ReleaseState::Ready,
            "failed" => ReleaseState::Failed,
            _ => ReleaseState::Deleted,
        }
    }
}

impl std::fmt::Display for ReleaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Templates compare states with their names.
impl PartialEq<&str> for ReleaseState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why an upload was refused.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Stable code.
    pub code: String,
    /// Sentence for people.
    pub message: String,
}

impl Release {
    /// The first 12 hex digits of the archive's hash, for people.
    pub fn short_hash(&self) -> &str {
        &self.sha256[..self.sha256.len().min(12)]
    }

    /// Whether this release can go live (it is on disk and complete).
    pub fn usable(&self) -> bool {
        matches!(
            self.state,
            ReleaseState::Ready | ReleaseState::Live | ReleaseState::Previous
        )
    }
}

/// A new release id: UTC time to the second plus 4 random hex digits, e.g.
/// `20261126-135745-a3f9`. Sorts by creation time; only `[0-9a-f-]`, so it is a safe folder name.
pub fn new_release_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    let mut r = [0u8; 2];
    getrandom::fill(&mut r).expect("the operating system's random source failed");
    format!(
        "{}-{}",
        now.format(&fmt).expect("formatting the time cannot fail"),
        hex::encode(r)
    )
}

pub use crate::vocab::is_release_id;

pub use crate::units::{human_bytes, ByteCount};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids_are_safe_and_sortable() {
        let id = new_release_id();
        assert!(is_release_id(&id), "{id}");
        for bad in [
            "",
            "../../etc",
            "20261126-135745-a3f",
            "20261126-135745-A3F9",
            "20261126/135745-a3f9",
        ] {
            assert!(!is_release_id(bad), "{bad}");
        }
        assert_eq!(human_bytes(1_234_567i64), "1.2 MB");
    }
}
