//! Deploy steps (issue 15) against a real private Apache: a build step makes a file the site
//! serves; a failing build is a failed release with its output and no folder; a failing step
//! before the switch leaves the live release, after it puts the previous one back; a step past
//! its limit is killed with its children; leftovers are stopped; stdin is closed; steps run as
//! a non-root user with exactly the documented environment; bad commands are refused at save.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::archives::targz;
use crate::helpers::{eventually, spawn_app_with_apache, TestApp};

const HOST: &str = "app.test";

async fn site(app: &TestApp, token: &str, steps: Value) {
    app.create_site(
        token,
        json!({"name": "app", "server_name": HOST, "steps": steps, "step_timeout_seconds": 3}),
    )
    .await;
}

async fn upload(app: &TestApp, token: &str, files: &[(&str, &[u8])]) -> (u16, Value) {
    let res = app.upload(token, "app", "r.tgz", targz(files), "").await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn ready(app: &TestApp, token: &str, files: &[(&str, &[u8])]) -> String {
    let (status, body) = upload(app, token, files).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn served(app: &TestApp, path: &str) -> String {
    app.through_apache(HOST, path).await.text().await.unwrap()
}

async fn step_runs(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let path = format!("/api/v1/sites/app/releases/{id}");
    let detail: Value = app.api_get(&path, token).await.json().await.unwrap();
    detail["steps"].as_array().unwrap().clone()
}

/// The pid in a file the step wrote, once it is there.
async fn pid_in(path: std::path::PathBuf) -> i32 {
    eventually(Duration::from_secs(10), "the step's pid file", || {
        let p = path.clone();
        async move { std::fs::read_to_string(p).ok()?.trim().parse().ok() }
    })
    .await
}

fn sh(script: &str) -> Value {
    json!(["sh", "-c", script])
}

#[tokio::test]
async fn a_build_step_makes_a_file_the_site_serves_as_a_user_with_only_the_documented_environment()
{
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    site(
        &app,
        &token,
        json!({"after_unpack": [
            sh("echo \"built for $CUTOVER_RELEASE\" > built.html"),
            ["env"],
            ["id", "-un"],
            sh("read line; echo \"stdin gave $?\""),
        ]}),
    )
    .await;
    let id = ready(&app, &token, &[("index.html", b"home")]).await;
    let runs = step_runs(&app, &token, &id).await;
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(runs
        .iter()
        .all(|r| r["outcome"] == "ok" && r["stage"] == "after_unpack"));

    // Exactly the documented environment, with the release's own values.
    let env = runs[1]["output"].as_str().unwrap();
    let names: BTreeSet<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
    let documented: BTreeSet<&str> = [
        "PATH",
        "HOME",
        "LANG",
        "CUTOVER_SITE",
        "CUTOVER_RELEASE",
        "CUTOVER_PREVIOUS_RELEASE",
        "CUTOVER_RELEASE_DIR",
        "CUTOVER_SHARED_DIR",
        "CUTOVER_STAGE",
    ]
    .into();
    assert_eq!(names, documented, "{env}");
    let dir = app.site_dir("app");
    for expected in [
        format!("CUTOVER_RELEASE={id}"),
        "CUTOVER_SITE=app".into(),
        "CUTOVER_STAGE=after_unpack".into(),
        "CUTOVER_PREVIOUS_RELEASE=".into(),
        format!(
            "CUTOVER_RELEASE_DIR={}",
            dir.join("releases").join(&id).display()
        ),
        format!("CUTOVER_SHARED_DIR={}", dir.join("shared").display()),
    ] {
        assert!(env.lines().any(|l| l == expected), "{expected} in {env}");
    }
    // Never root; standard input is closed (read sees its end at once).
    let user = runs[2]["output"].as_str().unwrap().trim().to_owned();
    assert!(!user.is_empty() && user != "root", "steps ran as {user:?}");
    assert_eq!(runs[2]["run_as"].as_str(), Some(user.as_str()));
    assert!(
        runs[3]["output"].as_str().unwrap().contains("stdin gave 1"),
        "{runs:?}"
    );

    // The built file is part of the release (its manifest) and served once live.
    let detail: Value = app
        .api_get(&format!("/api/v1/sites/app/releases/{id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    let manifest: Vec<&str> = detail["manifest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(manifest.contains(&"built.html"), "{manifest:?}");
    let (status, body) = app.activate(&token, "app", &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        served(&app, "/built.html").await,
        format!("built for {id}\n")
    );
    // The tree is the console's again after the build: no step can change a ready release.
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(dir.join("releases").join(&id).join("built.html")).unwrap(),
    );
    assert_eq!(owner, nix::unistd::geteuid().as_raw());
    // The audit log has each step with its exit status and the end of its output.
    let (_, audit) = app
        .api_send(
            reqwest::Method::GET,
            "/api/v1/audit?action=step",
            &token,
            None,
        )
        .await;
    let first = &audit["events"].as_array().unwrap().last().unwrap()["detail"];
    assert_eq!(first["exit"], 0, "{first}");
    assert_eq!(first["stage"], "after_unpack");
}

#[tokio::test]
async fn a_failing_build_is_a_failed_release_with_its_output_and_no_folder() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    site(&app, &token, json!({"after_unpack": [sh("echo compiling; echo 'broken: no such module' >&2; echo after; exit 3")]})).await;
    let (status, body) = upload(&app, &token, &[("index.html", b"x")]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "step_failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("exit status 3") && message.contains("broken: no such module"),
        "{message}"
    );
    let (_, list) = app
        .api_send(
            reqwest::Method::GET,
            "/api/v1/sites/app/releases",
            &token,
            None,
        )
        .await;
    let failed = &list.as_array().unwrap()[0];
    assert_eq!(failed["state"], "failed");
    let id = failed["id"].as_str().unwrap();
    // Nothing of it is left on disk, and nothing became usable.
    let left: Vec<String> = std::fs::read_dir(app.site_dir("app").join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Its output is kept, stdout and stderr in the order written.
    let runs = step_runs(&app, &token, id).await;
    assert_eq!(runs[0]["outcome"], "failed");
    assert_eq!(runs[0]["exit"], 3);
    assert_eq!(
        runs[0]["output"],
        "compiling\nbroken: no such module\nafter\n"
    );
    let (status, _) = app.activate(&token, "app", id).await;
    assert_eq!(status, 422, "a failed build never goes live");
}

#[tokio::test]
async fn a_failing_step_before_the_switch_leaves_the_live_site_and_after_it_puts_the_old_back() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    site(
        &app,
        &token,
        json!({"before_switch": [sh("test -f ready-to-go || { echo 'not ready'; exit 4; }")],
               "after_switch": [sh("echo \"migrating from $CUTOVER_PREVIOUS_RELEASE to $CUTOVER_RELEASE\"; test -f migrates")]}),
    )
    .await;
    let a = ready(
        &app,
        &token,
        &[
            ("index.html", b"A"),
            ("ready-to-go", b""),
            ("migrates", b""),
        ],
    )
    .await;
    let (status, body) = app.activate(&token, "app", &a).await;
    assert_eq!(status, 200, "{body}");
    let steps: Vec<&str> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let at = |name: &str| {
        steps
            .iter()
            .position(|s| s.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {steps:?}"))
    };
    assert!(
        at("configtest") < at("before_switch") && at("before_switch") < at("switch current"),
        "{steps:?}"
    );
    assert!(at("after_switch") < at("health check"), "{steps:?}");
    let after = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "after_switch")
        .unwrap();
    assert_eq!(after["exit"], 0);
    assert!(
        after["output"]
            .as_str()
            .unwrap()
            .contains(&format!("migrating from  to {a}")),
        "{after}"
    );

    // before_switch fails: nothing switched.
    let b = ready(&app, &token, &[("index.html", b"B"), ("migrates", b"")]).await;
    let (status, body) = app.activate(&token, "app", &b).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "step_failed");
    assert_eq!(body["rolled_back"], false);
    assert!(
        body["message"].as_str().unwrap().contains("not ready"),
        "{body}"
    );
    assert_eq!(served(&app, "/").await, "A");
    assert_eq!(body["active"], a.as_str());

    // after_switch fails: switched, then put back, and said so.
    let c = ready(&app, &token, &[("index.html", b"C"), ("ready-to-go", b"")]).await;
    let (status, body) = app.activate(&token, "app", &c).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["rolled_back"], true, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("after the switch")
            && message.contains(&format!("Release {a} was put back")),
        "{message}"
    );
    assert_eq!(served(&app, "/").await, "A");
    let failed = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "after_switch")
        .unwrap();
    assert!(
        failed["output"]
            .as_str()
            .unwrap()
            .contains(&format!("migrating from {a} to {c}")),
        "{failed}"
    );
    let (_, site) = app
        .api_send(reqwest::Method::GET, "/api/v1/sites/app", &token, None)
        .await;
    assert_eq!(site["active_release"], a.as_str());
}

#[tokio::test]
async fn a_step_past_its_limit_is_killed_with_its_children_and_leftovers_are_stopped() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    site(
        &app,
        &token,
        json!({"before_switch": [sh("sleep 300 & echo $! > \"$HOME/bg.pid\"; echo started")],
               "after_switch": [sh("sleep 300 & echo $! > \"$HOME/child.pid\"; echo $$ > \"$HOME/parent.pid\"; wait")]}),
    )
    .await;
    let home = app.settings.data_dir.join("steps/home/app");
    let id = ready(&app, &token, &[("index.html", b"A")]).await;
    let started = std::time::Instant::now();
    let (status, body) = app.activate(&token, "app", &id).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the limit held"
    );
    let steps = body["steps"].as_array().unwrap();
    let bg = steps
        .iter()
        .find(|s| s["stage"] == "before_switch")
        .unwrap();
    assert_eq!(
        bg["ok"], true,
        "a step that leaves a process behind still ends: {bg}"
    );
    assert!(
        bg["output"]
            .as_str()
            .unwrap()
            .contains("stopped the processes this step left running"),
        "{bg}"
    );
    let slow = steps.iter().find(|s| s["stage"] == "after_switch").unwrap();
    assert!(
        slow["detail"]
            .as_str()
            .unwrap()
            .contains("timed out after 3 s"),
        "{slow}"
    );
    assert!(slow["exit"].is_null());
    // Every process of both steps is gone.
    for file in ["bg.pid", "child.pid", "parent.pid"] {
        let pid = pid_in(home.join(file)).await;
        eventually(
            Duration::from_secs(10),
            &format!("{file} ({pid}) gone"),
            || async move { crate::support::is_gone(pid).then_some(()) },
        )
        .await;
    }
    // The site is as it was (nothing live before, nothing live now) and works again with a quick step.
    let (status, body) = app
        .patch_site(
            &token,
            "app",
            json!({"steps": {"after_switch": [["true"]]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.activate(&token, "app", &id).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_step_that_prints_megabytes_is_capped_and_bad_commands_are_refused_at_save() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    site(&app, &token, json!({"after_unpack": [sh("head -c 50000000 /dev/zero | tr '\\0' x; echo; echo the-end")]})).await;
    let id = ready(&app, &token, &[("index.html", b"x")]).await;
    let runs = step_runs(&app, &token, &id).await;
    let out = runs[0]["output"].as_str().unwrap();
    assert!(
        runs[0]["output_bytes"].as_u64().unwrap() > 50_000_000,
        "{}",
        runs[0]["output_bytes"]
    );
    assert!(out.len() < 70 * 1024, "kept {} bytes", out.len());
    assert!(
        out.ends_with("the-end\n") && out.contains("of output not kept"),
        "{}",
        &out[out.len() - 200..]
    );

    for (steps, says) in [
        (
            json!({"before_switch": [[]]}),
            "steps.before_switch[1]: the command is empty",
        ),
        (json!({"after_switch": [[""]]}), "program name is empty"),
        (
            json!({"after_switch": [["no-such-tool-xyz", "x"]]}),
            "not found on the steps' PATH",
        ),
        (json!({"after_unpack": [["sh", "-c", "a\u{0}b"]]}), "NUL"),
        (json!({"after_unpack": [vec!["echo"; 80]]}), "at most 64"),
        (json!({"after_unpack": "make"}), "steps"),
        (json!({"during_switch": [["true"]]}), "during_switch"),
    ] {
        let (status, body) = app.patch_site(&token, "app", json!({"steps": steps})).await;
        assert_eq!(status, 422, "{steps}: {body}");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains(says), "{steps}: {m}");
    }
    let (status, body) = app
        .patch_site(&token, "app", json!({"step_timeout_seconds": 0}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_steps"))
    );
    // Nothing was stored by the refusals.
    let (_, site) = app
        .api_send(reqwest::Method::GET, "/api/v1/sites/app", &token, None)
        .await;
    assert_eq!(
        site["steps"]["after_unpack"].as_array().unwrap().len(),
        1,
        "{site}"
    );
    assert_eq!(site["step_timeout_seconds"], 3);
}

#[tokio::test]
async fn the_site_form_takes_one_command_per_line_and_shows_them_back() {
    let app = spawn_app_with_apache(|_| {}).await;
    let token = app.admin_token().await;
    site(&app, &token, json!({})).await;
    let pw = app.add_user("boss", cutover::auth::Role::Admin).await;
    let b = app.logged_in("boss", &pw).await;
    let form = |after_switch: &'static str| {
        vec![
            ("server_name", HOST),
            ("keep_releases", "5"),
            ("switch", "pinned"),
            ("health_path", "/"),
            ("runtime", "static"),
            ("allow_override", "none"),
            ("steps_after_unpack", "sh build.sh --no-dev\n"),
            ("steps_after_switch", after_switch),
            ("step_timeout_seconds", "90"),
            ("rollback_steps", "skip"),
        ]
    };
    let res = b
        .post(
            "/sites/app/settings",
            &form("sh artisan \"cache:clear\" --env='prod x'\n[\"sh\", \"-c\", \"echo $HOME\"]\n"),
        )
        .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let (_, site) = app
        .api_send(reqwest::Method::GET, "/api/v1/sites/app", &token, None)
        .await;
    assert_eq!(
        site["steps"]["after_switch"],
        json!([
            ["sh", "artisan", "cache:clear", "--env=prod x"],
            ["sh", "-c", "echo $HOME"]
        ])
    );
    assert_eq!(
        site["steps"]["after_unpack"],
        json!([["sh", "build.sh", "--no-dev"]])
    );
    assert_eq!(
        (
            site["step_timeout_seconds"].as_u64(),
            site["rollback_runs_steps"].as_bool()
        ),
        (Some(90), Some(false))
    );
    let page = b.page("/sites/app/settings").await;
    assert!(
        page.contains("sh artisan cache:clear &#39;--env=prod x&#39;"),
        "the form shows the commands back"
    );
    // A line that does not split is refused, naming its field and line; nothing changes.
    let res = b
        .post("/sites/app/settings", &form("true\necho 'open\n"))
        .await;
    assert_eq!(res.status(), 422);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("Steps after the switch, line 2") && text.contains("unclosed quote"),
        "{text}"
    );
    let (_, again) = app
        .api_send(reqwest::Method::GET, "/api/v1/sites/app", &token, None)
        .await;
    assert_eq!(again["steps"], site["steps"]);
}
