//! A real private Apache on 127.0.0.1: serving, switching, refusing broken configs.

use std::os::unix::fs::symlink;

use super::harness::{expect_body, get, make_site, open_tempdir, start_private, write_vhost};

const A: &str = "20260101-000000-000a";
const B: &str = "20260101-000000-000b";
const X: &str = "20260101-000000-000c";
const Y: &str = "20260101-000000-000d";

#[tokio::test]
async fn serves_a_release_and_switches_with_graceful() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let site_dir = make_site(&tmp.path().join("sites"), "shop", &[(A, "A"), (B, "B")]);
    let addr = apache.listen();

    write_vhost(
        &apache,
        "shop",
        &site_dir,
        &site_dir.join("releases").join(A),
    );
    let test = apache.configtest().await.unwrap();
    assert!(test.ok, "{}", test.output);
    let reload = apache.graceful().await.unwrap();
    assert!(reload.ok, "{}", reload.output);
    expect_body(addr, "shop.test", "/", "A").await;

    let pid = apache.pid().expect("running");
    write_vhost(
        &apache,
        "shop",
        &site_dir,
        &site_dir.join("releases").join(B),
    );
    assert!(apache.configtest().await.unwrap().ok);
    let reload = apache.graceful().await.unwrap();
    assert!(reload.ok, "{}", reload.output);
    expect_body(addr, "shop.test", "/", "B").await;
    assert_eq!(apache.pid(), Some(pid), "graceful keeps the parent process");
    // Pinned mode names the release on every answer, errors included.
    assert_eq!(
        get(addr, "shop.test", "/").await.release.as_deref(),
        Some(B)
    );
    let missing = get(addr, "shop.test", "/nope").await;
    assert_eq!((missing.status, missing.release.as_deref()), (404, Some(B)));

    // Unknown host names get the empty default vhost, not the first site.
    assert_eq!(get(addr, "other.test", "/").await.status, 404);
    assert_eq!(get(addr, "127.0.0.1", "/").await.status, 404);
    // Readiness probes and unknown hosts leave the main error log free of errors.
    let main_log = std::fs::read_to_string(apache.log_dir().join("error.log")).unwrap();
    assert!(!main_log.contains(":error]"), "{main_log}");

    // Per-site logs in combined format (the LogFormat is defined in the main config).
    let access = std::fs::read_to_string(apache.log_dir().join("shop-access.log")).unwrap();
    assert!(
        access
            .lines()
            .any(|l| l.contains("\"GET / HTTP/1.1\" 200") && l.ends_with("\"-\" \"-\"")),
        "{access}"
    );
    assert!(apache.log_dir().join("shop-error.log").is_file());

    apache.stop().await.unwrap();
}

#[tokio::test]
async fn symlinks_current_and_shared_are_followed() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let site_dir = make_site(&tmp.path().join("sites"), "shop", &[(X, "X"), (Y, "Y")]);
    let addr = apache.listen();
    // Shared paths are links inside each release into <site>/shared.
    std::fs::create_dir_all(site_dir.join("shared/uploads")).unwrap();
    std::fs::write(site_dir.join("shared/uploads/photo.txt"), "shared file").unwrap();
    for r in [X, Y] {
        symlink(
            "../../shared/uploads",
            site_dir.join(format!("releases/{r}/uploads")),
        )
        .unwrap();
    }
    symlink(format!("releases/{X}"), site_dir.join("current")).unwrap();

    // Symlink mode: DocumentRoot is <site>/current.
    write_vhost(&apache, "shop", &site_dir, &site_dir.join("current"));
    let reload = apache.graceful().await.unwrap();
    assert!(reload.ok, "{}", reload.output);
    expect_body(addr, "shop.test", "/", "X").await;
    expect_body(addr, "shop.test", "/uploads/photo.txt", "shared file").await;

    // Going live in symlink mode: rename a new link over `current`.
    symlink(format!("releases/{Y}"), site_dir.join("current.tmp")).unwrap();
    std::fs::rename(site_dir.join("current.tmp"), site_dir.join("current")).unwrap();
    expect_body(addr, "shop.test", "/", "Y").await;

    // Pinned mode: DocumentRoot is the release itself; its shared link still works.
    write_vhost(
        &apache,
        "shop",
        &site_dir,
        &site_dir.join("releases").join(X),
    );
    assert!(apache.graceful().await.unwrap().ok);
    expect_body(addr, "shop.test", "/", "X").await;
    expect_body(addr, "shop.test", "/uploads/photo.txt", "shared file").await;

    apache.stop().await.unwrap();
}

#[tokio::test]
async fn uploaded_htaccess_changes_nothing() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let site_dir = make_site(&tmp.path().join("sites"), "shop", &[(A, "A")]);
    let release = site_dir.join("releases").join(A);
    std::fs::write(
        release.join(".htaccess"),
        "Deny from all\nRequire all denied\nRedirect / http://evil.invalid/\nOptions +Indexes\n",
    )
    .unwrap();
    std::fs::create_dir(release.join("sub")).unwrap();
    write_vhost(&apache, "shop", &site_dir, &release);
    assert!(apache.graceful().await.unwrap().ok);

    expect_body(apache.listen(), "shop.test", "/", "A").await;
    // No listing even though the .htaccess asks for Indexes (404 here: the managed
    // instance does not even load mod_autoindex), and the file itself is hidden.
    let sub = get(apache.listen(), "shop.test", "/sub/").await;
    assert!(sub.status == 404 || sub.status == 403, "{sub:?}");
    assert_eq!(
        get(apache.listen(), "shop.test", "/.htaccess").await.status,
        403
    );
    apache.stop().await.unwrap();
}

#[tokio::test]
async fn broken_vhost_is_refused_and_old_content_keeps_serving() {
    let tmp = open_tempdir();
    let (mut apache, _guard) = start_private(&tmp.path().join("apache")).await;
    let site_dir = make_site(&tmp.path().join("sites"), "shop", &[(A, "A")]);
    write_vhost(
        &apache,
        "shop",
        &site_dir,
        &site_dir.join("releases").join(A),
    );
    assert!(apache.graceful().await.unwrap().ok);
    expect_body(apache.listen(), "shop.test", "/", "A").await;
    let pid = apache.pid().unwrap();

    let broken = apache.vhost_path("broken").unwrap();
    std::fs::write(
        &broken,
        "<VirtualHost *:80 *:*>\n    ServerNmae typo.test\n</VirtualHost>\n",
    )
    .unwrap();
    let test = apache.configtest().await.unwrap();
    assert!(!test.ok);
    assert!(
        test.output.contains("Invalid command 'ServerNmae'"),
        "{}",
        test.output
    );
    let reload = apache.graceful().await.unwrap();
    assert!(!reload.ok);
    assert!(reload.output.contains("Syntax error"), "{}", reload.output);

    assert_eq!(apache.pid(), Some(pid), "the old server keeps running");
    expect_body(apache.listen(), "shop.test", "/", "A").await;

    // `-k stop` refuses to run with a broken config; stop must still work, by pid.
    apache.stop().await.unwrap();
    assert!(!apache.is_alive());
}
