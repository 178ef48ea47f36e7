//! Queries on `api_tokens`.

use anyhow::Context;
use sqlx::{FromRow, SqliteConnection, SqlitePool};

use crate::vocab::Role;

/// A token as listed (never its secret, which is not kept).
#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    /// Row id.
    pub id: i64,
    /// Owner's row id.
    pub user_id: i64,
    /// Free text given at creation (shown escaped).
    pub label: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Actor who created it.
    pub created_by: String,
    /// Unix seconds, when last used.
    pub last_used_at: Option<i64>,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
    /// Unix seconds, when it stops working (`None`: never).
    pub expires_at: Option<i64>,
}

/// A usable token and its owner.
#[derive(Debug, Clone, FromRow)]
pub struct TokenUser {
    /// Token row id.
    pub token_id: i64,
    /// Token label.
    pub label: String,
    /// Unix seconds.
    pub last_used_at: Option<i64>,
    /// Owner's row id.
    pub user_id: i64,
    /// Owner's name.
    pub name: String,
    /// Owner's role.
    #[sqlx(try_from = "String")]
    pub role: Role,
}

/// Stores a token hash; returns its row id.
#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut SqliteConnection,
    user_id: i64,
    label: &str,
    secret_hash: &[u8],
    created_by: &str,
) -> anyhow::Result<i64> {
    let res = sqlx::query(
        "INSERT INTO api_tokens (user_id, label, secret_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(user_id)
    .bind(label)
    .bind(secret_hash)
    .bind(super::now_unix())
    .bind(created_by)
    .execute(conn)
    .await
    .context("creating an API token")?;
    Ok(res.last_insert_rowid())
}

/// The unrevoked token with this hash, if its owner is enabled.
#[tracing::instrument(skip_all)]
pub async fn find_usable(
    pool: &SqlitePool,
    secret_hash: &[u8],
) -> anyhow::Result<Option<TokenUser>> {
    sqlx::query_as(
        "SELECT t.id AS token_id, t.label, t.last_used_at, u.id AS user_id, u.name, u.role \
         FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.secret_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0 \
         AND (t.expires_at IS NULL OR t.expires_at > ?)",
    )
    .bind(secret_hash)
    .bind(super::now_unix())
    .fetch_optional(pool)
    .await
    .context("looking up an API token")
}

/// Sets when a token stops working (Unix seconds).
pub async fn set_expiry(conn: &mut SqliteConnection, id: i64, at: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE api_tokens SET expires_at = ? WHERE id = ?")
        .bind(at)
        .bind(id)
        .execute(conn)
        .await
        .context("setting an API token's expiry")?;
    Ok(())
}

/// Records a use of the token.
#[tracing::instrument(skip_all)]
pub async fn touch(pool: &SqlitePool, id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
        .bind(super::now_unix())
        .bind(id)
        .execute(pool)
        .await
        .context("recording an API token's use")?;
    Ok(())
}

/// Revokes a token of `user_id`; false when there is no such unrevoked token.
#[tracing::instrument(skip_all)]
pub async fn revoke(conn: &mut SqliteConnection, id: i64, user_id: i64) -> anyhow::Result<bool> {
    let res = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
    )
    .bind(super::now_unix())
    .bind(id)
    .bind(user_id)
    .execute(conn)
    .await
    .context("revoking an API token")?;
    Ok(res.rows_affected() == 1)
}

/// Revokes every unrevoked token of `user_id`; returns how many (expired ones included, so
/// none can come back if its expiry is ever changed).
#[tracing::instrument(skip_all)]
pub async fn revoke_all(conn: &mut SqliteConnection, user_id: i64) -> anyhow::Result<u64> {
    let res = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
    )
    .bind(super::now_unix())
    .bind(user_id)
    .execute(conn)
    .await
    .context("revoking a user's API tokens")?;
    Ok(res.rows_affected())
}

/// A user's tokens, newest first.
#[tracing::instrument(skip_all)]
pub async fn list_for_user(pool: &SqlitePool, user_id: i64) -> anyhow::Result<Vec<TokenRow>> {
    sqlx::query_as("SELECT id, user_id, label, created_at, created_by, last_used_at, revoked_at, expires_at FROM api_tokens WHERE user_id = ? ORDER BY id DESC")
        .bind(user_id)
        .fetch_all(pool)
        .await
        .context("listing API tokens")
}
