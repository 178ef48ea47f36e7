//! Issue 16, item 3: a checkpoint kept outside the database catches rewrites that leave a
//! consistent chain behind (triggers dropped and restored, hashes and head recomputed).

use std::time::Duration;

use cutover::audit::{self, Event, Outcome};
use sha2::{Digest, Sha256};
use sqlx::SqliteConnection;

use crate::audit_chain::{drop_triggers, restore_triggers};
use crate::helpers::{eventually, run_cli, spawn_app, spawn_app_with, TestApp};

type Row = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
);

/// Rewrites the whole log as `rows`, renumbered and re-chained, the head fixed, the triggers
/// put back: what someone who can write the database can do.
async fn rewrite(conn: &mut SqliteConnection, mut rows: Vec<Row>) {
    let triggers = drop_triggers(conn).await;
    for q in ["DELETE FROM audit_events", "DELETE FROM audit_head"] {
        sqlx::query(q).execute(&mut *conn).await.unwrap();
    }
    let mut prev = audit::GENESIS.to_owned();
    for (i, r) in rows.iter_mut().enumerate() {
        r.0 = i as i64 + 1;
        let bytes = serde_json::to_vec(&(
            r.0, &r.1, &r.2, &r.3, &r.4, &r.5, &r.6, &r.7, &r.8, &r.9, &r.10,
        ))
        .unwrap();
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(&bytes);
        let hash = hex::encode(h.finalize());
        sqlx::query(
            "INSERT INTO audit_events (id, at, actor, ip, user_agent, action, site, release, outcome, \
             detail, request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.0)
        .bind(&r.1)
        .bind(&r.2)
        .bind(&r.3)
        .bind(&r.4)
        .bind(&r.5)
        .bind(&r.6)
        .bind(&r.7)
        .bind(&r.8)
        .bind(&r.9)
        .bind(&r.10)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *conn)
        .await
        .unwrap();
        prev = hash;
    }
    if let Some(last) = rows.last() {
        sqlx::query("INSERT INTO audit_head (singleton, last_id, last_hash) VALUES (1, ?, ?)")
            .bind(last.0)
            .bind(&prev)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    restore_triggers(conn, &triggers).await;
}

async fn poke(app: &TestApp, n: usize) {
    let core = app.core().await;
    for i in 0..n {
        audit::record_alone(
            &core.pool,
            &Event::new("user:alice", "poke", Outcome::Ok).detail(serde_json::json!({"n": i})),
        )
        .await
        .unwrap();
    }
}

fn config_of(app: &TestApp) -> std::path::PathBuf {
    let config = app.dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", app.settings.data_dir)).unwrap();
    config
}

/// Takes a checkpoint with the CLI, applies `change` to the rows, and returns what
/// `audit verify` says without and with the checkpoint.
async fn after_rewrite(change: fn(&mut Vec<Row>)) -> ((bool, String), (bool, String)) {
    let app = spawn_app().await;
    poke(&app, 6).await;
    let config = config_of(&app);
    let (ok, out, err) = run_cli(&config, &["audit", "checkpoint"], None);
    assert!(ok, "{err}");
    let cp = out.trim_end().lines().last().unwrap().to_owned();
    poke(&app, 2).await;
    let (ok, _, err) = run_cli(&config, &["audit", "verify", "--checkpoint", &cp], None);
    assert!(ok, "an untouched log holds its checkpoint: {err}");

    let core = app.core().await;
    let mut conn = core.pool.acquire().await.unwrap();
    let mut rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, ip, user_agent, action, site, release, outcome, detail, request_id \
         FROM audit_events ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    change(&mut rows);
    rewrite(&mut conn, rows).await;
    drop(conn);
    let (ok1, out1, err1) = run_cli(&config, &["audit", "verify"], None);
    let (ok2, _, err2) = run_cli(&config, &["audit", "verify", "--checkpoint", &cp], None);
    ((ok1, out1 + &err1), (ok2, err2))
}

fn caught((plain, with_checkpoint): ((bool, String), (bool, String)), what: &str) {
    println!("{what}: verify alone: {plain:?}; with the checkpoint: {with_checkpoint:?}");
    assert!(!with_checkpoint.0, "{what} passed the checkpoint");
    assert!(
        with_checkpoint.1.contains("checkpoint"),
        "{}",
        with_checkpoint.1
    );
}

#[tokio::test]
async fn a_tail_cut_with_the_head_fixed_is_caught() {
    let r = after_rewrite(|rows| rows.truncate(rows.len() - 5)).await;
    assert!(r.0 .0, "the chain alone cannot see it: {}", r.0 .1);
    caught(r, "tail cut");
}

#[tokio::test]
async fn a_middle_edit_with_the_chain_recomputed_is_caught() {
    let r = after_rewrite(|rows| rows[3].2 = "user:nobody".into()).await;
    assert!(r.0 .0, "the chain alone cannot see it: {}", r.0 .1);
    caught(r, "middle edit");
}

#[tokio::test]
async fn a_wipe_restarted_as_a_new_log_is_caught() {
    let r = after_rewrite(|rows| rows.truncate(1)).await;
    caught(r, "wipe");
}

#[tokio::test]
async fn a_back_dated_insert_is_caught() {
    let r = after_rewrite(|rows| {
        let mut forged = rows[2].clone();
        forged.2 = "user:mallory".into();
        forged.5 = "login".into();
        forged.9 = "{}".into();
        rows.insert(3, forged);
    })
    .await;
    assert!(r.0 .0, "the chain alone cannot see it: {}", r.0 .1);
    caught(r, "back-dated insert");
}

#[tokio::test]
async fn the_console_writes_checkpoints_to_its_file_and_verify_reads_them() {
    let anchor = tempfile::tempdir().unwrap();
    let file = anchor.path().join("checkpoints.log");
    let f = file.clone();
    let app = spawn_app_with(move |s| {
        s.audit.checkpoint_file = Some(f);
        s.audit.checkpoint_interval_seconds = 1;
    })
    .await;
    poke(&app, 3).await;
    let core = app.core().await;
    let head = audit::checkpoint::current(&core.pool)
        .await
        .unwrap()
        .unwrap();
    let line = eventually(
        Duration::from_secs(10),
        "the checkpoint in its file",
        || {
            let (file, head) = (file.clone(), head.to_string());
            async move {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                text.lines().find(|l| l.ends_with(&head)).map(str::to_owned)
            }
        },
    )
    .await;
    assert!(line.starts_with("<86>1 "), "RFC 5424: {line}");
    let config = config_of(&app);
    let path = file.to_str().unwrap();
    let (ok, out, err) = run_cli(
        &config,
        &["audit", "verify", "--checkpoint-file", path],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("checkpoints"), "{out}");
    // The file must be outside the data folder.
    let inside = app.settings.data_dir.join("c.log");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[audit]\ncheckpoint_file = {inside:?}\n",
            app.settings.data_dir
        ),
    )
    .unwrap();
    let (ok, _, err) = run_cli(&config, &["audit", "checkpoint"], None);
    assert!(!ok && err.contains("outside the data folder"), "{err}");
}
