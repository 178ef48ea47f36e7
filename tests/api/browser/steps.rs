//! Deploy steps in the browser (issue 15): at a phone's size, going live with a site whose
//! step is still running shows that step's output as it arrives, then the result.

use std::time::Duration;

use cutover::auth::Role;
use serde_json::json;

use crate::archives::targz;
use crate::browser::checks::page_ok;
use crate::browser::driver::{
    click_to, find, open, screenshot, screenshot_dir, wait_js, Chromedriver, PHONE,
};
use crate::helpers::spawn_app_with_apache;

pub async fn output_appears_while_a_step_runs() {
    let app = spawn_app_with_apache(|_| {}).await;
    let password = app.add_user("boss", Role::Admin).await;
    let token = app.token_for("boss").await;
    // The step prints, then waits for the test's signal: its output must be on the page
    // while it is still running.
    let step = "echo 'migrating table 1 of 2'; while [ ! -f \"$HOME/go-on\" ]; do sleep 0.1; done; echo 'migration done'";
    app.create_site(
        &token,
        json!({"name": "shop", "server_name": "shop.example.test",
               "steps": {"after_switch": [["sh", "-c", step]]}}),
    )
    .await;
    let res = app
        .upload(
            &token,
            "shop",
            "r.tgz",
            targz(&[("index.html", b"new")]),
            "",
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let go_on = app.settings.data_dir.join("steps/home/shop/go-on");

    let work = tempfile::tempdir().unwrap();
    let driver = Chromedriver::start(&work.path().join("chromedriver.log")).await;
    let c = driver
        .session(PHONE, true, &work.path().join("profile"))
        .await;
    let shots = screenshot_dir("phone-390x844-steps");
    open(&c, &format!("{}/login", app.base), "^/login$").await;
    find(&c, "#user_name")
        .await
        .send_keys("boss")
        .await
        .unwrap();
    find(&c, "#password")
        .await
        .send_keys(&password)
        .await
        .unwrap();
    click_to(&c, "main form[action='/login'] button[type=submit]", "^/$").await;
    let confirm = format!("{}/sites/shop/releases/{id}/activate", app.base);
    open(&c, &confirm, "^/sites/shop/releases/[^/]+/activate$").await;
    assert!(find(&c, "#steps-note")
        .await
        .text()
        .await
        .unwrap()
        .contains("1 command"));
    click_to(
        &c,
        "main .confirm form button[type=submit]",
        "^/sites/shop/runs/[^/]+$",
    )
    .await;
    // The output arrives while the step runs, on the same page (no reload: JavaScript polls).
    c.execute("window.__sameRunPage = true;", vec![])
        .await
        .unwrap();
    wait_js(
        &c,
        Duration::from_secs(30),
        "the running step's output",
        "!document.getElementById('run-now').hidden && document.getElementById('run-output').textContent.includes('migrating table 1 of 2')",
    )
    .await;
    let shown = find(&c, "#run-output").await.text().await.unwrap();
    assert!(!shown.contains("migration done"), "{shown}");
    assert!(find(&c, "#run-now-step")
        .await
        .text()
        .await
        .unwrap()
        .starts_with("after_switch: sh -c"));
    let same = c
        .execute("return window.__sameRunPage === true", vec![])
        .await
        .unwrap();
    assert_eq!(
        same,
        json!(true),
        "the output came without reloading the page"
    );
    page_ok(&c, "step-running").await;
    screenshot(&c, &shots.join("01-step-running.png")).await;

    std::fs::write(&go_on, "").unwrap();
    wait_js(
        &c,
        Duration::from_secs(30),
        "the result page",
        "document.querySelector('[data-outcome]') && document.querySelector('[data-outcome]').dataset.outcome === 'ok'",
    )
    .await;
    let main = find(&c, "main").await.text().await.unwrap();
    assert!(main.contains("is live"), "{main}");
    let output = c
        .execute("return [...document.querySelectorAll('.step-output pre')].map(p => p.textContent).join('\\n')", vec![])
        .await
        .unwrap();
    assert!(
        output.as_str().unwrap().contains("migration done"),
        "{output}"
    );
    page_ok(&c, "step-result").await;
    screenshot(&c, &shots.join("02-step-result.png")).await;
    drop(c);
    drop(driver);
}
