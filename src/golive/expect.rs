//! The "expected live release" check: a re-sent form or a second person's tap at the same
//! moment must not switch again.

use crate::error::code;
use crate::error::{AppError, AppResult};
use crate::sites::Site;

/// What the person asking for a switch saw as live.
#[derive(Clone, Copy, Debug)]
pub enum Expect<'a> {
    /// No expectation (scripts, re-applying settings).
    Anything,
    /// This release (or nothing) was live when they confirmed.
    Live(Option<&'a str>),
}

/// Refuses a switch when the site changed since the person confirming looked at it.
pub fn expect_live(site: &Site, release_id: &str, seen: Option<&str>) -> AppResult<()> {
    let live = site.active_release.as_deref();
    if live == Some(release_id) {
        return Err(AppError::Conflict {
            code: code::ALREADY_LIVE,
            message: format!("Release {release_id} is already live. Nothing was changed."),
        });
    }
    if live != seen {
        return Err(AppError::Conflict {
            code: code::CHANGED_MEANWHILE,
            message: format!(
                "The site changed since this was shown: {} is live now. Nothing was changed: look at the site again and choose.",
                live.unwrap_or("nothing")
            ),
        });
    }
    Ok(())
}
