//! Reading the audit log: filters, keyset pagination (newest first), streamed exports.

use anyhow::Context;
use serde::Serialize;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqlitePool};

use crate::error::code;
use crate::error::{AppError, AppResult};

/// Filters of the review page, `GET /api/v1/audit` and the exports.
#[derive(Debug, Default, Clone, serde::Deserialize, Serialize)]
pub struct Filter {
    /// Only this site.
    pub site: Option<String>,
    /// Only this actor (exact; a bare user name means `user:<name>`).
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
    /// From this UTC time (RFC 3339, or a date: its start).
    pub from: Option<String>,
    /// Until this UTC time (RFC 3339, or a date: its end), inclusive.
    pub to: Option<String>,
    /// Cursor: only events with a smaller id.
    pub before: Option<i64>,
    /// Page size (1–500, default 50).
    pub limit: Option<u32>,
}

/// One event as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct EventView {
    /// Sequence number.
    pub id: i64,
    /// UTC, RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
    /// From where.
    pub ip: Option<String>,
    /// Browser or client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// What.
    pub action: String,
    /// Which site.
    pub site: Option<String>,
    /// Which release.
    pub release: Option<String>,
    /// ok, denied, failed, started, interrupted.
    pub outcome: String,
    /// Structured detail.
    #[sqlx(json)]
    pub detail: serde_json::Value,
    /// Request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A page of events and the cursor of the next (older) page.
#[derive(Debug, Serialize)]
pub struct Page {
    /// Newest first.
    pub events: Vec<EventView>,
    /// Pass as `before` for the next page; `None` at the end.
    pub next: Option<i64>,
}

fn blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A time bound in the stored form (`2026-11-26T13:44:07.123Z`), from RFC 3339 or a date.
fn bound(raw: &str, end_of_day: bool) -> AppResult<String> {
    use time::format_description::well_known::Rfc3339;
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let date_fmt = time::macros::format_description!("[year]-[month]-[day]");
    let minute_fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let t = if let Ok(t) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        t.to_offset(time::UtcOffset::UTC)
    } else if let Ok(d) = time::Date::parse(raw, &date_fmt) {
        let t = if end_of_day {
            d.with_hms_milli(23, 59, 59, 999)
        } else {
            d.with_hms(0, 0, 0)
        };
        t.expect("valid time").assume_utc()
    } else if let Ok(t) = time::PrimitiveDateTime::parse(raw, &minute_fmt) {
        t.assume_utc()
    } else {
        return Err(AppError::invalid(code::INVALID_TIME, format!("{:?} is not a time: use a date like 2026-11-26 or a UTC time like 2026-11-26T14:30:00Z.", raw.chars().take(40).collect::<String>())));
    };
    Ok(t.format(&fmt).expect("formatting the time cannot fail"))
}

impl Filter {
    /// Appends the filter's conditions (time range as an id range, via the `at` index).
    async fn push_conditions(
        &self,
        pool: &SqlitePool,
        q: &mut QueryBuilder<'_, Sqlite>,
    ) -> AppResult<()> {
        // Names are lower case; a bare user name means that user (`alice` → `user:alice`).
        let lower = |v: &Option<String>| blank(v).map(|v| v.trim().to_lowercase());
        let actor = blank(&self.actor).map(|a| match a.trim() {
            a if a.contains(':') => a.to_owned(),
            name => format!("user:{}", name.to_lowercase()),
        });
        for (column, value) in [
            ("site", lower(&self.site)),
            ("actor", actor),
            ("action", lower(&self.action)),
            ("outcome", lower(&self.outcome)),
        ] {
            if let Some(v) = value {
                q.push(format_args!(" AND {column} = ")).push_bind(v);
            }
        }
        // Ids grow with time, so a time range is an id range: two index lookups, then the
        // newest-first walk by id stays fast however old the range is.
        if let Some(from) = blank(&self.from) {
            let from = bound(from, false)?;
            let first: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM audit_events WHERE at >= ? ORDER BY at, id LIMIT 1",
            )
            .bind(&from)
            .fetch_optional(pool)
            .await?;
            // The id bound narrows the walk; the time condition keeps it exact even if the
            // clock ever stepped back. (`+at`: SQLite must not pick the `at` index for this
            // part and sort a week of events; the id range is the fast path.)
            q.push(" AND id >= ")
                .push_bind(first.unwrap_or(i64::MAX))
                .push(" AND +at >= ")
                .push_bind(from);
        }
        if let Some(to) = blank(&self.to) {
            let to = bound(to, true)?;
            let last: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM audit_events WHERE at <= ? ORDER BY at DESC, id DESC LIMIT 1",
            )
            .bind(&to)
            .fetch_optional(pool)
            .await?;
            q.push(" AND id <= ")
                .push_bind(last.unwrap_or(0))
                .push(" AND +at <= ")
                .push_bind(to);
        }
        Ok(())
    }

    /// The filter without paging, for links and exports.
    pub fn query_string(&self) -> String {
        let pairs = [
            ("site", &self.site),
            ("actor", &self.actor),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ];
        let kept: Vec<(&str, &str)> = pairs
            .iter()
            .filter_map(|(k, v)| blank(v).map(|v| (*k, v)))
            .collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

const SELECT: &str = "SELECT id, at, actor, ip, user_agent, action, site, release, outcome, detail, request_id FROM audit_events WHERE 1 = 1";

/// Up to `limit` events matching `f` with ids below `before`, newest first.
async fn fetch(
    pool: &SqlitePool,
    f: &Filter,
    before: Option<i64>,
    limit: i64,
) -> AppResult<Vec<EventView>> {
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(SELECT);
    f.push_conditions(pool, &mut q).await?;
    if let Some(before) = before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    Ok(q.build_query_as()
        .fetch_all(pool)
        .await
        .context("reading the audit log")?)
}

/// Events matching `f`, newest first, one page.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &SqlitePool, f: &Filter) -> AppResult<Page> {
    let limit = f.limit.unwrap_or(50).clamp(1, 500) as i64;
    let mut events = fetch(pool, f, f.before, limit + 1).await?;
    let next = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One header line, then one line per event; text fields never hold a raw line break.
    Csv,
    /// JSON Lines: one JSON object per line.
    JsonLines,
}

/// The CSV header line.
pub const CSV_HEADER: &str =
    "id,at,actor,ip,user_agent,action,site,release,outcome,detail,request_id\n";

/// A CSV field: quoted, quotes doubled, and line breaks written as `\n` so that no text a
/// user typed can start a line of its own.
fn csv_field(s: &str) -> String {
    let mut flat = s
        .replace('\\', "\\\\")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
        .replace(['\u{2028}', '\u{2029}'], " ");
    // A cell a spreadsheet would run as a formula (e.g. a user agent "=HYPERLINK(…)") is
    // defused with a leading apostrophe.
    if flat.starts_with(['=', '+', '-', '@', '\t']) {
        flat.insert(0, '\'');
    }
    format!("\"{}\"", flat.replace('"', "\"\""))
}

fn render(e: &EventView, format: Format) -> String {
    match format {
        Format::JsonLines => {
            // serde_json escapes control characters, so each event is exactly one line.
            let mut line = serde_json::to_string(e).expect("events serialise");
            line.push('\n');
            line
        }
        Format::Csv => {
            let opt = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
            format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                e.id,
                csv_field(&e.at),
                csv_field(&e.actor),
                opt(&e.ip),
                opt(&e.user_agent),
                csv_field(&e.action),
                opt(&e.site),
                opt(&e.release),
                csv_field(&e.outcome),
                csv_field(&e.detail.to_string()),
                opt(&e.request_id)
            )
        }
    }
}

/// Streams every event matching `f` (newest first) in batches: memory stays constant
/// whatever the size of the log.
pub fn export(
    pool: SqlitePool,
    f: Filter,
    format: Format,
) -> impl futures_util::Stream<Item = Result<actix_web::web::Bytes, AppError>> {
    const BATCH: i64 = 1000;
    let header =
        (format == Format::Csv).then(|| actix_web::web::Bytes::from_static(CSV_HEADER.as_bytes()));
    let start = futures_util::stream::iter(header.map(Ok));
    let rows = futures_util::stream::try_unfold(Some(None::<i64>), move |cursor| {
        let (pool, f) = (pool.clone(), f.clone());
        async move {
            let Some(before) = cursor else {
                return Ok(None);
            };
            let events = fetch(&pool, &f, before, BATCH).await?;
            if events.is_empty() {
                return Ok(None);
            }
            let next = (events.len() as i64 == BATCH).then(|| events.last().map(|e| e.id));
            let chunk: String = events.iter().map(|e| render(e, format)).collect();
            Ok(Some((actix_web::web::Bytes::from(chunk), next)))
        }
    });
    futures_util::StreamExt::chain(start, rows)
}

/// id, actor, action, site, release of an intent row.
pub type OpenIntent = (i64, String, String, Option<String>, Option<String>);

/// Intents ("started") that never got an outcome (the process died), oldest first.
#[tracing::instrument(skip_all)]
pub async fn open_intents(pool: &SqlitePool) -> sqlx::Result<Vec<OpenIntent>> {
    sqlx::query_as(
        "SELECT s.id, s.actor, s.action, s.site, s.release FROM audit_events s WHERE s.outcome = 'started' AND NOT EXISTS \
         (SELECT 1 FROM audit_events o WHERE o.id > s.id AND o.action = s.action AND o.site IS s.site \
          AND o.release IS s.release AND o.outcome != 'started')",
    )
    .fetch_all(pool)
    .await
}

/// at, actor, release, detail of a failed switch.
pub type FailedSwitch = (String, String, Option<String>, String);

/// The site's failed go-lives and rollbacks, newest first.
#[tracing::instrument(skip_all, fields(site))]
pub async fn failed_switches(
    pool: &SqlitePool,
    site: &str,
    limit: i64,
) -> sqlx::Result<Vec<FailedSwitch>> {
    // INDEXED BY: left alone, SQLite walks all the site's events by id to skip a small sort.
    sqlx::query_as(
        "SELECT at, actor, release, detail FROM audit_events INDEXED BY audit_events_site_action WHERE site = ? AND action IN ('activate', 'rollback') \
         AND outcome = 'failed' ORDER BY id DESC LIMIT ?",
    )
    .bind(site)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use crate::audit::query::*;

    #[test]
    fn csv_fields_cannot_start_a_line() {
        let f = csv_field("evil\n12,\"2026\",\"user:admin\"\r\nx\u{2028}");
        assert!(!f.contains('\n') && !f.contains('\r') && !f.contains('\u{2028}'));
        assert!(f.starts_with('"') && f.ends_with('"'));
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1+2"), "\"'-1+2\"");
    }

    #[test]
    fn time_bounds_accept_dates_and_rfc3339() {
        assert_eq!(
            bound("2026-11-26", false).unwrap(),
            "2026-11-26T00:00:00.000Z"
        );
        assert_eq!(
            bound("2026-11-26", true).unwrap(),
            "2026-11-26T23:59:59.999Z"
        );
        assert_eq!(
            bound("2026-11-26T15:30:00+01:00", false).unwrap(),
            "2026-11-26T14:30:00.000Z"
        );
        assert_eq!(
            bound("2026-11-26T14:30", false).unwrap(),
            "2026-11-26T14:30:00.000Z"
        );
        assert!(bound("yesterday", false).is_err());
    }
}
