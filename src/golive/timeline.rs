//! A site's deployment timeline: every time a release went live, who put it there, how long
//! it stayed, and how that ended — plus the attempts that were rolled back automatically.

use crate::db::Pool;
use serde::Serialize;

use crate::db::activations::{self, Activation};
use crate::error::AppResult;

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The release.
    pub release: String,
    /// `went live`, `rolled back to`, or `tried`.
    pub what: String,
    /// Audit actor who did it.
    pub by: String,
    /// RFC 3339.
    pub at: String,
    /// RFC 3339, when it stopped being live (None: still live, or a failed attempt).
    pub until: Option<String>,
    /// Seconds it was live (None while still live).
    pub seconds_live: Option<i64>,
    /// `still live`, `replaced by …`, `rolled back to … by …`, `rolled back automatically: …`.
    pub ended: String,
}

fn seconds_between(from: &str, to: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let a = time::OffsetDateTime::parse(from, &Rfc3339).ok()?;
    let b = time::OffsetDateTime::parse(to, &Rfc3339).ok()?;
    Some((b - a).whole_seconds())
}

/// "2 h 14 min", "3 days", "40 s".
pub fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        s => format!("{} days {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn from_activations(acts: &[Activation]) -> Vec<Entry> {
    // `acts` is newest first: the one after an activation in time is the one before it here.
    acts.iter()
        .enumerate()
        .map(|(i, a)| {
            let next = i.checked_sub(1).and_then(|j| acts.get(j));
            let ended = match (next, &a.ended_at) {
                (_, None) => "still live".to_owned(),
                (Some(n), Some(_)) if n.kind == "rollback" => {
                    format!("rolled back to {} by {}", n.release_id, n.activated_by)
                }
                (Some(n), Some(_)) => format!("replaced by {} ({})", n.release_id, n.activated_by),
                (None, Some(_)) => a.ended_how.clone().unwrap_or_else(|| "ended".into()),
            };
            Entry {
                release: a.release_id.clone(),
                what: if a.kind == "rollback" {
                    "rolled back to".into()
                } else {
                    "went live".into()
                },
                by: a.activated_by.clone(),
                at: a.activated_at.clone(),
                until: a.ended_at.clone(),
                seconds_live: a
                    .ended_at
                    .as_deref()
                    .and_then(|e| seconds_between(&a.activated_at, e)),
                ended,
            }
        })
        .collect()
}

/// The timeline of `site`, newest first.
pub async fn timeline(pool: &Pool, site_id: i64, site: &str) -> AppResult<Vec<Entry>> {
    let acts = activations::list(pool, site_id, 1000).await?;
    let mut entries = from_activations(&acts);
    let failed = crate::audit::query::failed_switches(pool, site, 1000).await?;
    for (at, by, release, detail) in failed {
        let detail: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
        let reason = detail["reason"].as_str().unwrap_or("it failed").to_owned();
        let rolled_back = detail["rolled_back"].as_bool().unwrap_or(false);
        entries.push(Entry {
            release: release.unwrap_or_default(),
            what: "tried".into(),
            by,
            at,
            until: None,
            seconds_live: None,
            ended: if rolled_back {
                format!("rolled back automatically: {reason}")
            } else {
                format!("not put live: {reason}")
            },
        });
    }
    entries.sort_by(|a, b| b.at.cmp(&a.at));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use crate::golive::timeline::*;

    fn act(id: &str, kind: &str, at: &str, ended: Option<&str>) -> Activation {
        Activation {
            release_id: id.into(),
            kind: kind.into(),
            activated_by: "user:ann".into(),
            activated_at: at.into(),
            ended_at: ended.map(Into::into),
            ended_how: ended.map(|_| "replaced".into()),
        }
    }

    #[test]
    fn entries_say_how_each_live_period_ended() {
        let acts = [
            act("C", "rollback", "2026-11-26T12:00:00.000Z", None),
            act(
                "B",
                "activate",
                "2026-11-26T10:00:00.000Z",
                Some("2026-11-26T12:00:00.000Z"),
            ),
            act(
                "A",
                "activate",
                "2026-11-26T09:00:00.000Z",
                Some("2026-11-26T10:00:00.000Z"),
            ),
        ];
        let e = from_activations(&acts);
        assert_eq!(e[0].ended, "still live");
        assert_eq!(e[1].ended, "rolled back to C by user:ann");
        assert_eq!(e[1].seconds_live, Some(7200));
        assert_eq!(e[2].ended, "replaced by B (user:ann)");
        assert_eq!(human_duration(7260), "2 h 1 min");
    }
}
