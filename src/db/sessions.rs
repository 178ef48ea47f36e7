//! Queries on `sessions`.

use anyhow::Context;
use sqlx::{FromRow, SqliteConnection, SqlitePool};

use crate::vocab::Role;

/// A live session joined with its user.
#[derive(Debug, Clone, FromRow)]
pub struct SessionUser {
    /// Session row id.
    pub session_id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_seen_at: i64,
    /// User row id.
    pub user_id: i64,
    /// User name.
    pub name: String,
    /// Role.
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// Whether the user must pick a new password.
    pub must_change_password: bool,
}

/// A session as listed to its owner.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    /// Row id.
    pub id: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub last_seen_at: i64,
    /// Address at log-in.
    pub ip: String,
    /// Browser at log-in.
    pub user_agent: String,
}

/// Stores a new session; returns its row id.
#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut SqliteConnection,
    secret_hash: &[u8],
    user_id: i64,
    ip: &str,
    user_agent: &str,
) -> anyhow::Result<i64> {
    let now = super::now_unix();
    let res = sqlx::query(
        "INSERT INTO sessions (secret_hash, user_id, created_at, last_seen_at, ip, user_agent) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(secret_hash)
    .bind(user_id)
    .bind(now)
    .bind(now)
    .bind(ip)
    .bind(user_agent)
    .execute(conn)
    .await
    .context("creating a session")?;
    Ok(res.last_insert_rowid())
}

/// Finds the session with this secret hash, and its user.
#[tracing::instrument(skip_all)]
pub async fn find(pool: &SqlitePool, secret_hash: &[u8]) -> anyhow::Result<Option<SessionUser>> {
    sqlx::query_as(
        "SELECT s.id AS session_id, s.created_at, s.last_seen_at, u.id AS user_id, u.name, u.role, \
         u.disabled, u.must_change_password FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.secret_hash = ?",
    )
    .bind(secret_hash)
    .fetch_optional(pool)
    .await
    .context("looking up a session")
}

/// Records that the session was used now.
#[tracing::instrument(skip_all)]
pub async fn touch(pool: &SqlitePool, id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ?")
        .bind(super::now_unix())
        .bind(id)
        .execute(pool)
        .await
        .context("updating a session")?;
    Ok(())
}

/// Ends one session of a user; false if there was none.
#[tracing::instrument(skip_all)]
pub async fn delete(conn: &mut SqliteConnection, id: i64, user_id: i64) -> anyhow::Result<bool> {
    let res = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
        .bind(id)
        .bind(user_id)
        .execute(conn)
        .await
        .context("ending a session")?;
    Ok(res.rows_affected() == 1)
}

/// Ends every session of a user but `keep`; returns how many ended.
#[tracing::instrument(skip_all)]
pub async fn delete_for_user(
    conn: &mut SqliteConnection,
    user_id: i64,
    keep: Option<i64>,
) -> anyhow::Result<u64> {
    let res = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id IS NOT ?")
        .bind(user_id)
        .bind(keep)
        .execute(conn)
        .await
        .context("ending a user's sessions")?;
    Ok(res.rows_affected())
}

/// A user's sessions, newest first.
#[tracing::instrument(skip_all)]
pub async fn list_for_user(pool: &SqlitePool, user_id: i64) -> anyhow::Result<Vec<SessionRow>> {
    sqlx::query_as(
        "SELECT id, created_at, last_seen_at, ip, user_agent FROM sessions WHERE user_id = ? \
         ORDER BY last_seen_at DESC",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
    .context("listing sessions")
}

/// Removes sessions past their idle or absolute time-out.
#[tracing::instrument(skip_all)]
pub async fn delete_expired(
    pool: &SqlitePool,
    idle_secs: i64,
    absolute_secs: i64,
) -> anyhow::Result<u64> {
    let now = super::now_unix();
    let res = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")
        .bind(now - idle_secs)
        .bind(now - absolute_secs)
        .execute(pool)
        .await
        .context("removing expired sessions")?;
    Ok(res.rows_affected())
}
