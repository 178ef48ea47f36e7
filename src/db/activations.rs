//! The `activations` table: one row per live period of a release (who, when, how it ended).
//! The record of what was live, read by rollback, the timeline and the release history.

use serde::Serialize;
use sqlx::{FromRow, SqliteConnection, SqlitePool};

/// One time a release went live.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Activation {
    /// The release.
    pub release_id: String,
    /// activate, rollback, …
    pub kind: String,
    /// Audit actor.
    pub activated_by: String,
    /// RFC 3339.
    pub activated_at: String,
    /// RFC 3339, when it stopped being live.
    pub ended_at: Option<String>,
    /// replaced, rolled back, …
    pub ended_how: Option<String>,
}

/// A site's activations, newest first.
#[tracing::instrument(skip_all, fields(site_id))]
pub async fn list(pool: &SqlitePool, site_id: i64, limit: i64) -> sqlx::Result<Vec<Activation>> {
    sqlx::query_as(
        "SELECT release_id, kind, activated_by, activated_at, ended_at, ended_how FROM activations WHERE site_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(site_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The newest release other than `live` that was ever live on the site.
#[tracing::instrument(skip_all, fields(site_id))]
pub async fn newest_other(
    pool: &SqlitePool,
    site_id: i64,
    live: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT release_id FROM activations WHERE site_id = ? AND release_id != ? ORDER BY id DESC LIMIT 1",
    )
    .bind(site_id)
    .bind(live)
    .fetch_optional(pool)
    .await
}

/// The newest earlier live release (not `live`) still usable on disk. With
/// `skip_rolled_back_from`, releases whose last live period ended in a rollback are passed over.
#[tracing::instrument(skip_all, fields(site_id))]
pub async fn earlier_usable(
    pool: &SqlitePool,
    site_id: i64,
    live: &str,
    skip_rolled_back_from: bool,
) -> sqlx::Result<Option<String>> {
    // Two fixed statements rather than a condition spliced into one: sqlx wants 'static SQL.
    let sql = if skip_rolled_back_from {
        "SELECT a.release_id FROM activations a JOIN releases r ON r.site_id = a.site_id AND r.release_id = a.release_id \
         WHERE a.site_id = ? AND a.release_id != ? AND r.state = 'ready' \
         AND a.id = (SELECT MAX(b.id) FROM activations b WHERE b.site_id = a.site_id AND b.release_id = a.release_id) \
         AND COALESCE(a.ended_how, '') != 'rolled back' ORDER BY a.id DESC LIMIT 1"
    } else {
        "SELECT a.release_id FROM activations a JOIN releases r ON r.site_id = a.site_id AND r.release_id = a.release_id \
         WHERE a.site_id = ? AND a.release_id != ? AND r.state = 'ready' ORDER BY a.id DESC LIMIT 1"
    };
    sqlx::query_scalar(sql)
        .bind(site_id)
        .bind(live)
        .fetch_optional(pool)
        .await
}

/// When `release` was last live: (from, until; empty while still live).
#[tracing::instrument(skip_all, fields(site_id))]
pub async fn last_period(
    pool: &SqlitePool,
    site_id: i64,
    release: &str,
) -> sqlx::Result<Option<(String, Option<String>)>> {
    sqlx::query_as(
        "SELECT activated_at, ended_at FROM activations WHERE site_id = ? AND release_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(site_id)
    .bind(release)
    .fetch_optional(pool)
    .await
}

/// Ends the site's open live period (`ended_how`: replaced, rolled back).
#[tracing::instrument(skip_all)]
pub async fn end_open(
    conn: &mut SqliteConnection,
    site_id: i64,
    at: &str,
    ended_how: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE activations SET ended_at = ?, ended_how = ? WHERE site_id = ? AND ended_at IS NULL",
    )
    .bind(at)
    .bind(ended_how)
    .bind(site_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts a live period of `release`.
#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut SqliteConnection,
    site_id: i64,
    release: &str,
    kind: &str,
    by: &str,
    at: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO activations (site_id, release_id, kind, activated_by, activated_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(site_id)
    .bind(release)
    .bind(kind)
    .bind(by)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}
