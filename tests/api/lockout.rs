//! Issue 16, item 2: attackers guessing an account cannot keep its owner out, and people
//! logging in at once from one address are not refused for each other's attempts.

use std::time::{Duration, Instant};

use cutover::auth::Role;

use crate::helpers::{spawn_app, Browser};

/// A browser whose connections come from `local` (any 127.x.y.z reaches our 127.0.0.1).
fn browser_from(base: &str, local: &str) -> Browser {
    Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(Some(local.parse().unwrap()))
            .build()
            .unwrap(),
        base: base.to_owned(),
    }
}

#[tokio::test]
async fn the_owner_gets_in_while_five_addresses_guess_the_account() {
    let app = spawn_app().await;
    const ATTACK: Duration = Duration::from_secs(8);
    let started = Instant::now();
    let attackers: Vec<_> = (2..=6)
        .map(|i| {
            let b = browser_from(&app.base, &format!("127.0.0.{i}"));
            tokio::spawn(async move {
                let (mut checked, mut throttled) = (0u32, 0u32);
                // Bounded in count and time.
                for n in 0..2_000 {
                    if started.elapsed() > ATTACK {
                        break;
                    }
                    match b
                        .login("admin", &format!("guess number {n} {i}"))
                        .await
                        .status()
                        .as_u16()
                    {
                        401 => checked += 1,
                        429 => throttled += 1,
                        s => panic!("a guess answered {s}"),
                    }
                }
                (checked, throttled)
            })
        })
        .collect();
    // Half-way through the attack, the real admin logs in from a sixth address.
    tokio::time::sleep(ATTACK / 2).await;
    let owner = browser_from(&app.base, "127.0.0.7");
    let res = owner.login("admin", &app.admin_password).await;
    assert_eq!(
        res.status(),
        303,
        "the owner was refused while under attack"
    );
    let mut checked = 0;
    let mut throttled = 0;
    for a in attackers {
        let (c, t) = a.await.unwrap();
        checked += c;
        throttled += t;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "5 addresses guessing 'admin' for {secs:.1} s: {checked} passwords checked ({:.2}/s for the account), {throttled} refused with 429",
        checked as f64 / secs
    );
    assert!(throttled > 0, "the attack was throttled at all");
    // One free guess per fresh address (3 at most), then the account's doubling delay.
    assert!(
        checked <= 5 * 3 + 8,
        "{checked} guesses checked in {secs:.1} s"
    );
}

#[tokio::test]
async fn twenty_people_behind_one_address_log_in_at_once() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..20 {
        let name = format!("office{i:02}");
        let pw = app.add_user(&name, Role::Viewer).await;
        users.push((name, pw));
    }
    // The log-in forms next (quickly, after every account exists: a connection left idle
    // past the server's keep-alive time while accounts are hashed would be closed under the
    // POST), so the POSTs really arrive together.
    let mut people = Vec::new();
    for (name, pw) in users {
        let b = app.browser();
        let form = b.page("/login").await;
        people.push((b, name, pw, crate::helpers::csrf_in(&form)));
    }
    let answers =
        futures_util::future::join_all(people.iter().map(|(b, name, pw, token)| async move {
            b.post_form(
                "/login",
                &[("csrf_token", token), ("user_name", name), ("password", pw)],
            )
            .await
        }))
        .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 303), "{statuses:?}");
}
