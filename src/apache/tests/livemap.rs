//! Pinned mode's live-release map on a real private Apache: a switch is a rename of the map,
//! seen by the very next request with no reload, even twice within the same second; every
//! answer (sub-requests, errors, redirects) names the release that served it.

use std::path::Path;

use super::super::{render, write_config_file, ManagedApache, VhostSpec};
use super::harness::{get, make_site, open_tempdir, start_private};
use crate::golive::point_live_map;
use crate::sites::SitePaths;

const A: &str = "20260101-120000-aaaa";
const B: &str = "20260101-120001-bbbb";

/// Writes the pinned (map) vhost of `shop` and the map naming `first`, and reloads once.
async fn pinned_site(apache: &mut ManagedApache, site_dir: &Path, first: &str) -> SitePaths {
    let paths = SitePaths {
        dir: site_dir.to_path_buf(),
    };
    for id in [A, B] {
        let sub = paths.release(id).join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("index.html"), format!("sub of {id}")).unwrap();
    }
    point_live_map(&paths, "shop", first).unwrap();
    let (current, map, logs) = (paths.current(), paths.live_map(), apache.log_dir());
    let spec = VhostSpec {
        site: "shop",
        server_name: "shop.test",
        aliases: &[],
        document_root: &current,
        site_dir,
        log_dir: &logs,
        release: None,
        live_map: Some(&map),
        serving: crate::apache::tests::plain(),
        tls: None,
    };
    let text = render(&spec).expect("render");
    write_config_file(&apache.vhost_path("shop").unwrap(), &text).unwrap();
    let test = apache.configtest().await.unwrap();
    assert!(test.ok, "{}", test.output);
    assert!(apache.graceful().await.unwrap().ok);
    paths
}

/// How many times Apache has (re)started its workers, from its error log.
fn generations(apache: &ManagedApache) -> usize {
    std::fs::read_to_string(apache.log_dir().join("error.log"))
        .unwrap_or_default()
        .matches("resuming normal operations")
        .count()
}

#[tokio::test]
async fn a_map_switch_is_seen_by_the_next_request_without_a_reload() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let site_dir = make_site(&tmp.path().join("sites"), "shop", &[(A, "A"), (B, "B")]);
    let paths = pinned_site(&mut apache, &site_dir, A).await;
    let addr = apache.listen();
    let first = get(addr, "shop.test", "/").await;
    assert_eq!((first.status, first.body.as_str()), (200, "A"), "{first:?}");
    assert_eq!(first.release.as_deref(), Some(A));
    let (pid, gens) = (apache.pid(), generations(&apache));

    // Forty switches back to back (well within one second, often within one clock tick):
    // the first request after each rename must already get the new release. No polling
    // here: a stale answer would be exactly the failure this guards against.
    let started = std::time::Instant::now();
    for round in 0..40 {
        let (id, body) = if round % 2 == 0 { (B, "B") } else { (A, "A") };
        point_live_map(&paths, "shop", id).unwrap();
        let seen = get(addr, "shop.test", "/").await;
        assert_eq!(
            (seen.status, seen.body.as_str(), seen.release.as_deref()),
            (200, body, Some(id)),
            "switch {round} to {id}"
        );
    }
    println!("40 map switches seen in {:?}", started.elapsed());
    assert_eq!(apache.pid(), pid, "same parent");
    assert_eq!(generations(&apache), gens, "no reload happened");
    apache.stop().await.unwrap();
}

#[tokio::test]
async fn every_kind_of_answer_names_the_release_that_gave_it() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let site_dir = make_site(&tmp.path().join("sites"), "shop", &[(A, "A"), (B, "B")]);
    let paths = pinned_site(&mut apache, &site_dir, B).await;
    let addr = apache.listen();
    // mod_dir's index lookup is a sub-request: it keeps the main request's release.
    let sub = get(addr, "shop.test", "/sub/").await;
    assert_eq!(
        (sub.status, sub.body.as_str()),
        (200, &*format!("sub of {B}"))
    );
    assert_eq!(sub.release.as_deref(), Some(B));
    let slash = get(addr, "shop.test", "/sub").await;
    assert_eq!((slash.status, slash.release.as_deref()), (301, Some(B)));
    let missing = get(addr, "shop.test", "/nope.html").await;
    assert_eq!((missing.status, missing.release.as_deref()), (404, Some(B)));
    // Nothing outside the live release is reachable through the rewrite.
    for path in [
        "/../live.map",
        "/%2e%2e/live.map",
        &format!("/../{A}/index.html"),
    ] {
        let seen = get(addr, "shop.test", path).await;
        assert_ne!(seen.status, 200, "{path}: {seen:?}");
    }

    // A damaged or missing map never serves another folder: 503, and no release is named.
    std::fs::write(paths.live_map(), "live ../../etc\n").unwrap();
    let damaged = get(addr, "shop.test", "/").await;
    assert_eq!((damaged.status, damaged.release), (503, None));
    std::fs::remove_file(paths.live_map()).unwrap();
    assert_eq!(get(addr, "shop.test", "/").await.status, 503);
    point_live_map(&paths, "shop", A).unwrap();
    let back = get(addr, "shop.test", "/").await;
    assert_eq!(
        (back.body.as_str(), back.release.as_deref()),
        ("A", Some(A))
    );
    apache.stop().await.unwrap();
}
