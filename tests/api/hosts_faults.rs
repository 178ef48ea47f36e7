//! Hosts that fail in the ways real ones do: down (sshd killed), a full disk (a small tmpfs
//! under the site's folder), a key Cutover no longer may use, a connection lost mid-rsync or
//! mid-switch. Each ends in a clear refusal naming the host, with nothing switched anywhere
//! (or every host put back), and the next go-live works once it is back.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::faults::other::SmallDisk;
use crate::helpers::eventually;
use crate::hosts::{fleet, get, Fleet};

const SITE: &str = "shop";

#[tokio::test]
async fn a_host_that_is_down_is_refused_and_the_next_go_live_works_once_it_is_back() {
    let mut f = fleet(3, "pinned").await;
    let (r1, r2) = f.live_and_next().await;
    f.hosts[2].stop_sshd();
    let report = f.activate(&r2).await;
    assert_eq!(report["ok"], false, "{report}");
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("web3") && message.contains("could not be reached"),
        "{message}"
    );
    assert!(message.contains("Nothing was switched"), "{message}");
    f.all_serve(&r1, "one").await;
    f.hosts[2].start_sshd();
    f.goes_live(&r2, "two").await;
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_key_the_host_no_longer_accepts_is_refused_and_named() {
    let f = fleet(2, "pinned").await;
    let (r1, r2) = f.live_and_next().await;
    // The host's admin removed Cutover's key; the shared connection goes with the sshd.
    f.hosts[1].authorize("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzLGl6mq8jvRB2WGF5uxI0tKpZVxl8Qps9k1a8m4Ybc someone-else");
    let mut f = f;
    f.hosts[1].stop_sshd();
    f.hosts[1].start_sshd();
    let report = f.activate(&r2).await;
    assert_eq!(report["ok"], false, "{report}");
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("web2") && message.contains("refused Cutover's SSH key"),
        "{message}"
    );
    f.all_serve(&r1, "one").await;
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_host_whose_disk_is_full_is_refused_and_named() {
    let f = fleet(2, "pinned").await;
    let _small = SmallDisk::mount(&f.hosts[1].site_dir(SITE), "1m");
    let r1 = f.release(&[("index.html", b"one")]).await;
    assert_eq!(f.activate(&r1).await["ok"], true);
    // Three megabytes that do not compress away: they cannot fit on web2.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r2 = f
        .release(&[("index.html", b"two"), ("big.bin", &big)])
        .await;
    let report = f.activate(&r2).await;
    assert_eq!(
        (&report["ok"], &report["code"]),
        (&json!(false), &json!("host_not_staged")),
        "{report}"
    );
    let message = report["message"].as_str().unwrap();
    assert!(
        message.contains("web2") && message.contains("ran out of disk space"),
        "{message}"
    );
    f.all_serve(&r1, "one").await;
    let (_, release) = f
        .send(
            Method::GET,
            &format!("/api/v1/sites/{SITE}/releases/{r2}"),
            None,
        )
        .await;
    let web2 = release["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "web2")
        .unwrap()
        .clone();
    assert_eq!(web2["state"], "failed", "{release}");
    assert_eq!(
        get(&f.hosts[1], "/").await,
        (200, "one".into()),
        "web2 still serves the live release"
    );
    f.app.shutdown().await;
}

/// Runs `f` (which blocks: it waits for killed processes) without stalling the runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_switch_puts_every_host_back_and_the_next_go_live_works() {
    let f = fleet(3, "pinned").await;
    let (r1, r2) = f.live_and_next().await;
    // web3 waits at the start of its switch, so web1 and web2 stay armed (their new `current`
    // written beside the live one, waiting for the word) while web2's connection drops.
    f.hosts[2].hold("switch");
    let cut = async {
        eventually(
            Duration::from_secs(30),
            "web1 and web2 armed, web3 held",
            || {
                let ready = f.hosts[0].is_armed(SITE)
                    && f.hosts[1].is_armed(SITE)
                    && f.hosts[2].is_held("switch");
                async move { ready.then_some(()) }
            },
        )
        .await;
        blocking(|| f.hosts[1].cut());
        f.hosts[2].release("switch");
    };
    let (report, ()) = tokio::join!(f.activate(&r2), cut);
    assert_eq!(report["ok"], false, "{report}");
    let message = report["message"].as_str().unwrap();
    assert!(message.contains("web2"), "the host is named: {message}");
    // web1 and web3 switched and were put back; web2 never switched: all serve release one.
    f.all_serve(&r1, "one").await;
    let (_, site) = f
        .send(Method::GET, &format!("/api/v1/sites/{SITE}"), None)
        .await;
    assert_eq!(site["active_release"], json!(r1), "{site}");
    f.goes_live(&r2, "two").await;
    f.app.shutdown().await;
}

/// What the release page says of `host`'s staging of `id`.
async fn staging(f: &Fleet, id: &str, host: &str) -> Value {
    let (_, release) = f
        .send(
            Method::GET,
            &format!("/api/v1/sites/{SITE}/releases/{id}"),
            None,
        )
        .await;
    release["hosts"]
        .as_array()
        .and_then(|all| all.iter().find(|h| h["host"] == host).cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_mid_rsync_fails_that_staging_and_the_go_live_stages_again() {
    let f = fleet(2, "pinned").await;
    let r1 = f.release(&[("index.html", b"one")]).await;
    assert_eq!(f.activate(&r1).await["ok"], true);
    // The upload starts staging in the background; web2's rsync is held, then cut.
    f.hosts[1].hold("rsync");
    let r2 = f.release(&[("index.html", b"two")]).await;
    eventually(Duration::from_secs(30), "web2's rsync held", || {
        let held = f.hosts[1].is_held("rsync");
        async move { held.then_some(()) }
    })
    .await;
    blocking(|| f.hosts[1].cut());
    f.hosts[1].release("rsync");
    let failed = eventually(Duration::from_secs(30), "web2's staging failed", || async {
        let s = staging(&f, &r2, "web2").await;
        (s["state"] == "failed").then_some(s)
    })
    .await;
    eventually(Duration::from_secs(30), "web1's staging done", || async {
        (staging(&f, &r2, "web1").await["state"] == "staged").then_some(())
    })
    .await;
    assert_eq!(
        get(&f.hosts[1], "/").await,
        (200, "one".into()),
        "web2 still serves the live release: {failed}"
    );
    // Going live stages it again on web2, over a new connection.
    f.goes_live(&r2, "two").await;
    assert_eq!(staging(&f, &r2, "web2").await["state"], "staged");
    f.app.shutdown().await;
}
