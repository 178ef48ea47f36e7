//! Reading the audit log: filters and keyset pagination (newest first).

use anyhow::Context;
use serde::Serialize;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqlitePool};

/// Filters of the review page and `GET /api/v1/audit`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Filter {
    /// Only this site.
    pub site: Option<String>,
    /// Only this actor (exact).
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<String>,
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

/// Events matching `f`, newest first.
pub async fn list(pool: &SqlitePool, f: &Filter) -> anyhow::Result<Page> {
    let limit = f.limit.unwrap_or(50).clamp(1, 500) as i64;
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT id, at, actor, ip, user_agent, action, site, release, outcome, detail, request_id \
         FROM audit_events WHERE 1 = 1",
    );
    for (column, value) in [
        ("site", blank(&f.site)),
        ("actor", blank(&f.actor)),
        ("action", blank(&f.action)),
        ("outcome", blank(&f.outcome)),
    ] {
        if let Some(v) = value {
            q.push(format_args!(" AND {column} = "))
                .push_bind(v.to_owned());
        }
    }
    if let Some(before) = f.before {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit + 1);
    let mut events: Vec<EventView> = q
        .build_query_as()
        .fetch_all(pool)
        .await
        .context("reading the audit log")?;
    let next = if events.len() as i64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page { events, next })
}
