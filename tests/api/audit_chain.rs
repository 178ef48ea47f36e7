//! The audit log: what is recorded, and that tampering is detected.

use cutover::audit::{self, Event, Outcome, Verification};
use cutover::auth::Role;
use sqlx::SqlitePool;

use crate::helpers::{run_cli, spawn_app};

async fn actions(pool: &SqlitePool) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT actor, action, outcome FROM audit_events ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn account_events_are_recorded_exactly_once() {
    let app = spawn_app().await;
    let pw = app.add_user("lee", Role::Viewer).await;
    let core = app.core().await;
    let before = actions(&core.pool).await.len();
    let b = app.browser();
    assert_eq!(b.login("lee", "definitely wrong pw").await.status(), 401);
    assert_eq!(b.login("lee", &pw).await.status(), 303);
    assert_eq!(b.get("/admin/users").await.status(), 403);
    assert_eq!(
        b.post("/account/tokens", &[("label", "t1")]).await.status(),
        201
    );
    assert_eq!(b.post("/logout", &[]).await.status(), 303);
    let got: Vec<_> = actions(&core.pool).await.into_iter().skip(before).collect();
    let expected = [
        ("anonymous", "login", "failed"),
        ("user:lee", "login", "ok"),
        ("user:lee", "access_denied", "denied"),
        ("user:lee", "token_create", "ok"),
        ("user:lee", "logout", "ok"),
    ];
    let got_ref: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(got_ref, expected);
    // Source and request id are there.
    let (ip, ua, rid): (Option<String>, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT ip, user_agent, request_id FROM audit_events WHERE action = 'logout'",
    )
    .fetch_one(&core.pool)
    .await
    .unwrap();
    assert_eq!(ip.as_deref(), Some("127.0.0.1"));
    assert!(ua.is_some() || rid.is_some());
    assert!(rid.is_some());
}

#[tokio::test]
async fn the_table_refuses_updates_and_deletes() {
    let app = spawn_app().await;
    let core = app.core().await;
    assert!(sqlx::query("UPDATE audit_events SET actor = 'x'")
        .execute(&core.pool)
        .await
        .is_err());
    assert!(sqlx::query("DELETE FROM audit_events")
        .execute(&core.pool)
        .await
        .is_err());
}

/// Drops the append-only triggers, returning their SQL. Tampering runs on one connection: a
/// second one may hold a stale schema, where the dropped triggers still exist.
pub(crate) async fn drop_triggers(pool: &mut sqlx::SqliteConnection) -> Vec<(String, String)> {
    let triggers: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'",
    )
    .fetch_all(&mut *pool)
    .await
    .unwrap();
    for (name, _) in &triggers {
        sqlx::query(&format!("DROP TRIGGER {name}"))
            .execute(&mut *pool)
            .await
            .unwrap();
    }
    triggers
}

/// Creates the triggers again from their SQL.
pub(crate) async fn restore_triggers(
    pool: &mut sqlx::SqliteConnection,
    triggers: &[(String, String)],
) {
    for (_, sql) in triggers {
        sqlx::query(sql).execute(&mut *pool).await.unwrap();
    }
}

async fn tampered(f: &str) -> Verification {
    let app = spawn_app().await;
    let core = app.core().await;
    for i in 0..5 {
        audit::record_alone(
            &core.pool,
            &Event::new("test", "poke", Outcome::Ok).detail(serde_json::json!({"n": i})),
        )
        .await
        .unwrap();
    }
    assert!(matches!(
        audit::verify(&core.pool).await.unwrap(),
        Verification::Intact { .. }
    ));
    let mut conn = core.pool.acquire().await.unwrap();
    let triggers = drop_triggers(&mut conn).await;
    for stmt in f.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(stmt).execute(&mut *conn).await.unwrap();
    }
    // A careful attacker puts the triggers back: only the chain can tell.
    restore_triggers(&mut conn, &triggers).await;
    drop(conn);
    let verdict = audit::verify(&core.pool).await.unwrap();
    // The CLI says the same, with a non-zero exit.
    let config = app.dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", app.settings.data_dir)).unwrap();
    let (ok, _, err) = run_cli(&config, &["audit", "verify"], None);
    assert!(!ok, "verify must fail on a tampered log");
    assert!(err.contains("broken at event"), "{err}");
    verdict
}

#[tokio::test]
async fn editing_a_row_is_detected() {
    let v = tampered("UPDATE audit_events SET detail = '{\"n\":99}' WHERE id = 3").await;
    assert!(matches!(v, Verification::Broken { at_id: 3, .. }), "{v:?}");
}

#[tokio::test]
async fn deleting_a_row_is_detected() {
    let v = tampered("DELETE FROM audit_events WHERE id = 3").await;
    assert!(matches!(v, Verification::Broken { at_id: 4, .. }), "{v:?}");
}

#[tokio::test]
async fn reordering_is_detected() {
    let v = tampered(
        "UPDATE audit_events SET id = -1 WHERE id = 3; UPDATE audit_events SET id = 3 WHERE id = 4; \
         UPDATE audit_events SET id = 4 WHERE id = -1",
    )
    .await;
    assert!(matches!(v, Verification::Broken { at_id: 3, .. }), "{v:?}");
}

#[tokio::test]
async fn cutting_off_the_end_is_detected() {
    let v = tampered("DELETE FROM audit_events WHERE id >= (SELECT MAX(id) - 1 FROM audit_events)")
        .await;
    assert!(matches!(v, Verification::Broken { .. }), "{v:?}");
}

#[tokio::test]
async fn dropped_triggers_and_an_empty_log_are_not_intact() {
    let app = spawn_app().await;
    let core = app.core().await;
    let mut conn = core.pool.acquire().await.unwrap();
    let triggers = drop_triggers(&mut conn).await;
    let v = audit::verify(&core.pool).await.unwrap();
    assert!(
        matches!(&v, Verification::Broken { reason, .. } if reason.contains("append-only")),
        "{v:?}"
    );
    for wipe in ["DELETE FROM audit_events", "DELETE FROM audit_head"] {
        sqlx::query(wipe).execute(&mut *conn).await.unwrap();
    }
    restore_triggers(&mut conn, &triggers).await;
    drop(conn);
    let v = audit::verify(&core.pool).await.unwrap();
    assert!(
        matches!(&v, Verification::Broken { reason, .. } if reason.contains("wiped")),
        "{v:?}"
    );
}

#[tokio::test]
async fn verify_passes_on_an_untouched_log() {
    let app = spawn_app().await;
    let config = app.dir.path().join("c.toml");
    std::fs::write(&config, format!("data_dir = {:?}\n", app.settings.data_dir)).unwrap();
    let (ok, out, err) = run_cli(&config, &["audit", "verify"], None);
    assert!(ok, "{err}");
    assert!(out.starts_with("audit log intact, "), "{out}");
}

#[tokio::test]
async fn verify_is_not_fooled_by_events_written_while_it_runs() {
    let app = spawn_app().await;
    let core = app.core().await;
    for i in 0..2000 {
        audit::record_alone(
            &core.pool,
            &Event::new("test", "fill", Outcome::Ok).detail(serde_json::json!({"i": i})),
        )
        .await
        .unwrap();
    }
    let writer = {
        let pool = core.pool.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                audit::record_alone(
                    &pool,
                    &Event::new("test", "busy", Outcome::Ok).detail(serde_json::json!({"i": i})),
                )
                .await
                .unwrap();
            }
        })
    };
    for _ in 0..5 {
        let v = audit::verify(&core.pool).await.unwrap();
        assert!(matches!(v, Verification::Intact { .. }), "{v:?}");
    }
    writer.await.unwrap();
}
