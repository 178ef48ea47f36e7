//! The SQLite pool: WAL, busy time-out, foreign keys, migrations at start-up.

pub mod activations;
pub mod files;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

/// The database pool, as the rest of the console names it (only `db` and stores use sqlx).
pub type Pool = SqlitePool;

/// A writing transaction.
pub type WriteTx = Transaction<'static, Sqlite>;

/// Opens (creating if needed) the database and applies pending migrations.
#[tracing::instrument(skip_all)]
pub async fn connect(path: &Path) -> anyhow::Result<SqlitePool> {
    let url = format!("sqlite://{}", path.display());
    let options = SqliteConnectOptions::from_str(&url)
        .with_context(|| format!("opening database {}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Writers queue behind BEGIN IMMEDIATE; this is how long one may wait for the lock.
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        // sqlx pings a connection each time it leaves the pool by default: for a network
        // database that finds dead ones, for SQLite (a file this process has open) it cannot
        // fail and costs one more round trip to the connection's thread per query — measured,
        // a third of a go-live's time before its switch.
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .with_context(|| format!("opening database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("applying database migrations")?;
    Ok(pool)
}

/// Starts a transaction that takes the write lock at once (`BEGIN IMMEDIATE`), so concurrent
/// writers wait for each other (busy time-out) instead of failing with SQLITE_BUSY on upgrade.
#[tracing::instrument(skip_all)]
pub async fn begin_write(pool: &SqlitePool) -> anyhow::Result<WriteTx> {
    pool.begin_with("BEGIN IMMEDIATE")
        .await
        .context("starting a database transaction")
}

/// Whether the database answers (`/healthz`).
#[tracing::instrument(skip_all)]
pub async fn ping(pool: &SqlitePool) -> sqlx::Result<()> {
    sqlx::query("SELECT 1").execute(pool).await.map(|_| ())
}

/// Seconds since the Unix epoch, the unit every timestamp column uses (except the audit log's text).
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
