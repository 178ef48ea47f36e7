//! What a switch tells people: its kind, its steps, its outcome; and why one stopped.

use serde::Serialize;

use crate::error::Code;

/// Why a release is being made live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// "Go live" with a chosen release.
    Activate,
    /// "Roll back" to an earlier one.
    Rollback,
}

impl Kind {
    /// Audit action and activation kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Activate => "activate",
            Kind::Rollback => "rollback",
        }
    }

    /// How the live period this switch ends is recorded.
    pub(crate) fn ends_previous_as(self) -> &'static str {
        match self {
            Kind::Activate => "replaced",
            Kind::Rollback => "rolled back",
        }
    }
}

/// One step of a switch, as shown to people and returned by the API.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was done.
    pub step: String,
    /// Whether it worked.
    pub ok: bool,
    /// How long it took.
    pub ms: u64,
    /// What came of it (Apache's own words for configtest and reload).
    pub detail: String,
    /// A site's own command: its stage, program and arguments, exit status and output.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandStep>,
}

/// What a [`Step`] that ran one of the site's commands adds.
#[derive(Debug, Clone, Serialize)]
pub struct CommandStep {
    /// `after_unpack`, `before_switch`, `after_switch`.
    pub stage: &'static str,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Exit status (null when killed, timed out, or never started).
    pub exit: Option<i32>,
    /// The end of its output (the whole kept output is on the release page).
    pub output: String,
    /// Every byte it wrote.
    pub output_bytes: u64,
}

/// The answer to a switch.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Site name.
    pub site: String,
    /// The live release after this (unchanged when it failed).
    pub active: Option<String>,
    /// The release live before.
    pub previous: Option<String>,
    /// The release asked for.
    pub requested: String,
    /// Go live or roll back.
    pub kind: Kind,
    /// Whether the requested release is live now.
    pub ok: bool,
    /// Whether a failure after the switch put the previous release back.
    pub rolled_back: bool,
    /// Stable code when it failed (`configtest_failed`, `health_check_failed`, …).
    pub code: Option<Code>,
    /// One sentence for people.
    pub message: String,
    /// Every step with its duration.
    pub steps: Vec<Step>,
}

/// Why a switch stopped, and whether the site had already been switched.
pub(crate) struct Failure {
    /// Stable code (the report's and the API's `code`).
    pub(crate) code: Code,
    /// A sentence for people.
    pub(crate) message: String,
    /// True once `current` (or the vhost) was switched: the previous release must go back.
    pub(crate) switched: bool,
}

/// Shorthand for a [`Failure`].
pub(crate) fn fail(code: Code, message: String, switched: bool) -> Failure {
    Failure {
        code,
        message,
        switched,
    }
}
