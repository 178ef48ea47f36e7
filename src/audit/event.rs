//! One way to record an event: what it says, and its row written inside the caller's
//! transaction, chained to the row before.

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};

use super::caps;
use super::chain::{Canonical, GENESIS};

/// What came of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Ok,
    /// It was refused (permissions, CSRF, throttling).
    Denied,
    /// It was tried and failed.
    Failed,
    /// A step outside the database is about to run (an outcome row follows).
    Started,
    /// A started step never reported back (the process died).
    Interrupted,
}

impl Outcome {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Started => "started",
            Outcome::Interrupted => "interrupted",
        }
    }
}

/// Where a request came from: filled in by the web layer, or by the CLI.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// Client address (socket, or X-Forwarded-For from a trusted proxy).
    pub ip: Option<String>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// The request's id, also in the server's logs.
    pub request_id: Option<String>,
}

/// An event to record. Never put passwords, session ids, tokens or CSRF tokens in it.
#[derive(Debug, Clone)]
pub struct Event {
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) outcome: Outcome,
    pub(super) site: Option<String>,
    pub(super) release: Option<String>,
    pub(super) detail: Value,
    pub(super) source: Source,
}

impl Event {
    /// `actor` is `user:<name>`, `token:<label> of <name>`, `cli:<unix user>`, `anonymous` or `system`.
    pub fn new(actor: impl Into<String>, action: &str, outcome: Outcome) -> Self {
        Self {
            actor: actor.into(),
            action: action.to_owned(),
            outcome,
            site: None,
            release: None,
            detail: Value::Object(Default::default()),
            source: Source::default(),
        }
    }

    /// The site it concerns.
    pub fn site(mut self, site: impl Into<String>) -> Self {
        self.site = Some(site.into());
        self
    }

    /// The release it concerns.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// Structured detail (from → to, Apache's output, the reason…).
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    /// Where the request came from.
    pub fn source(mut self, source: &Source) -> Self {
        self.source = source.clone();
        self
    }
}

/// UTC now, RFC 3339 with milliseconds: sorts as text.
pub fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt).expect("formatting the time cannot fail")
}

/// Records `event` inside the caller's transaction (which must have been begun with
/// `BEGIN IMMEDIATE`, so the chain has one writer at a time). Returns the event id.
#[tracing::instrument(skip_all)]
pub async fn record(conn: &mut SqliteConnection, event: &Event) -> anyhow::Result<i64> {
    let head: Option<(i64, String)> = sqlx::query_as("SELECT last_id, last_hash FROM audit_head")
        .fetch_optional(&mut *conn)
        .await
        .context("reading the audit log head")?;
    let (last_id, prev_hash) = head.unwrap_or((0, GENESIS.to_owned()));
    let id = last_id + 1;
    let at = now_text();
    // Every field cut to its documented size before it is hashed: no request makes a big row.
    let name = |s: &str| caps::cut(s, caps::MAX_NAME);
    let name_opt = |s: &Option<String>| caps::cut_opt(s.as_deref(), caps::MAX_NAME);
    let actor = name(&event.actor);
    let action = name(&event.action);
    let (site, release) = (name_opt(&event.site), name_opt(&event.release));
    let ip = name_opt(&event.source.ip);
    let request_id = name_opt(&event.source.request_id);
    let user_agent = caps::cut_opt(event.source.user_agent.as_deref(), caps::MAX_USER_AGENT);
    let detail = caps::bounded_detail(&event.detail);
    let canonical = Canonical {
        id,
        at: &at,
        actor: &actor,
        ip: ip.as_deref(),
        user_agent: user_agent.as_deref(),
        action: &action,
        site: site.as_deref(),
        release: release.as_deref(),
        outcome: event.outcome.as_str(),
        detail: &detail,
        request_id: request_id.as_deref(),
    };
    let hash = canonical.chain_hash(&prev_hash);
    sqlx::query(
        "INSERT INTO audit_events (id, at, actor, ip, user_agent, action, site, release, outcome, \
         detail, request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(&at)
    .bind(&actor)
    .bind(&ip)
    .bind(&user_agent)
    .bind(&action)
    .bind(&site)
    .bind(&release)
    .bind(event.outcome.as_str())
    .bind(&detail)
    .bind(&request_id)
    .bind(&prev_hash)
    .bind(&hash)
    .execute(&mut *conn)
    .await
    .context("writing an audit event")?;
    sqlx::query(
        "INSERT INTO audit_head (singleton, last_id, last_hash) VALUES (1, ?, ?) \
         ON CONFLICT (singleton) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash",
    )
    .bind(id)
    .bind(&hash)
    .execute(&mut *conn)
    .await
    .context("updating the audit log head")?;
    Ok(id)
}

/// Records an event that goes with no other database change, in its own transaction.
#[tracing::instrument(skip_all)]
pub async fn record_alone(pool: &SqlitePool, event: &Event) -> anyhow::Result<i64> {
    let mut tx = crate::db::begin_write(pool).await?;
    let id = record(&mut tx, event).await?;
    tx.commit().await.context("committing an audit event")?;
    Ok(id)
}
