//! Queries on `users`.

use anyhow::Context;
use sqlx::{FromRow, SqliteConnection, SqlitePool};

use crate::vocab::Role;

/// A row of `users`.
#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// User name (lower case).
    pub name: String,
    /// Role.
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled user cannot log in and has no sessions.
    pub disabled: bool,
    /// Set on accounts whose password an admin (or first run) generated.
    pub must_change_password: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Finds a user by name (case-insensitive).
#[tracing::instrument(skip_all)]
pub async fn find_by_name(pool: &SqlitePool, name: &str) -> anyhow::Result<Option<UserRow>> {
    sqlx::query_as("SELECT * FROM users WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await
        .context("looking up a user")
}

/// All users, by name.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &SqlitePool) -> anyhow::Result<Vec<UserRow>> {
    sqlx::query_as("SELECT * FROM users ORDER BY name")
        .fetch_all(pool)
        .await
        .context("listing users")
}

/// How many users exist.
#[tracing::instrument(skip_all)]
pub async fn count(pool: &SqlitePool) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await
        .context("counting users")
}

/// Inserts a user; `None` when the name is taken.
#[tracing::instrument(skip_all)]
pub async fn insert(
    conn: &mut SqliteConnection,
    name: &str,
    role: Role,
    password_hash: &str,
    must_change_password: bool,
) -> anyhow::Result<Option<i64>> {
    let now = super::now_unix();
    let res = sqlx::query(
        "INSERT INTO users (name, role, password_hash, must_change_password, created_at, password_changed_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(password_hash)
    .bind(must_change_password)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await
    .context("creating a user")?;
    Ok((res.rows_affected() == 1).then(|| res.last_insert_rowid()))
}

/// Sets a user's role.
#[tracing::instrument(skip_all)]
pub async fn set_role(conn: &mut SqliteConnection, id: i64, role: Role) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET role = ? WHERE id = ?")
        .bind(role.as_str())
        .bind(id)
        .execute(conn)
        .await
        .context("changing a user's role")?;
    Ok(())
}

/// Disables or enables a user.
#[tracing::instrument(skip_all)]
pub async fn set_disabled(
    conn: &mut SqliteConnection,
    id: i64,
    disabled: bool,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET disabled = ? WHERE id = ?")
        .bind(disabled)
        .bind(id)
        .execute(conn)
        .await
        .context("disabling or enabling a user")?;
    Ok(())
}

/// Stores a new password hash.
#[tracing::instrument(skip_all)]
pub async fn set_password(
    conn: &mut SqliteConnection,
    id: i64,
    hash: &str,
    must_change_password: bool,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ? WHERE id = ?",
    )
    .bind(hash)
    .bind(must_change_password)
    .bind(super::now_unix())
    .bind(id)
    .execute(conn)
    .await
    .context("storing a password")?;
    Ok(())
}

/// Number of enabled admins (the last one may not be demoted or disabled).
#[tracing::instrument(skip_all)]
pub async fn enabled_admins(conn: &mut SqliteConnection) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
        .fetch_one(conn)
        .await
        .context("counting admins")
}
