//! What the hash chain alone cannot show: that the append-only triggers are still in place,
//! and that the log starts where a new database starts it.

use anyhow::Context;
use serde_json::json;
use sqlx::SqlitePool;

use super::chain::GENESIS;
use super::event::{record, Event, Outcome};

/// The first event of every log created by this version.
pub const CREATED: &str = "audit_log_created";
/// Actions that may open a log: [`CREATED`], or what logs made before it began with (the
/// first admin created by `serve` or the CLI, or the console's first start).
const FIRST_RUN: [&str; 3] = [CREATED, "user_create", "console_start"];

/// The append-only triggers as migration 0001 created them (whitespace aside).
const TRIGGERS: [(&str, &str); 2] = [
    (
        "audit_events_no_update",
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ),
    (
        "audit_events_no_delete",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ),
];

fn squeeze(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `Some(reason)` when a trigger that keeps the log append-only is missing or altered.
pub async fn triggers_problem(pool: &SqlitePool) -> anyhow::Result<Option<String>> {
    let found: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'",
    )
    .fetch_all(pool)
    .await
    .context("reading the audit log's triggers")?;
    for (name, expected) in TRIGGERS {
        match found.iter().find(|(n, _)| n == name) {
            None => {
                return Ok(Some(format!(
                    "the trigger {name} that keeps the log append-only is missing (it was dropped)"
                )))
            }
            Some((_, sql)) if squeeze(sql.as_deref().unwrap_or("")) != expected => {
                return Ok(Some(format!(
                    "the trigger {name} that keeps the log append-only was changed"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// `Some(reason)` when event 1 is not one a first run writes.
pub fn first_event_problem(action: &str, prev_hash: &str) -> Option<String> {
    if prev_hash != GENESIS || !FIRST_RUN.contains(&action) {
        return Some(format!(
            "the log does not start with the events of a first run (its first event is '{action}'): its beginning was removed or replaced"
        ));
    }
    None
}

/// Opens a new log with [`CREATED`], once: a log that is empty afterwards was wiped.
pub async fn ensure_started(pool: &SqlitePool) -> anyhow::Result<()> {
    let mut tx = crate::db::begin_write(pool).await?;
    let (events,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_head")
        .fetch_one(&mut *tx)
        .await
        .context("reading the audit log head")?;
    if events == 0 {
        let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_events")
            .fetch_one(&mut *tx)
            .await
            .context("counting audit events")?;
        if rows == 0 {
            let event = Event::new("system", CREATED, Outcome::Ok)
                .detail(json!({"version": env!("CARGO_PKG_VERSION")}));
            record(&mut tx, &event).await?;
        }
    }
    tx.commit().await.context("opening the audit log")?;
    Ok(())
}
