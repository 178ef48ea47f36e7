//! The real binary: first run, CLI commands, clean shutdown, secrets never stored or logged,
//! and concurrent writers without SQLITE_BUSY.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cutover::auth::Role;

use crate::helpers::{csrf_in, cutover_bin, eventually, run_cli, spawn_app, ChildGuard};

fn write_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("cutover.toml");
    std::fs::write(
        &config,
        // Its private Apache on a port of its own: tests run side by side, and the default
        // port would make them fight over one.
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[apache]\nlisten = \"127.0.0.1:{}\"\n",
            dir.join("data"),
            crate::helpers::free_port()
        ),
    )
    .unwrap();
    config
}

/// Starts `cutover serve`; returns the guard, its base URL and the first-run password lines.
fn serve(config: &Path, log: &Path) -> (ChildGuard, String, Vec<String>) {
    let mut cmd = Command::new(cutover_bin());
    cmd.arg("--config")
        .arg(config)
        .arg("serve")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = ChildGuard::spawn(cmd);
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut base = String::new();
    // The URL line comes last, after any first-run lines.
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let last = line.starts_with("Cutover is running at ");
        if last {
            base = line
                .trim_start_matches("Cutover is running at ")
                .trim_end_matches('/')
                .to_owned();
        }
        lines.push(line);
        if last {
            break;
        }
    }
    (child, base, lines)
}

#[tokio::test]
async fn first_run_prints_a_working_admin_password_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (mut child, base, lines) = serve(&config, &dir.path().join("log"));
    assert!(base.starts_with("http://127.0.0.1:"), "{lines:?}");
    let password = lines
        .iter()
        .skip_while(|l| !l.starts_with("First run"))
        .nth(1)
        .expect("password line")
        .trim()
        .to_owned();
    assert!(password.len() >= 16);
    let b = crate::helpers::Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.clone(),
    };
    assert_eq!(b.login("admin", &password).await.status(), 303);
    let status = child.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    // Its log, written to a file, is plain text: no terminal colour codes.
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(log.lines().count() > 3, "{log}");
    assert!(!log.contains('\x1b'), "escape codes in a log file: {log:?}");
    // A second start prints no password: the admin exists.
    let (mut child, _, lines) = serve(&config, &dir.path().join("log2"));
    assert!(!lines.iter().any(|l| l.contains("First run")), "{lines:?}");
    let data = dir.path().join("data");
    assert!(
        !crate::helpers::apaches_running(&data).is_empty(),
        "its Apache runs"
    );
    // SIGTERM the moment it says it runs (as a script or service manager may): it still
    // stops in order, with its Apache (it was killed outright, Apache left running, before).
    let status = child.terminate();
    assert!(
        status.success(),
        "clean exit on an early SIGTERM: {status:?}"
    );
    assert_eq!(crate::helpers::apaches_running(&data), Vec::<i32>::new());
    let (ok, out, _) = run_cli(&config, &["audit", "verify"], None);
    assert!(ok);
    assert!(out.contains("intact"));
}

#[tokio::test]
async fn cli_user_add_and_token_create() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (ok, _, err) = run_cli(
        &config,
        &[
            "user",
            "add",
            "ops",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
    assert!(err.contains("at least 12"), "{err}");
    let (ok, _, err) = run_cli(
        &config,
        &["user", "add", "ops", "--role", "wizard", "--password-stdin"],
        Some("x\n"),
    );
    assert!(!ok && err.contains("role"), "{err}");
    let (ok, out, err) = run_cli(
        &config,
        &[
            "user",
            "add",
            "ops",
            "--role",
            "operator",
            "--password-stdin",
        ],
        Some("plain tulip orbit 44\n"),
    );
    assert!(ok, "{err}");
    assert!(out.contains("ops"));
    let (ok, out, _) = run_cli(
        &config,
        &["token", "create", "ops", "--label", "pager"],
        None,
    );
    assert!(ok);
    let token = out.trim_end().lines().last().unwrap().to_owned();
    assert!(token.starts_with("cutover_") && !token.contains(' '));
    let (ok, _, err) = run_cli(&config, &["token", "create", "ghost"], None);
    assert!(!ok && err.contains("no user named ghost"), "{err}");

    let (mut child, base, _) = serve(&config, &dir.path().join("log"));
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "ops");
    assert_eq!(me["role"], "operator");
    child.terminate();
    // CLI actions are audited as cli:<unix user>.
    let core = cutover::app::Core::open(&cutover::config::Settings::load(Some(&config)).unwrap())
        .await
        .unwrap();
    let actors: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_events WHERE action IN ('user_create', 'token_create')",
    )
    .fetch_all(&core.pool)
    .await
    .unwrap();
    assert_eq!(actors.len(), 2);
    assert!(
        actors.iter().all(|(a, _)| a.starts_with("cli:")),
        "{actors:?}"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_database_or_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let canary = "canary-Passw0rd-7f3a9c1e";
    let (ok, _, err) = run_cli(
        &config,
        &[
            "user",
            "add",
            "watcher",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{canary}\n")),
    );
    assert!(ok, "{err}");
    let (_, out, _) = run_cli(&config, &["token", "create", "watcher"], None);
    let token = out.trim_end().lines().last().unwrap().to_owned();
    let log = dir.path().join("serve.log");
    let (mut child, base, _) = serve(&config, &log);
    let b = crate::helpers::Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.clone(),
    };
    // A password typed into the user-name field must not be recorded either.
    assert_eq!(b.login(canary, canary).await.status(), 401);
    let res = b.login("watcher", canary).await;
    assert_eq!(res.status(), 303);
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("cutover_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("cutover_session=")
        .to_owned();
    let csrf = csrf_in(&b.page("/account").await);
    assert_eq!(
        b.post("/account/tokens", &[("label", "web")])
            .await
            .status(),
        201
    );
    let me = reqwest::Client::new()
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert!(child.terminate().success());

    let mut haystack = std::fs::read(&log).unwrap();
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            haystack.extend(std::fs::read(&path).unwrap());
        }
    }
    let text = String::from_utf8_lossy(&haystack);
    assert!(
        text.contains("login"),
        "the search looks at the right files"
    );
    for (what, secret) in [
        ("password", canary),
        ("API token", token.as_str()),
        ("session id", session.as_str()),
        ("CSRF token", csrf.as_str()),
    ] {
        assert!(
            !text.contains(secret),
            "the {what} was found in the database or logs"
        );
    }
}

#[tokio::test]
async fn twenty_concurrent_writers_never_see_sqlite_busy() {
    let app = spawn_app().await;
    app.add_user("busy", Role::Viewer).await;
    let core = app.core().await;
    let other = app.core().await; // a second pool, like the CLI beside the server
    let mut tasks = Vec::new();
    for i in 0..20 {
        let auth = if i % 2 == 0 {
            core.auth.clone()
        } else {
            other.auth.clone()
        };
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                auth.create_token("test", &Default::default(), "busy", &format!("t{i}"))
                    .await?;
            }
            Ok::<_, cutover::error::AppError>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("no SQLITE_BUSY");
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_tokens")
        .fetch_one(&core.pool)
        .await
        .unwrap();
    assert_eq!(n, 100);
    assert!(matches!(
        cutover::audit::verify(&core.pool).await.unwrap(),
        cutover::audit::Verification::Intact { .. }
    ));
    let _ = eventually(Duration::from_secs(1), "noop", || async { Some(()) }).await;
}

#[tokio::test]
async fn cli_site_add_with_a_runtime_and_site_set_change_settings_or_refuse_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let (ok, _, err) = run_cli(
        &config,
        &[
            "site",
            "add",
            "wiki",
            "--server-name",
            "wiki.test",
            "--runtime",
            "php",
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, out, err) = run_cli(
        &config,
        &[
            "site",
            "set",
            "wiki",
            "--options",
            "[\"Indexes\"]",
            "--allow-override",
            "all",
        ],
        None,
    );
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("the site as JSON");
    assert_eq!(shown["runtime"], "php");
    assert_eq!(
        shown["directory_index"],
        serde_json::json!(["index.php", "index.html"])
    );
    assert_eq!(shown["options"], serde_json::json!(["Indexes"]));
    assert_eq!(shown["allow_override"], "all");
    let (ok, _, err) = run_cli(&config, &["site", "set", "wiki", "--optoins", "[]"], None);
    assert!(!ok, "a misspelt field must not pass");
    assert!(err.contains("optoins"), "{err}");
    let (ok, _, err) = run_cli(&config, &["site", "set", "wiki", "--runtime", "perl"], None);
    assert!(!ok && err.contains("runtime"), "{err}");
}
