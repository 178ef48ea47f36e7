//! A site on three hosts, each a private sshd and Apache on 127.0.0.1 (see
//! `tests/support/fleet.rs`): releases staged over OpenSSH and rsync, switched all or none,
//! put back everywhere when one host fails, refused when a host hangs or its key changed.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{eventually, spawn_app_with, TestApp};
use crate::support::fleet::TestHost;

pub(crate) const SITE: &str = "shop";
pub(crate) const NAME: &str = "shop.example.test";

pub(crate) struct Fleet {
    pub(crate) app: TestApp,
    pub(crate) hosts: Vec<TestHost>,
    pub(crate) token: String,
}

/// The console, `n` hosts, and the site on them (keys confirmed with their fingerprints).
pub(crate) async fn fleet(n: usize, switch: &str) -> Fleet {
    // Generous: the whole suite shares two cores, and a slow answer must not read as a hang.
    fleet_with(n, switch, 20).await
}

/// [`fleet`] with every remote operation limited to `timeout` seconds.
pub(crate) async fn fleet_with(n: usize, switch: &str, timeout: u64) -> Fleet {
    let site = json!({"name": SITE, "server_name": NAME, "switch": switch});
    fleet_of(n, site, timeout, false).await
}

/// `n` hosts for the site made from `site` (its creation body); with `php`, each host has its
/// own PHP-FPM and says so.
pub(crate) async fn fleet_of(n: usize, site: Value, timeout: u64, php: bool) -> Fleet {
    let app = spawn_app_with(|s| {
        s.hosts.timeout_seconds = timeout;
        s.apache.health_timeout_seconds = 5;
    })
    .await;
    // The hosts' Apache workers (www-data when we are root) must pass through the test's folder.
    std::fs::set_permissions(
        app.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let token = app.admin_token().await;
    let (status, key) = app
        .api_send(Method::GET, "/api/v1/ssh-key", &token, None)
        .await;
    assert_eq!(status, 200, "{key}");
    let line = key["authorized_keys"].as_str().unwrap();
    assert!(line.starts_with("restrict ssh-ed25519 "), "{line}");
    let public = key["public_key"].as_str().unwrap().to_owned();
    let hosts: Vec<TestHost> = (1..=n)
        .map(|i| {
            let mut h = TestHost::start(&app.dir.path().join("hosts"), &format!("web{i}"));
            if php {
                h.start_php();
            }
            h.authorize(&public);
            h
        })
        .collect();
    app.create_site(&token, site).await;
    let f = Fleet { app, hosts, token };
    for h in &f.hosts {
        let mut body = h.input(SITE);
        body["fingerprint"] = json!(h.fingerprint());
        if php {
            body["php"] = h.php_input();
        }
        let (status, added) = f
            .send(
                Method::POST,
                &format!("/api/v1/sites/{SITE}/hosts"),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{added}");
        assert_eq!(added["confirmed"], true, "{added}");
    }
    f
}

impl Fleet {
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.app.api_send(method, path, &self.token, body).await
    }

    /// Uploads a release of `files`; its id.
    pub(crate) async fn release(&self, files: &[(&str, &[u8])]) -> String {
        let res = self
            .app
            .upload(&self.token, SITE, "r.tgz", targz(files), "")
            .await;
        assert_eq!(res.status(), 201);
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Release "one" live on every host and release "two" uploaded: their ids.
    pub(crate) async fn live_and_next(&self) -> (String, String) {
        let r1 = self.release(&[("index.html", b"one")]).await;
        assert_eq!(self.activate(&r1).await["ok"], true);
        let r2 = self.release(&[("index.html", b"two")]).await;
        (r1, r2)
    }

    pub(crate) async fn activate(&self, id: &str) -> Value {
        let (_, body) = self.app.activate(&self.token, SITE, id).await;
        body
    }

    /// What each host's Apache answers for `/` (status and body).
    pub(crate) async fn served(&self) -> Vec<(u16, String)> {
        let mut all = Vec::new();
        for h in &self.hosts {
            all.push(get(h, "/").await);
        }
        all
    }

    /// Goes live with `id`, which must succeed and then answer `body` on every host.
    pub(crate) async fn goes_live(&self, id: &str, body: &str) {
        let report = self.activate(id).await;
        assert_eq!(report["ok"], true, "{report}");
        self.all_serve(id, body).await;
    }

    /// Every host answers `body` and has `current` → `id`.
    pub(crate) async fn all_serve(&self, id: &str, body: &str) {
        for (h, (status, got)) in self.hosts.iter().zip(self.served().await) {
            assert_eq!((status, got.as_str()), (200, body), "host {}", h.name);
            assert_eq!(h.current(SITE).as_deref(), Some(id), "host {}", h.name);
        }
    }
}

pub(crate) async fn get(h: &TestHost, path: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}{path}", h.http_port))
        .header("Host", NAME)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    match res {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

pub(crate) fn steps(report: &Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn three_hosts_go_live_together_and_roll_back_together() {
    let f = fleet(3, "pinned").await;
    let r1 = f.release(&[("index.html", b"one")]).await;
    let report = f.activate(&r1).await;
    assert_eq!(report["ok"], true, "{report}");
    let names = steps(&report);
    for h in ["web1", "web2", "web3"] {
        for step in ["switch", "health check", "configtest"] {
            assert!(
                names.contains(&format!("{h}: {step}")),
                "{h}: {step} in {names:?}"
            );
        }
    }
    f.all_serve(&r1, "one").await;
    let r2 = f.release(&[("index.html", b"two")]).await;
    let report = f.activate(&r2).await;
    assert_eq!(report["ok"], true, "{report}");
    f.all_serve(&r2, "two").await;
    // A plain release switch leaves every host's configuration as it is: no reload anywhere.
    assert!(
        !steps(&report)
            .iter()
            .any(|s| s.ends_with("graceful reload")),
        "{report}"
    );
    let (status, back) = f
        .send(
            Method::POST,
            &format!("/api/v1/sites/{SITE}/rollback"),
            None,
        )
        .await;
    assert_eq!((status, &back["ok"]), (200, &json!(true)), "{back}");
    f.all_serve(&r1, "one").await;
    let (_, listed) = f
        .send(Method::GET, &format!("/api/v1/sites/{SITE}/hosts"), None)
        .await;
    for h in listed["hosts"].as_array().unwrap() {
        assert_eq!(h["serving"], json!(r1), "{listed}");
        assert!(h["drift"].is_null(), "{listed}");
    }
    let (_, release) = f
        .send(
            Method::GET,
            &format!("/api/v1/sites/{SITE}/releases/{r2}"),
            None,
        )
        .await;
    let staged: Vec<&str> = release["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(staged, ["staged"; 3], "{release}");
    // Dozens of commands and two copies ran on each host over one shared connection.
    // (A master the host refuses shared sessions to would make every command a login.)
    for h in &f.hosts {
        let logins = h.logins();
        assert!((1..=2).contains(&logins), "{}: {logins} logins", h.name);
    }
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_configtest_refused_on_one_host_switches_none() {
    let f = fleet(3, "pinned").await;
    let vhost = |h: &TestHost| {
        std::fs::read_to_string(
            h.root
                .join(format!("apache/sites-enabled/cutover-{SITE}.conf")),
        )
        .ok()
    };
    // web2's Apache refuses any configuration now.
    let broken = f.hosts[1].root.join("apache/conf-enabled/broken.conf");
    std::fs::write(&broken, "ThisIsNotADirective on\n").unwrap();
    let r1 = f.release(&[("index.html", b"one")]).await;
    let report = f.activate(&r1).await;
    assert_eq!(
        (&report["ok"], &report["code"]),
        (&json!(false), &json!("configtest_failed")),
        "{report}"
    );
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("web2") && message.contains("Nothing was switched on any host"),
        "{message}"
    );
    for h in &f.hosts {
        assert_eq!(h.current(SITE), None, "host {} was not switched", h.name);
        assert_eq!(vhost(h), None, "host {}: no vhost left behind", h.name);
    }
    std::fs::remove_file(&broken).unwrap();
    assert_eq!(f.activate(&r1).await["ok"], true);
    f.all_serve(&r1, "one").await;
    // A settings change on the live site rewrites every vhost: refused on web2, kept nowhere.
    std::fs::write(&broken, "ThisIsNotADirective on\n").unwrap();
    let before: Vec<_> = f.hosts.iter().map(vhost).collect();
    let (status, body) = f
        .app
        .patch_site(
            &f.token,
            SITE,
            json!({"aliases": ["www.shop.example.test"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("web2"),
        "{body}"
    );
    let after: Vec<_> = f.hosts.iter().map(vhost).collect();
    assert_eq!(before, after, "every host has its old vhost back");
    let (_, site) = f
        .send(Method::GET, &format!("/api/v1/sites/{SITE}"), None)
        .await;
    assert_eq!(site["aliases"], json!([]), "the settings were not stored");
    f.all_serve(&r1, "one").await;
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_failed_health_check_on_one_host_puts_every_host_back() {
    let mut f = fleet(3, "pinned").await;
    let (r1, r2) = f.live_and_next().await;
    f.hosts[2].stop_apache();
    let report = f.activate(&r2).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["code"], "health_check_failed", "{report}");
    assert_eq!(report["rolled_back"], true, "{report}");
    assert!(
        report["message"].as_str().unwrap().contains("web3"),
        "{report}"
    );
    for h in &f.hosts {
        assert_eq!(
            h.current(SITE).as_deref(),
            Some(r1.as_str()),
            "host {} is back on {r1}",
            h.name
        );
    }
    for (h, (status, body)) in f.hosts.iter().zip(f.served().await).take(2) {
        assert_eq!((status, body.as_str()), (200, "one"), "host {}", h.name);
    }
    let (_, site) = f
        .send(Method::GET, &format!("/api/v1/sites/{SITE}"), None)
        .await;
    assert_eq!(site["active_release"], json!(r1));
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_hung_host_is_refused_within_the_time_out_and_nothing_switches() {
    let f = fleet_with(3, "pinned", 5).await;
    let (r1, r2) = f.live_and_next().await;
    f.hosts[1].hang();
    let report = f.activate(&r2).await;
    f.hosts[1].resume();
    assert_eq!(report["ok"], false, "{report}");
    let message = report["message"].as_str().unwrap();
    assert!(message.contains("Nothing was switched"), "{message}");
    let web2 = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "web2: release staged");
    let detail = web2
        .map(|s| s["detail"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        detail.contains("did not answer within 5 s"),
        "web2 timed out: {report}"
    );
    f.all_serve(&r1, "one").await;
    // Once the host answers again, the next go-live works.
    f.goes_live(&r2, "two").await;
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_changed_host_key_is_refused_and_named() {
    let mut f = fleet(2, "pinned").await;
    let (r1, r2) = f.live_and_next().await;
    f.hosts[0].stop_sshd();
    f.hosts[0].new_host_key();
    f.hosts[0].start_sshd();
    let report = f.activate(&r2).await;
    assert_eq!(report["ok"], false, "{report}");
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("web1") && message.contains("host key") && message.contains("changed"),
        "{message}"
    );
    f.all_serve(&r1, "one").await;
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_host_added_to_a_live_site_is_staged_and_brought_to_the_live_release() {
    let f = fleet(2, "pinned").await;
    let r1 = f.release(&[("index.html", b"one")]).await;
    assert_eq!(f.activate(&r1).await["ok"], true);
    let public = f.send(Method::GET, "/api/v1/ssh-key", None).await.1["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let third = TestHost::start(&f.app.dir.path().join("hosts"), "web3");
    third.authorize(&public);
    // Added without its fingerprint: shown, not trusted; nothing runs on it until confirmed.
    let (status, added) = f
        .send(
            Method::POST,
            &format!("/api/v1/sites/{SITE}/hosts"),
            Some(third.input(SITE)),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        (&added["confirmed"], &added["fingerprint"]),
        (&json!(false), &json!(third.fingerprint())),
        "{added}"
    );
    assert_ne!(
        get(&third, "/").await.0,
        200,
        "not serving the site before it is confirmed"
    );
    let path = format!("/api/v1/sites/{SITE}/hosts/web3/confirm");
    let (status, wrong) = f
        .send(
            Method::POST,
            &path,
            Some(json!({"fingerprint": "SHA256:nope"})),
        )
        .await;
    assert_eq!(
        (status, wrong["error"]["code"].as_str()),
        (422, Some("host_key_mismatch")),
        "{wrong}"
    );
    let (status, confirmed) = f
        .send(
            Method::POST,
            &path,
            Some(json!({"fingerprint": third.fingerprint()})),
        )
        .await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["serving_live"], true, "{confirmed}");
    assert_eq!(get(&third, "/").await, (200, "one".into()));
    assert_eq!(third.current(SITE).as_deref(), Some(r1.as_str()));
    let r2 = f.release(&[("index.html", b"two")]).await;
    assert_eq!(f.activate(&r2).await["ok"], true);
    assert_eq!(get(&third, "/").await, (200, "two".into()));
    let (status, _) = f
        .send(
            Method::DELETE,
            &format!("/api/v1/sites/{SITE}/hosts/web3"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(
        get(&third, "/").await.0,
        200,
        "the site was taken off the removed host"
    );
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_second_release_that_changes_one_percent_sends_only_those_files() {
    let f = fleet(2, "pinned").await;
    let names: Vec<String> = (0..2000).map(|i| format!("files/f{i:04}.txt")).collect();
    let first: Vec<Vec<u8>> = (0..2000)
        .map(|i| format!("file {i} of the first release").into_bytes())
        .collect();
    let mut second = first.clone();
    for i in (0..2000).step_by(100) {
        second[i] = format!("file {i}, changed in the second").into_bytes();
    }
    // The first has a folder and a file the second has not; the second a new folder.
    let files = |contents: &[Vec<u8>], extra: (&str, &[u8])| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = names
            .iter()
            .cloned()
            .zip(contents.iter().cloned())
            .filter(|(n, _)| extra.0 != "new/page.txt" || n != "files/f1999.txt")
            .collect();
        v.push(("index.html".into(), b"many".to_vec()));
        v.push((extra.0.into(), extra.1.to_vec()));
        v
    };
    let fr = &f;
    let upload = |contents: Vec<(String, Vec<u8>)>| async move {
        let refs: Vec<(&str, &[u8])> = contents
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        fr.release(&refs).await
    };
    let r1 = upload(files(&first, ("old/deep/gone.txt", b"old"))).await;
    assert_eq!(f.activate(&r1).await["ok"], true);
    // Something on the first host wrote into its copy of r1, and removed a file from it (and
    // from the seed made of it for the next copy): the list of changes cannot know.
    let releases = f.hosts[0].site_dir(SITE).join("releases");
    let seed = releases.join(format!(".seed-{r1}"));
    eventually(Duration::from_secs(30), "r1's seed made", || async {
        seed.is_dir().then_some(())
    })
    .await;
    for copy in [releases.join(&r1), seed] {
        std::fs::write(copy.join("files/stray.txt"), "written on the host").unwrap();
        std::fs::remove_file(copy.join("files/f0102.txt")).unwrap();
    }
    let r2 = upload(files(&second, ("new/page.txt", b"new page"))).await;
    let staged = eventually(
        Duration::from_secs(60),
        "r2 staged on both hosts",
        || async {
            let (_, r) = f
                .send(
                    Method::GET,
                    &format!("/api/v1/sites/{SITE}/releases/{r2}?manifest=false"),
                    None,
                )
                .await;
            let hosts = r["hosts"].as_array()?.clone();
            (hosts.len() == 2 && hosts.iter().all(|h| h["state"] == "staged")).then_some(hosts)
        },
    )
    .await;
    for h in &staged {
        let sent = h["files_sent"].as_i64().unwrap();
        if h["host"] == f.hosts[0].name.as_str() {
            // Found by the check, then the whole tree compared: a few more, still not all.
            assert!((21..=100).contains(&sent), "{h}");
        } else {
            assert_eq!(
                sent, 21,
                "only the 20 changed files and the new one travel: {h}"
            );
        }
    }
    assert_eq!(f.activate(&r2).await["ok"], true);
    for h in &f.hosts {
        assert_eq!(
            get(h, "/files/f0100.txt").await.1,
            "file 100, changed in the second"
        );
        assert_eq!(
            get(h, "/files/f0101.txt").await.1,
            "file 101 of the first release"
        );
        assert_eq!(
            get(h, "/files/f0102.txt").await.1,
            "file 102 of the first release",
            "a file the seed lacked was sent"
        );
        assert_eq!(get(h, "/new/page.txt").await.1, "new page");
        assert_eq!(get(h, "/files/f1999.txt").await.0, 404, "deleted file");
        assert_eq!(get(h, "/old/deep/gone.txt").await.0, 404, "deleted file");
        let r2_dir = h.site_dir(SITE).join(format!("releases/{r2}"));
        assert!(!r2_dir.join("old").exists(), "its emptied folder went too");
        assert!(
            h.site_dir(SITE)
                .join(format!("releases/{r1}/old/deep/gone.txt"))
                .is_file(),
            "r1's own copy is untouched"
        );
        assert!(
            !r2_dir.join("files/stray.txt").exists(),
            "the stray file stayed behind"
        );
    }
    f.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_switches_of_three_hosts_under_load_drop_and_tear_nothing() {
    use crate::downtime::{load, release_files, Tally};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let f = fleet(3, "pinned").await;
    let (page_a, big_a) = release_files(b'A', 300, 100_000);
    let (page_b, big_b) = release_files(b'B', 500, 120_000);
    let a = f
        .release(&[("index.html", &page_a), ("big.bin", &big_a)])
        .await;
    let b = f
        .release(&[("index.html", &page_b), ("big.bin", &big_b)])
        .await;
    assert_eq!(f.activate(&a).await["ok"], true);
    let expected = Arc::new(vec![
        ("/".to_owned(), vec![page_a.clone(), page_b.clone()]),
        ("/big.bin".to_owned(), vec![big_a.clone(), big_b.clone()]),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Arc<Tally>> = f.hosts.iter().map(|_| Arc::new(Tally::default())).collect();
    let workers: Vec<_> = f
        .hosts
        .iter()
        .zip(&tallies)
        .flat_map(|(h, t)| {
            let base = format!("http://127.0.0.1:{}", h.http_port);
            (0..2).map(move |n| (base.clone(), n, t.clone()))
        })
        .map(|(base, n, t)| {
            tokio::spawn(load(
                (base, NAME),
                n % 2 == 0,
                expected.clone(),
                stop.clone(),
                t,
            ))
        })
        .collect();
    let mut skews = Vec::new();
    for round in 0..20 {
        let id = if round % 2 == 0 { &b } else { &a };
        let report = f.activate(id).await;
        assert_eq!(report["ok"], true, "{report}");
        let all = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "switch every host")
            .unwrap();
        skews.push(all["detail"].as_str().unwrap().to_owned());
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    for (h, t) in f.hosts.iter().zip(&tallies) {
        let (sent, failed, torn) = (
            t.sent.load(Ordering::Relaxed),
            t.failed.load(Ordering::Relaxed),
            t.torn.load(Ordering::Relaxed),
        );
        println!("host {}: {sent} requests, {failed} failed, {torn} torn during 20 switches of all three", h.name);
        assert!(sent > 100, "host {}: the load ran ({sent})", h.name);
        assert_eq!(
            (failed, torn),
            (0, 0),
            "host {}: no request fails, every body is one release's",
            h.name
        );
    }
    println!("switch skews: {skews:?}");
    f.all_serve(&a, std::str::from_utf8(&page_a).unwrap()).await;
    f.app.shutdown().await;
}

#[tokio::test]
async fn start_up_finds_a_host_that_no_longer_serves_the_live_release() {
    let f = fleet(2, "pinned").await;
    let r1 = f.release(&[("index.html", b"one")]).await;
    let r2 = f.release(&[("index.html", b"two")]).await;
    assert_eq!(f.activate(&r1).await["ok"], true);
    assert_eq!(f.activate(&r2).await["ok"], true);
    let Fleet { app, hosts, token } = f;
    // Someone points web2 back at r1 by hand while the console is down.
    let current = hosts[1].site_dir(SITE).join("current");
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(format!("releases/{r1}"), &current).unwrap();
    let app = app.restart().await;
    let f = Fleet { app, hosts, token };
    let listed = eventually(Duration::from_secs(30), "the hosts checked", || async {
        let (_, l) = f
            .send(Method::GET, &format!("/api/v1/sites/{SITE}/hosts"), None)
            .await;
        let hosts = l["hosts"].as_array()?.clone();
        hosts
            .iter()
            .any(|h| h["name"] == "web2" && !h["drift"].is_null())
            .then_some(hosts)
    })
    .await;
    let web2 = listed.iter().find(|h| h["name"] == "web2").unwrap();
    let drift = web2["drift"].as_str().unwrap_or_default();
    assert!(drift.contains(&r1) && drift.contains(&r2), "{web2}");
    assert_eq!(web2["serving"], json!(r1));
    let web1 = listed.iter().find(|h| h["name"] == "web1").unwrap();
    assert!(web1["drift"].is_null(), "{web1}");
    // The first copy after a restart (nothing noted about r2 here: rsync compares the whole
    // tree over a seed of r2's hard links) writes new files, never through r2's links.
    let r3 = f.release(&[("index.html", b"three, longer")]).await;
    for h in &f.hosts {
        let page = h.site_dir(SITE).join(format!("releases/{r3}/index.html"));
        eventually(Duration::from_secs(30), "r3 staged", || async {
            (std::fs::read(&page).ok()? == b"three, longer").then_some(())
        })
        .await;
        let before = h.site_dir(SITE).join(format!("releases/{r2}/index.html"));
        assert_eq!(
            std::fs::read(before).unwrap(),
            b"two",
            "r2 changed on {}",
            h.name
        );
    }
    f.app.shutdown().await;
}
