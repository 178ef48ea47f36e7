//! Sites in the database: create, change (audited with before and after), read.

use anyhow::Context;
use serde_json::{json, Map, Value};
use sqlx::{FromRow, SqliteConnection, SqlitePool};

use super::{Settings, Site, SitePaths, SwitchMode};
use crate::audit::{self, Event, Outcome, Source};
use crate::db;
use crate::error::code;
use crate::error::{AppError, AppResult};

#[derive(FromRow)]
struct Row {
    id: i64,
    name: String,
    server_name: String,
    aliases: String,
    keep_releases: i64,
    switch_mode: String,
    health_path: String,
    shared_paths: String,
    reload_always: bool,
    config: String,
    active_release: Option<String>,
    created_at: String,
    drift: Option<String>,
}

impl TryFrom<Row> for Site {
    type Error = anyhow::Error;
    fn try_from(r: Row) -> anyhow::Result<Site> {
        Ok(Site {
            id: r.id,
            name: r.name,
            settings: Settings {
                server_name: r.server_name,
                aliases: serde_json::from_str(&r.aliases).context("site aliases")?,
                keep_releases: r.keep_releases as u32,
                switch_mode: r
                    .switch_mode
                    .parse::<SwitchMode>()
                    .map_err(anyhow::Error::msg)?,
                health_path: r.health_path,
                shared_paths: serde_json::from_str(&r.shared_paths).context("site shared paths")?,
                reload_always: r.reload_always,
                config: serde_json::from_str(&r.config).context("site config")?,
            },
            active_release: r.active_release,
            created_at: r.created_at,
            drift: r.drift,
        })
    }
}

/// All sites, by name.
#[tracing::instrument(skip_all)]
pub async fn list(pool: &SqlitePool) -> AppResult<Vec<Site>> {
    let rows: Vec<Row> = sqlx::query_as("SELECT * FROM sites ORDER BY name")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(Site::try_from)
        .collect::<anyhow::Result<_>>()?)
}

/// One site, or a 404 that says so.
#[tracing::instrument(skip_all)]
pub async fn get(pool: &SqlitePool, name: &str) -> AppResult<Site> {
    let row: Option<Row> = sqlx::query_as("SELECT * FROM sites WHERE name = ?")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    match row {
        Some(r) => Ok(Site::try_from(r)?),
        None => Err(AppError::NotFound(format!(
            "There is no site named {}.",
            name.chars().take(60).collect::<String>()
        ))),
    }
}

/// The settings as an audit detail object.
fn settings_json(s: &Settings) -> Value {
    serde_json::to_value(s).expect("settings serialise")
}

/// Refuses host names another site already answers to: Apache would send them to whichever
/// vhost comes first, and one site's releases would show up under the other's name.
async fn check_hosts_free(
    conn: &mut SqliteConnection,
    except: Option<i64>,
    settings: &Settings,
) -> AppResult<()> {
    let others: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, name, server_name, aliases FROM sites")
            .fetch_all(&mut *conn)
            .await?;
    let mine: Vec<&String> = std::iter::once(&settings.server_name)
        .chain(&settings.aliases)
        .collect();
    for (id, name, server, aliases) in others {
        if Some(id) == except {
            continue;
        }
        let aliases: Vec<String> = serde_json::from_str(&aliases).unwrap_or_default();
        if let Some(taken) = mine.iter().find(|h| ***h == server || aliases.contains(h)) {
            return Err(AppError::Conflict {
                code: code::HOST_IN_USE,
                message: format!("{taken} is already an address of the site {name}: each address can belong to one site only."),
            });
        }
    }
    Ok(())
}

/// Refuses (409) host names of `settings` that another site than `site_id` answers to.
pub async fn check_hosts(pool: &SqlitePool, site_id: i64, settings: &Settings) -> AppResult<()> {
    let mut conn = pool.acquire().await?;
    check_hosts_free(&mut conn, Some(site_id), settings).await
}

/// Creates a site: folders first (idempotent), then the row and its audit event together.
#[tracing::instrument(skip_all)]
pub async fn create(
    pool: &SqlitePool,
    sites_root: &std::path::Path,
    actor: &str,
    source: &Source,
    name: &str,
    settings: &Settings,
) -> AppResult<Site> {
    let paths = SitePaths::new(sites_root, name);
    let mut tx = db::begin_write(pool).await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM sites WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        check_hosts_free(&mut tx, None, settings).await?;
    }
    if exists.is_some() {
        return Err(AppError::Conflict {
            code: code::SITE_EXISTS,
            message: format!("A site named {name} already exists. Pick another name."),
        });
    }
    paths.create(&settings.shared_paths).with_context(|| {
        format!(
            "creating the folders of site {name} under {}",
            sites_root.display()
        )
    })?;
    let now = audit::now_text();
    sqlx::query(
        "INSERT INTO sites (name, server_name, aliases, keep_releases, switch_mode, health_path, shared_paths, \
         reload_always, config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(name)
    .bind(&settings.server_name)
    .bind(json!(settings.aliases).to_string())
    .bind(settings.keep_releases)
    .bind(settings.switch_mode.as_str())
    .bind(&settings.health_path)
    .bind(json!(settings.shared_paths).to_string())
    .bind(settings.reload_always)
    .bind(json!(settings.config).to_string())
    .bind(&now)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &Event::new(actor, "site_create", Outcome::Ok)
            .source(source)
            .site(name)
            .detail(json!({"settings": settings_json(settings)})),
    )
    .await?;
    tx.commit().await?;
    get(pool, name).await
}

/// Changes a site's settings; the audit event lists each changed setting's before and after.
#[tracing::instrument(skip_all)]
pub async fn update(
    pool: &SqlitePool,
    sites_root: &std::path::Path,
    actor: &str,
    source: &Source,
    site: &Site,
    new: &Settings,
) -> AppResult<Site> {
    let (before, after) = (settings_json(&site.settings), settings_json(new));
    let mut changes = Map::new();
    for (key, old) in before.as_object().expect("object") {
        let value = &after[key];
        if value != old {
            changes.insert(key.clone(), json!({"from": old, "to": value}));
        }
    }
    if changes.is_empty() {
        return Ok(site.clone());
    }
    SitePaths::new(sites_root, &site.name)
        .create(&new.shared_paths)
        .context("creating shared folders")?;
    let mut tx = db::begin_write(pool).await?;
    check_hosts_free(&mut tx, Some(site.id), new).await?;
    sqlx::query(
        "UPDATE sites SET server_name = ?, aliases = ?, keep_releases = ?, switch_mode = ?, health_path = ?, \
         shared_paths = ?, reload_always = ?, config = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&new.server_name)
    .bind(json!(new.aliases).to_string())
    .bind(new.keep_releases)
    .bind(new.switch_mode.as_str())
    .bind(&new.health_path)
    .bind(json!(new.shared_paths).to_string())
    .bind(new.reload_always)
    .bind(json!(new.config).to_string())
    .bind(audit::now_text())
    .bind(site.id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &Event::new(actor, "site_update", Outcome::Ok)
            .source(source)
            .site(&site.name)
            .detail(json!({"changes": changes})),
    )
    .await?;
    tx.commit().await?;
    get(pool, &site.name).await
}

/// Sets the live release of a site (inside the caller's transaction).
#[tracing::instrument(skip_all)]
pub async fn set_active(
    conn: &mut SqliteConnection,
    site_id: i64,
    release: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE sites SET active_release = ?, drift = NULL WHERE id = ?")
        .bind(release)
        .bind(site_id)
        .execute(conn)
        .await
        .context("recording the live release")?;
    Ok(())
}

/// Records (or clears) what start-up reconciliation found wrong with the site.
#[tracing::instrument(skip_all)]
pub async fn set_drift(pool: &SqlitePool, site_id: i64, drift: Option<&str>) -> AppResult<()> {
    sqlx::query("UPDATE sites SET drift = ? WHERE id = ?")
        .bind(drift)
        .bind(site_id)
        .execute(pool)
        .await?;
    Ok(())
}
