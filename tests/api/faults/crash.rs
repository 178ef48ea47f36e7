//! SIGKILL at every injection point, many times over; after each, the invariants hold.

use std::collections::HashSet;

use serde_json::Value;

use crate::faults::env::{configtest, Env};

/// Which action reaches a point.
fn is_upload_point(point: &str) -> bool {
    matches!(
        point,
        "upload_streaming" | "extracting" | "after_extract" | "after_rename" | "during_retention"
    )
}

/// Points reached only when the site's vhost changes (its settings changed since it was
/// written): a plain release switch replaces the live map and leaves the vhost alone.
fn is_vhost_point(point: &str) -> bool {
    matches!(point, "before_vhost" | "after_vhost" | "after_configtest")
}

/// Changes the site's aliases in the database while the console is stopped, as an admin's
/// settings change would, so the next switch rewrites the vhost and reloads.
fn change_settings(db: &std::path::Path, trial: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE sites SET aliases = ? WHERE name = 'shop'")
            .bind(format!("[\"alias-{trial}.example.test\"]"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    })
}

/// Intent rows ("started") with no later outcome for the same action, site and release.
fn open_intents(db: &std::path::Path) -> Vec<(i64, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
        let rows = sqlx::query_as(
            "SELECT s.id, s.action FROM audit_events s WHERE s.outcome = 'started' AND NOT EXISTS \
             (SELECT 1 FROM audit_events o WHERE o.id > s.id AND o.action = s.action AND o.site IS s.site \
              AND o.release IS s.release AND o.outcome != 'started')",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    })
}

/// The index.html a release carries (each upload's is unique).
fn index_of(env: &Env, id: &str) -> String {
    std::fs::read_to_string(env.site_dir().join("releases").join(id).join("index.html")).unwrap()
}

/// Everything that must hold after a crash and a restart. Returns the live release id.
pub(crate) fn check_invariants(env: &mut Env, trial: usize, point: &str) -> String {
    let ctx = format!("trial {trial} ({point})");
    let releases: Value = env.get("/api/v1/sites/shop/releases?limit=1000");
    let ready: HashSet<String> = releases
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| matches!(r["state"].as_str(), Some("ready" | "live" | "previous")))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();

    // `current` resolves to a complete, recorded release.
    let current = std::fs::read_link(env.site_dir().join("current"))
        .unwrap_or_else(|e| panic!("{ctx}: current: {e}"));
    let current_id = current.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        ready.contains(&current_id),
        "{ctx}: current points at {current_id}, not a ready release"
    );
    let detail: Value = env.get(&format!("/api/v1/sites/shop/releases/{current_id}"));
    for f in detail["manifest"].as_array().unwrap() {
        let path = env
            .site_dir()
            .join("releases")
            .join(&current_id)
            .join(f["path"].as_str().unwrap());
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{ctx}: {}: {e}", path.display()))
            .len();
        assert_eq!(
            len,
            f["size"].as_u64().unwrap(),
            "{ctx}: {} complete",
            path.display()
        );
    }

    // The vhost and the live map are wholly one release's, and the whole configuration
    // passes configtest.
    let vhost = std::fs::read_to_string(env.data.join("apache/sites/shop.conf")).unwrap();
    assert!(vhost.contains("RewriteMap cutover"), "{ctx}: {vhost}");
    let map = std::fs::read_to_string(env.site_dir().join("live.map"))
        .unwrap_or_else(|e| panic!("{ctx}: live.map: {e}"));
    let map_lines: Vec<&str> = map.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(map_lines.len(), 1, "{ctx}: {map}");
    let vhost_id = map_lines[0]
        .strip_prefix("live ")
        .unwrap_or_else(|| panic!("{ctx}: {map}"))
        .to_owned();
    assert!(
        ready.contains(&vhost_id),
        "{ctx}: the live map names {vhost_id}, not a ready release"
    );
    let (ok, words) = configtest(&env.data);
    assert!(ok, "{ctx}: configtest: {words}");

    // Apache serves a complete release: the one its configuration names.
    assert_eq!(
        env.served(),
        index_of(env, &vhost_id),
        "{ctx}: Apache serves {vhost_id}"
    );

    // The records agree with the disk, or a drift banner says they do not.
    let site: Value = env.get("/api/v1/sites/shop");
    let live = site["active_release"].as_str().unwrap().to_owned();
    if live != current_id || live != vhost_id {
        assert!(
            site["drift"].is_string(),
            "{ctx}: records say {live}, disk says {current_id}/{vhost_id}, and no drift banner"
        );
        let drift: Value = env.get("/api/v1/audit?action=drift&limit=1");
        assert_eq!(drift["events"][0]["site"], "shop", "{ctx}: drift event");
    }

    // No partial or unrecorded release on disk; every recorded one is there.
    let on_disk: HashSet<String> = std::fs::read_dir(env.site_dir().join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        on_disk, ready,
        "{ctx}: releases on disk = ready releases in the records"
    );
    let leftovers: Vec<String> = std::fs::read_dir(env.site_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".current-tmp") || n.starts_with(".live-map-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{ctx}: {leftovers:?}");

    // Every intent has an outcome (interrupted ones were marked at start-up).
    let open = open_intents(&env.data.join("cutover.db"));
    assert!(
        open.is_empty(),
        "{ctx}: intents without an outcome: {open:?}"
    );
    let (ok, words) = env.verify();
    assert!(ok, "{ctx}: audit verify: {words}");

    // No lock is stuck: putting the recorded release live again works (and clears drift).
    let (status, body) = env.activate(&live);
    assert_eq!(status, 200, "{ctx}: activation after restart: {body}");
    assert_eq!(env.served(), index_of(env, &live), "{ctx}");
    live
}

#[test]
fn sigkill_at_every_point_leaves_a_whole_site_and_true_records() {
    let mut env = Env::new("");
    env.start(None);
    let mut first = String::new();
    for name in ["release-A", "release-B"] {
        let (status, r) = env.upload(name);
        assert_eq!(status, 201, "{r}");
        first = r["id"].as_str().unwrap().to_owned();
        env.content.insert(first.clone(), name.to_owned());
    }
    // With one release kept, only the newest survived retention: put it live.
    assert_eq!(env.activate(&first).0, 200);
    env.stop();

    let points = cutover::fault::POINTS;
    let trials = points.len() * 5;
    let mut per_point = std::collections::BTreeMap::new();
    for trial in 0..trials {
        let point = points[trial % points.len()];
        if is_vhost_point(point) {
            change_settings(&env.data.join("cutover.db"), trial);
        }
        env.start(Some(point));
        let marker_env = (env.base.clone(), env.token.clone());
        let action = if is_upload_point(point) {
            let name = format!("release-{trial}");
            let (base, token) = marker_env;
            let bytes_name = name.clone();
            let handle = {
                let env_ref = Env::client_for(&base, &token);
                std::thread::spawn(move || {
                    // Retention only runs into the point when an older release can go:
                    // a second upload makes sure one can (the first may already stop there).
                    let first = env_ref.upload(&bytes_name);
                    if point == "during_retention" && first.0 == 201 {
                        return env_ref.upload(&format!("{bytes_name}-2"));
                    }
                    first
                })
            };
            handle
        } else {
            let live: Value = env.get("/api/v1/sites/shop");
            let live = live["active_release"].as_str().unwrap().to_owned();
            let list: Value = env.get("/api/v1/sites/shop/releases?limit=1000");
            let other = list
                .as_array()
                .unwrap()
                .iter()
                .find(|r| {
                    matches!(r["state"].as_str(), Some("ready" | "previous"))
                        && r["id"] != live.as_str()
                })
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .expect("a ready release to switch to");
            let (base, token) = marker_env;
            let env_ref = Env::client_for(&base, &token);
            std::thread::spawn(move || env_ref.activate(&other))
        };
        env.wait_for_marker(point);
        env.kill();
        let _ = action.join();
        env.start(None);
        check_invariants(&mut env, trial, point);
        env.stop();
        *per_point.entry(point).or_insert(0) += 1;
    }
    println!("{trials} SIGKILL trials, per injection point: {per_point:?}");
}
