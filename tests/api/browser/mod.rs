//! Browser tests: Debian's headless Chromium, driven through chromedriver, against the real
//! console and its private Apache. Log in → upload → go live → roll back at a phone's and a
//! desktop's size (and once more with JavaScript off), checking every page on the way and
//! saving a screenshot of each step under `target/screenshots/<viewport>/`.

mod checks;
mod driver;
mod journey;
mod steps;

use driver::{DESKTOP, PHONE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_390_release_and_roll_back() {
    journey::release_and_roll_back(PHONE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_1280_release_and_roll_back() {
    journey::release_and_roll_back(DESKTOP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_without_javascript_goes_live_and_rolls_back() {
    journey::without_javascript(PHONE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_390_sees_a_step_s_output_while_it_runs() {
    steps::output_appears_while_a_step_runs().await;
}
