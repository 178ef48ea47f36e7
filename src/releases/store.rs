//! Releases in the database: records, manifests, states, comparison.

use anyhow::Context;
use sqlx::{FromRow, SqliteConnection, SqlitePool};

use super::archive::ManifestEntry;
use super::{Failure, Release, ReleaseState};
use crate::error::{AppError, AppResult};

#[derive(FromRow)]
struct Row {
    id: i64,
    release_id: String,
    state: String,
    sha256: String,
    archive_bytes: i64,
    unpacked_bytes: i64,
    files: i64,
    format: Option<String>,
    uploaded_by: String,
    uploaded_at: String,
    note: String,
    original_name: String,
    pinned: bool,
    failure_code: Option<String>,
    failure_message: Option<String>,
}

const COLUMNS: &str =
    "id, release_id, state, sha256, archive_bytes, unpacked_bytes, files, format, uploaded_by, \
                       uploaded_at, note, original_name, pinned, failure_code, failure_message";

/// Live and previous release of a site, from the record of activations.
#[derive(Debug, Clone, Default)]
pub struct LiveInfo {
    /// The live release.
    pub live: Option<String>,
    /// The one live before it.
    pub previous: Option<String>,
}

fn to_release(r: Row, live: &LiveInfo) -> Release {
    let stored = ReleaseState::from_db(&r.state);
    let ready = stored == ReleaseState::Ready;
    let state = if ready && live.live.as_deref() == Some(&r.release_id) {
        ReleaseState::Live
    } else if ready && live.previous.as_deref() == Some(&r.release_id) {
        ReleaseState::Previous
    } else {
        stored
    };
    let failure = r.failure_code.map(|code| Failure {
        code,
        message: r.failure_message.unwrap_or_default(),
    });
    Release {
        pk: r.id,
        id: r.release_id,
        state,
        sha256: r.sha256,
        bytes: r.archive_bytes,
        unpacked_bytes: r.unpacked_bytes,
        files: r.files,
        format: r.format,
        uploaded_by: r.uploaded_by,
        uploaded_at: r.uploaded_at,
        note: r.note,
        original_name: r.original_name,
        pinned: r.pinned,
        failure,
    }
}

/// The live release and the distinct one live before it.
#[tracing::instrument(skip_all)]
pub async fn live_info(pool: &SqlitePool, site_id: i64) -> AppResult<LiveInfo> {
    let live: Option<String> = sqlx::query_scalar("SELECT active_release FROM sites WHERE id = ?")
        .bind(site_id)
        .fetch_optional(pool)
        .await?
        .flatten();
    let previous: Option<String> = match &live {
        Some(l) => crate::db::activations::newest_other(pool, site_id, l).await?,
        None => None,
    };
    Ok(LiveInfo { live, previous })
}

/// Ids of the site's usable (ready) releases.
#[tracing::instrument(skip_all)]
pub async fn usable_ids(pool: &SqlitePool, site_id: i64) -> AppResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT release_id FROM releases WHERE site_id = ? AND state = 'ready'")
            .bind(site_id)
            .fetch_all(pool)
            .await?,
    )
}

/// A page of a site's releases, newest first (`before` is a row id cursor).
#[tracing::instrument(skip_all)]
pub async fn list(
    pool: &SqlitePool,
    site_id: i64,
    before: Option<i64>,
    limit: i64,
) -> AppResult<Vec<Release>> {
    let live = live_info(pool, site_id).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM releases WHERE site_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(site_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| to_release(r, &live)).collect())
}

/// One release of a site, or a 404 that says so.
#[tracing::instrument(skip_all)]
pub async fn get(pool: &SqlitePool, site_id: i64, release_id: &str) -> AppResult<Release> {
    let live = live_info(pool, site_id).await?;
    let sql = format!("SELECT {COLUMNS} FROM releases WHERE site_id = ? AND release_id = ?");
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(site_id)
        .bind(release_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| to_release(r, &live))
        .ok_or_else(|| no_such(release_id))
}

/// [`get`] in the site named `site`, without working out whether it is the live or previous
/// one (its state is then `ready` for both): one query, for a go-live's checks, which read
/// only whether it is usable, at the same time as the site itself.
#[tracing::instrument(skip_all)]
pub async fn get_unlabelled(pool: &SqlitePool, site: &str, release_id: &str) -> AppResult<Release> {
    let sql = format!(
        "SELECT {COLUMNS} FROM releases WHERE site_id = (SELECT id FROM sites WHERE name = ?) \
         AND release_id = ?"
    );
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(site)
        .bind(release_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| to_release(r, &LiveInfo::default()))
        .ok_or_else(|| no_such(release_id))
}

fn no_such(release_id: &str) -> AppError {
    AppError::NotFound(format!(
        "This site has no release {}.",
        release_id.chars().take(40).collect::<String>()
    ))
}

/// A usable release with this archive hash, if any.
#[tracing::instrument(skip_all)]
pub async fn find_same_archive(
    pool: &SqlitePool,
    site_id: i64,
    sha256: &str,
) -> AppResult<Option<Release>> {
    let sql = format!("SELECT {COLUMNS} FROM releases WHERE site_id = ? AND sha256 = ? AND state = 'ready' ORDER BY id DESC LIMIT 1");
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(site_id)
        .bind(sha256)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| to_release(r, &LiveInfo::default())))
}

/// What is recorded about any upload.
pub struct NewRelease<'a> {
    /// Site row id.
    pub site_id: i64,
    /// Generated id.
    pub release_id: &'a str,
    /// Archive hash.
    pub sha256: &'a str,
    /// Archive size.
    pub archive_bytes: u64,
    /// Uploader's audit actor.
    pub uploaded_by: &'a str,
    /// Note.
    pub note: &'a str,
    /// Original file name.
    pub original_name: &'a str,
}

/// Manifest rows per INSERT (4 parameters each, well under SQLite's 32,766).
const MANIFEST_ROWS_PER_INSERT: usize = 500;

/// Records a ready release and its manifest (inside the caller's transaction).
#[tracing::instrument(skip_all)]
pub async fn insert_ready(
    conn: &mut SqliteConnection,
    r: &NewRelease<'_>,
    format: &str,
    unpacked_bytes: u64,
    files: &[ManifestEntry],
) -> anyhow::Result<i64> {
    let pk = sqlx::query(
        "INSERT INTO releases (site_id, release_id, state, sha256, archive_bytes, unpacked_bytes, files, format, \
         uploaded_by, uploaded_at, note, original_name) VALUES (?, ?, 'ready', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.site_id)
    .bind(r.release_id)
    .bind(r.sha256)
    .bind(r.archive_bytes as i64)
    .bind(unpacked_bytes as i64)
    .bind(files.len() as i64)
    .bind(format)
    .bind(r.uploaded_by)
    .bind(crate::audit::now_text())
    .bind(r.note)
    .bind(r.original_name)
    .execute(&mut *conn)
    .await
    .context("recording a release")?
    .last_insert_rowid();
    // Many rows per statement: one INSERT per file cost ~30 µs each (0.6 s for 20,000 files).
    for chunk in files.chunks(MANIFEST_ROWS_PER_INSERT) {
        let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
            sqlx::QueryBuilder::new("INSERT INTO release_files (release_pk, path, size, sha256) ");
        q.push_values(chunk, |mut row, f| {
            row.push_bind(pk)
                .push_bind(&f.path)
                .push_bind(f.size as i64)
                .push_bind(&f.sha256);
        });
        q.build()
            .execute(&mut *conn)
            .await
            .context("recording a release's manifest")?;
    }
    Ok(pk)
}

/// Records a refused upload (no folder exists for it).
#[tracing::instrument(skip_all)]
pub async fn insert_failed(
    conn: &mut SqliteConnection,
    r: &NewRelease<'_>,
    code: &str,
    message: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO releases (site_id, release_id, state, sha256, archive_bytes, uploaded_by, uploaded_at, note, \
         original_name, failure_code, failure_message) VALUES (?, ?, 'failed', ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(r.site_id)
    .bind(r.release_id)
    .bind(r.sha256)
    .bind(r.archive_bytes as i64)
    .bind(r.uploaded_by)
    .bind(crate::audit::now_text())
    .bind(r.note)
    .bind(r.original_name)
    .bind(code)
    .bind(message)
    .execute(conn)
    .await
    .context("recording a refused upload")?;
    Ok(())
}

/// Pins or unpins.
#[tracing::instrument(skip_all)]
pub async fn set_pinned(conn: &mut SqliteConnection, pk: i64, pinned: bool) -> anyhow::Result<()> {
    sqlx::query("UPDATE releases SET pinned = ? WHERE id = ?")
        .bind(pinned)
        .bind(pk)
        .execute(conn)
        .await
        .context("pinning a release")?;
    Ok(())
}

/// Marks a release deleted (its folder is removed after the commit).
#[tracing::instrument(skip_all)]
pub async fn mark_deleted(conn: &mut SqliteConnection, pk: i64, by: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE releases SET state = 'deleted', deleted_at = ?, deleted_by = ? WHERE id = ?",
    )
    .bind(crate::audit::now_text())
    .bind(by)
    .bind(pk)
    .execute(conn)
    .await
    .context("marking a release deleted")?;
    Ok(())
}

/// Every file of a release, by path.
#[tracing::instrument(skip_all)]
pub async fn manifest(pool: &SqlitePool, pk: i64) -> AppResult<Vec<ManifestEntry>> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT path, size, sha256 FROM release_files WHERE release_pk = ? ORDER BY path",
    )
    .bind(pk)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(entry).collect())
}

/// [`manifest`] of a release named by its site's name and its id (empty for an unknown one):
/// read beside the release itself rather than after it.
#[tracing::instrument(skip_all)]
pub async fn manifest_of(
    pool: &SqlitePool,
    site: &str,
    release_id: &str,
) -> AppResult<Vec<ManifestEntry>> {
    let rows: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT f.path, f.size, f.sha256 FROM release_files f JOIN releases r ON r.id = f.release_pk \
         JOIN sites s ON s.id = r.site_id WHERE s.name = ? AND r.release_id = ? ORDER BY f.path",
    )
    .bind(site)
    .bind(release_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(entry).collect())
}

fn entry((path, size, sha256): (String, i64, String)) -> ManifestEntry {
    ManifestEntry {
        path,
        size: size as u64,
        sha256,
    }
}

pub use super::compare::{compare, Comparison};
