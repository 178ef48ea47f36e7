//! The `hosts` and `host_releases` tables.

use serde::Serialize;
use sqlx::{FromRow, SqlitePool};

use super::host::Host;
use super::input::NewHost;
use crate::error::{AppError, AppResult};

#[derive(FromRow)]
struct Row {
    id: i64,
    site_id: i64,
    name: String,
    ssh_user: String,
    address: String,
    port: i64,
    dir: String,
    vhost_dir: String,
    log_dir: String,
    configtest: String,
    reload: String,
    check_url: String,
    host_key: String,
    fingerprint: String,
    confirmed: bool,
    serving: Option<String>,
    checked_at: Option<String>,
    drift: Option<String>,
    php: String,
}

impl From<Row> for Host {
    fn from(r: Row) -> Self {
        let port = u16::try_from(r.port).unwrap_or(22);
        let ssh = match port {
            22 => format!("{}@{}", r.ssh_user, r.address),
            p => format!("{}@{}:{p}", r.ssh_user, r.address),
        };
        Host {
            id: r.id,
            site_id: r.site_id,
            name: r.name,
            ssh,
            user: r.ssh_user,
            address: r.address,
            port,
            dir: r.dir,
            vhost_dir: r.vhost_dir,
            log_dir: r.log_dir,
            configtest: serde_json::from_str(&r.configtest).unwrap_or_default(),
            reload: serde_json::from_str(&r.reload).unwrap_or_default(),
            check_url: r.check_url,
            host_key: r.host_key,
            fingerprint: r.fingerprint,
            confirmed: r.confirmed,
            serving: r.serving,
            checked_at: r.checked_at,
            drift: r.drift,
            php: serde_json::from_str(&r.php).unwrap_or_default(),
        }
    }
}

const COLUMNS: &str = "id, site_id, name, ssh_user, address, port, dir, vhost_dir, log_dir, \
    configtest, reload, check_url, host_key, fingerprint, confirmed, serving, checked_at, drift, php";

/// The hosts of a site, by name.
pub async fn list(pool: &SqlitePool, site_id: i64) -> AppResult<Vec<Host>> {
    let sql = format!("SELECT {COLUMNS} FROM hosts WHERE site_id = ? ORDER BY name");
    hosts(pool, sqlx::query_as(&sql).bind(site_id)).await
}

/// [`list`] for the site named `site` (none for an unknown one): read beside the site itself.
pub async fn list_named(pool: &SqlitePool, site: &str) -> AppResult<Vec<Host>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM hosts WHERE site_id = (SELECT id FROM sites WHERE name = ?) ORDER BY name"
    );
    hosts(pool, sqlx::query_as(&sql).bind(site)).await
}

/// Every host of every site (start-up reconciliation).
pub async fn all(pool: &SqlitePool) -> AppResult<Vec<Host>> {
    let sql = format!("SELECT {COLUMNS} FROM hosts ORDER BY site_id, name");
    hosts(pool, sqlx::query_as(&sql)).await
}

/// The hosts a query of [`COLUMNS`] finds.
async fn hosts<'q>(
    pool: &SqlitePool,
    query: sqlx::query::QueryAs<'q, sqlx::Sqlite, Row, sqlx::sqlite::SqliteArguments<'q>>,
) -> AppResult<Vec<Host>> {
    let rows = query.fetch_all(pool).await?;
    Ok(rows.into_iter().map(Host::from).collect())
}

/// One host of a site.
pub async fn get(pool: &SqlitePool, site_id: i64, name: &str) -> AppResult<Host> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM hosts WHERE site_id = ? AND name = ?"
    ))
    .bind(site_id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.map(Host::from)
        .ok_or_else(|| AppError::NotFound(format!("This site has no host named {name}.")))
}

/// Adds a host with its scanned key; confirmed when `confirmed`.
pub async fn insert(
    pool: &SqlitePool,
    site_id: i64,
    h: &NewHost,
    (key, fingerprint): (&str, &str),
    confirmed: bool,
) -> AppResult<Host> {
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
    sqlx::query(
        "INSERT INTO hosts (site_id, name, ssh_user, address, port, dir, vhost_dir, log_dir, \
         configtest, reload, check_url, host_key, fingerprint, confirmed, created_at, php) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(site_id)
    .bind(&h.name)
    .bind(&h.user)
    .bind(&h.address)
    .bind(i64::from(h.port))
    .bind(&h.dir)
    .bind(&h.vhost_dir)
    .bind(&h.log_dir)
    .bind(json(&h.configtest))
    .bind(json(&h.reload))
    .bind(&h.check_url)
    .bind(key)
    .bind(fingerprint)
    .bind(confirmed)
    .bind(crate::audit::now_text())
    .bind(serde_json::to_string(&h.php).unwrap_or_default())
    .execute(pool)
    .await?;
    get(pool, site_id, &h.name).await
}

/// Marks a host's key confirmed.
pub async fn confirm(pool: &SqlitePool, id: i64) -> AppResult<()> {
    sqlx::query("UPDATE hosts SET confirmed = 1 WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes a host and its staging records.
pub async fn delete(pool: &SqlitePool, id: i64) -> AppResult<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM host_releases WHERE host_id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM hosts WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// What a host serves as just seen (`drift`: why it disagrees with the records, or none).
pub async fn set_seen(
    pool: &SqlitePool,
    id: i64,
    serving: Option<&str>,
    drift: Option<&str>,
) -> AppResult<()> {
    sqlx::query("UPDATE hosts SET serving = ?, drift = ?, checked_at = ? WHERE id = ?")
        .bind(serving)
        .bind(drift)
        .bind(crate::audit::now_text())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// A release's staging on one host.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Staging {
    /// The host's name.
    pub host: String,
    /// `staging`, `staged`, `failed`, `deleted`.
    pub state: String,
    /// One sentence (why it failed; what rsync sent).
    pub detail: String,
    /// Files rsync sent (not hard-linked).
    pub files_sent: Option<i64>,
    /// Bytes rsync sent.
    pub bytes_sent: Option<i64>,
    /// Duration.
    pub ms: Option<i64>,
    /// RFC 3339.
    pub updated_at: String,
}

/// How far `release_id` is on each host of the site (hosts without a record: none).
pub async fn stagings(
    pool: &SqlitePool,
    site_id: i64,
    release_id: &str,
) -> AppResult<Vec<Staging>> {
    Ok(sqlx::query_as(
        "SELECT h.name AS host, r.state, r.detail, r.files_sent, r.bytes_sent, r.ms, r.updated_at \
         FROM host_releases r JOIN hosts h ON h.id = r.host_id \
         WHERE h.site_id = ? AND r.release_id = ? ORDER BY h.name",
    )
    .bind(site_id)
    .bind(release_id)
    .fetch_all(pool)
    .await?)
}

/// The state of `release_id` on host `host_id`, if recorded.
pub async fn staging_state(
    pool: &SqlitePool,
    host_id: i64,
    release_id: &str,
) -> AppResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT state FROM host_releases WHERE host_id = ? AND release_id = ?")
            .bind(host_id)
            .bind(release_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The newest release staged on a host (rsync's `--link-dest`), other than `except`.
pub async fn newest_staged(
    pool: &SqlitePool,
    host_id: i64,
    except: &str,
) -> AppResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT release_id FROM host_releases WHERE host_id = ? AND state = 'staged' \
         AND release_id <> ? ORDER BY release_id DESC LIMIT 1",
    )
    .bind(host_id)
    .bind(except)
    .fetch_optional(pool)
    .await?)
}

/// Records how far staging got.
pub async fn set_staging(
    pool: &SqlitePool,
    host_id: i64,
    release_id: &str,
    state: &str,
    detail: &str,
    sent: Option<(i64, i64, i64)>,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO host_releases (host_id, release_id, state, detail, files_sent, bytes_sent, ms, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host_id, release_id) DO UPDATE SET \
         state = excluded.state, detail = excluded.detail, files_sent = excluded.files_sent, \
         bytes_sent = excluded.bytes_sent, ms = excluded.ms, updated_at = excluded.updated_at",
    )
    .bind(host_id)
    .bind(release_id)
    .bind(state)
    .bind(detail)
    .bind(sent.map(|s| s.0))
    .bind(sent.map(|s| s.1))
    .bind(sent.map(|s| s.2))
    .bind(crate::audit::now_text())
    .execute(pool)
    .await
    .map_err(AppError::from)?;
    Ok(())
}

/// Releases staged on a host that this machine has deleted since.
pub async fn deleted_here(pool: &SqlitePool, host_id: i64) -> AppResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT r.release_id FROM host_releases r JOIN hosts h ON h.id = r.host_id \
         JOIN releases l ON l.site_id = h.site_id AND l.release_id = r.release_id \
         WHERE r.host_id = ? AND r.state IN ('staged', 'failed') AND l.state = 'deleted'",
    )
    .bind(host_id)
    .fetch_all(pool)
    .await?)
}
