//! A full disk, an Apache that dies on reload, and 20 clients at once.

use std::process::Command;

use serde_json::Value;

use crate::faults::env::Env;

/// A size-limited tmpfs made by the test, unmounted when dropped.
pub(crate) struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    pub(crate) fn mount(at: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a small tmpfs failed (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_the_upload_cleanly() {
    // The sites live on a 12 MB file system; the next release does not fit.
    let probe = tempfile::tempdir().unwrap();
    let small = probe.path().join("small");
    let _disk = SmallDisk::mount(&small, "12m");
    let mut env = Env::new(&format!("sites_root = {:?}", small.join("sites")));
    env.start(None);
    let (status, r) = env.upload("release-A");
    assert_eq!(status, 201, "{r}");
    let a = r["id"].as_str().unwrap().to_owned();
    env.content.insert(a.clone(), "release-A".into());
    let (st, body) = env.activate(&a);
    assert_eq!(st, 200, "{body}");
    // Fill the disk so the next 2 MB release cannot fit.
    let filler = small.join("filler");
    let free = nix::sys::statvfs::statvfs(&small).unwrap();
    let room = free.blocks_available() * free.fragment_size();
    std::fs::write(&filler, vec![0u8; room.saturating_sub(500_000) as usize]).unwrap();

    let (status, r) = env.upload("release-B");
    // 507 Insufficient Storage: the server must be seen to, nothing the uploader sent is wrong.
    assert_eq!(status, 507, "{r}");
    assert_eq!(r["error"]["code"], "disk_full", "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("disk is full"));
    let releases: Vec<String> = std::fs::read_dir(env.site_dir().join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(releases, std::slice::from_ref(&a), "nothing left behind");
    assert_eq!(env.served(), "release-A", "the live site is untouched");
    let failed: Value = env.get("/api/v1/audit?action=upload&outcome=failed");
    assert_eq!(failed["events"][0]["detail"]["code"], "disk_full");

    // Space returns: the database was writable all along, and the next upload works.
    std::fs::remove_file(&filler).unwrap();
    let (status, r) = env.upload("release-C");
    assert_eq!(status, 201, "{r}");
    env.stop();
    let (ok, words) = env.verify();
    assert!(ok, "{words}");
}

#[test]
fn apache_dying_on_reload_is_detected_and_the_previous_release_put_back() {
    let mut env = Env::new("");
    env.start(None);
    let ids = env.two_releases_first_live();
    env.stop();
    // Apache dies right after the graceful reload (the fault point kills it once).
    env.start(Some("after_reload:kill-apache"));
    let before = env.apache_pid().unwrap();
    let (status, r) = env.activate(&ids[1]);
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "apache_died", "{r}");
    assert_eq!(r["rolled_back"], true, "{r}");
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(
        steps.contains(&"Apache still running") && steps.contains(&"automatic rollback"),
        "{steps:?}"
    );
    // Apache runs again (a new process), serving the previous release.
    let after = env.apache_pid().unwrap();
    assert_ne!(before, after);
    assert_eq!(env.served(), "release-A");
    let site: Value = env.get("/api/v1/sites/shop");
    assert_eq!(site["active_release"], ids[0].as_str());
    let auto: Value = env.get("/api/v1/audit?action=auto_rollback");
    assert_eq!(
        auto["events"][0]["outcome"], "ok",
        "the automatic rollback is in the audit log"
    );
    let failed: Value = env.get("/api/v1/audit?action=activate&outcome=failed");
    assert_eq!(failed["events"][0]["detail"]["code"], "apache_died");
    env.stop();
}

#[test]
fn twenty_clients_at_once_never_see_busy_database_errors() {
    let mut env = Env::new("");
    env.start(None);
    let (status, r) = env.upload("release-0");
    assert_eq!(status, 201, "{r}");
    let first = r["id"].as_str().unwrap().to_owned();
    env.content.insert(first.clone(), "release-0".into());
    assert_eq!(env.activate(&first).0, 200);
    let remote = Env::client_for(&env.base, &env.token);
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let (r, first) = (remote.clone(), first.clone());
            std::thread::spawn(move || -> Vec<u16> {
                match i % 4 {
                    0 => (0..2)
                        .map(|k| r.upload(&format!("release-{i}-{k}")).0)
                        .collect(),
                    1 => (0..3).map(|_| r.activate(&first).0).collect(),
                    _ => (0..10)
                        .map(|_| {
                            if r.get("/api/v1/sites/shop/releases").is_array() {
                                200
                            } else {
                                500
                            }
                        })
                        .collect(),
                }
            })
        })
        .collect();
    let statuses: Vec<u16> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    // Uploads succeed (201); switches either succeed or are told "busy" (409) by the site
    // lock — never a database error (500).
    assert!(
        statuses.iter().all(|s| [200, 201, 409].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "every upload recorded"
    );
    let uploads: Value = env.get("/api/v1/audit?action=upload&outcome=ok&limit=100");
    assert_eq!(
        uploads["events"].as_array().unwrap().len(),
        11,
        "nothing lost"
    );
    env.stop();
    let (ok, words) = env.verify();
    assert!(ok, "{words}");
}

#[test]
fn the_cli_and_the_console_never_switch_a_site_at_once() {
    let mut env = Env::new("");
    env.start(None);
    let ids = env.two_releases_first_live();
    env.stop();
    // The console stops in the middle of a switch, holding the site's lock…
    env.start(Some("after_map"));
    let remote = Env::client_for(&env.base, &env.token);
    let b = ids[1].clone();
    let pending = std::thread::spawn(move || remote.activate(&b));
    env.wait_for_marker("after_map");
    // …so the CLI is told the site is busy, and by whom.
    let (ok, out, err) =
        crate::helpers::run_cli(&env.config, &["release", "activate", "shop", &ids[1]], None);
    assert!(!ok, "{out}");
    assert!(
        err.contains("under way") && err.contains("token:cli of ops"),
        "{err}"
    );
    // Once the console is gone (its lock with it), the CLI switches the site itself.
    env.kill();
    let _ = pending.join();
    let (ok, out, err) =
        crate::helpers::run_cli(&env.config, &["release", "activate", "shop", &ids[1]], None);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("health check") && out.contains("is live"),
        "{out}"
    );
    assert_eq!(env.served(), "release-B");
    let (ok, out, err) =
        crate::helpers::run_cli(&env.config, &["release", "rollback", "shop"], None);
    assert!(ok, "{out}{err}");
    assert_eq!(env.served(), "release-A");
}
