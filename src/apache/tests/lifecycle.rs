//! Starting, finding, stopping a private Apache, and the worker-permission check.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt as _;

use super::super::managed::ManagedApache;
use super::super::process;
use super::harness::{
    apache_binary, expect_body, free_port, make_site, open_tempdir, start_private, write_vhost,
    Guard,
};

const A: &str = "20260101-000000-000a";

#[tokio::test]
async fn a_crashed_consoles_apache_is_replaced_on_the_same_root() {
    let tmp = open_tempdir();
    let root = tmp.path().join("apache");
    let (first, _guard) = start_private(&root).await;
    let addr = first.listen();
    let site_dir = make_site(&tmp.path().join("sites"), "shop", &[(A, "A")]);
    write_vhost(
        &first,
        "shop",
        &site_dir,
        &site_dir.join("releases").join(A),
    );
    assert!(first.graceful().await.unwrap().ok);
    let old_pid = first.pid().unwrap();
    let conf = first.config_path().to_path_buf();
    // The console "crashes": the struct goes away, Apache keeps running.
    drop(first);
    assert!(process::is_ours(old_pid, &conf));

    // Same root, same port: only works if the leftover was stopped first.
    let mut second = ManagedApache::prepare(&root, addr, apache_binary()).unwrap();
    second.start().await.unwrap();
    let new_pid = second.pid().unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(!process::is_ours(old_pid, &conf), "the old Apache is gone");
    expect_body(addr, "shop.test", "/", "A").await;
    second.stop().await.unwrap();
}

#[tokio::test]
async fn stop_ends_the_process_and_frees_the_port() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let pid = apache.pid().unwrap();
    assert!(apache.is_alive());
    apache.stop().await.unwrap();
    assert!(!process::exists(pid) || !process::is_ours(pid, apache.config_path()));
    assert!(!apache.is_alive());
    assert_eq!(apache.pid(), None);
    assert!(!apache.pid_file().exists());
    TcpListener::bind(apache.listen()).expect("the port is free again");
    // Stopping twice is harmless.
    apache.stop().await.unwrap();
}

#[tokio::test]
async fn a_taken_port_is_reported_in_apaches_words() {
    let tmp = open_tempdir();
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = squatter.local_addr().unwrap();
    let mut apache =
        ManagedApache::prepare(&tmp.path().join("apache"), addr, apache_binary()).unwrap();
    let _guard = Guard::new(&apache);
    let err = format!("{:#}", apache.start().await.unwrap_err());
    assert!(err.contains("Address already in use"), "{err}");
    assert!(err.contains(&addr.to_string()), "{err}");
    assert!(!apache.is_alive());
}

#[tokio::test]
async fn a_pid_file_naming_someone_else_is_never_signalled() {
    let tmp = open_tempdir();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let apache = ManagedApache::prepare(&tmp.path().join("apache"), addr, apache_binary()).unwrap();
    // Our own test process: alive, but not an Apache with our config.
    std::fs::write(apache.pid_file(), format!("{}\n", std::process::id())).unwrap();
    assert_eq!(apache.pid(), None);
    assert!(!apache.is_alive());
    let mut apache = apache;
    apache.stop().await.unwrap(); // must not signal us
    assert!(!apache.pid_file().exists(), "the stale pid file is removed");
}

#[test]
fn worker_reach_names_the_blocking_folder() {
    let tmp = open_tempdir();
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let apache = ManagedApache::prepare(&tmp.path().join("apache"), addr, apache_binary()).unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let site = make_site(&base.join("sites"), "shop", &[(A, "A")]);
    let release = site.join("releases").join(A);
    assert_eq!(apache.check_worker_can_reach(&release), Ok(()));
    assert_eq!(
        apache.check_worker_can_reach(&release.join("index.html")),
        Ok(())
    );

    let locked = base.join("sites");
    // As root the worker is www-data, which 0700 shuts out; as a user, drop our own x bit.
    let mode = if nix::unistd::geteuid().is_root() {
        0o700
    } else {
        0o600
    };
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(mode)).unwrap();
    let err = apache.check_worker_can_reach(&release).unwrap_err();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        err.contains(&format!("cannot enter {}", locked.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod o+x {}", locked.display())),
        "{err}"
    );
    assert!(apache
        .check_worker_can_reach(&base.join("missing"))
        .is_err());
}

#[tokio::test]
async fn graceful_reports_a_config_that_parses_but_cannot_be_applied() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = squatter.local_addr().unwrap();
    // Not something render() can produce: a hand-edited file with a busy Listen.
    let extra = apache.sites_dir().join("zz-listen.conf");
    std::fs::write(&extra, format!("Listen {busy}\n")).unwrap();
    assert!(apache.configtest().await.unwrap().ok, "it parses");

    let out = apache.graceful().await.unwrap();
    assert!(!out.ok, "the parent died applying it, yet graceful said ok");
    assert!(
        out.output.contains("Address already in use"),
        "{}",
        out.output
    );

    // Recovery: fix the config, start again on the same root.
    std::fs::remove_file(&extra).unwrap();
    apache.start().await.unwrap();
    assert!(apache.is_alive());
    apache.stop().await.unwrap();
}

#[tokio::test]
async fn an_empty_or_lost_pid_file_does_not_lose_track_of_apache() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let pid = apache.pid().unwrap();
    // As during a graceful restart (Apache truncates, then rewrites it), and when it is lost.
    std::fs::write(apache.pid_file(), "").unwrap();
    assert_eq!(apache.pid(), Some(pid));
    assert!(apache.is_alive());
    std::fs::remove_file(apache.pid_file()).unwrap();
    assert_eq!(apache.pid(), Some(pid));
    // So it is still stopped, never left running.
    apache.stop().await.unwrap();
    assert!(!process::is_ours(pid, apache.config_path()));
    assert_eq!(apache.pid(), None);
}
