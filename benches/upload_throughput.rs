//! upload_throughput: a generated `.tar.gz` uploaded through the API until the release is
//! ready (the 201 answer comes once it is checked, extracted, synced and recorded), beside
//! `tar -xzf` of the same file into a fresh folder; and the console's peak resident memory
//! during the upload, read from `/proc` of the `cutover serve` process. Two sizes: 50 MB /
//! 5,000 files and 200 MB / 20,000 files, to show whether memory grows with the archive.
//!
//! File contents are pseudo-random (like the images and fonts that make up most of a site's
//! bytes), so the archive is about as large as what it unpacks to. MB = 10^6 bytes.
//! Each size runs five times, Cutover and tar alternating; medians decide, best runs are shown too.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{median, mib, BenchDir, RssSampler, Server};
use cutover::auth::Role;
use serde_json::json;

const SITE: &str = "up";
/// (archive size in MB, files).
const SIZES: [(u64, u64); 2] = [(50, 5_000), (200, 20_000)];
/// Runs per size (medians are reported: the machine is shared and noisy).
const TRIALS: usize = 5;

/// Writes the archive: `files` files of ~`total / files` bytes in 100 folders, plus an
/// index.html. Returns its size in bytes.
fn generate(path: &Path, total: u64, files: u64) -> anyhow::Result<u64> {
    let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    // gzip's default level, as `tar -czf` uses.
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mean = total / files;
    let exts = ["jpg", "png", "woff2", "webp", "js"];
    for i in 0..files {
        // Sizes spread from 0.2× to 1.8× the mean, deterministically.
        let size = (mean / 5 + (i * 7919 % 1000) * mean * 16 / 10 / 1000) as usize;
        let name = if i == 0 {
            "index.html".to_owned()
        } else {
            format!("assets/d{:03}/f{i:06}.{}", i % 100, exts[(i % 5) as usize])
        };
        let data = common::noise(i + 1, size);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, &name, &data[..])?;
    }
    let mut out = tar.into_inner()?.finish()?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

struct Run {
    mb: f64,
    files: u64,
    upload_s: Vec<f64>,
    tar_s: Vec<f64>,
    sync_s: Vec<f64>,
    /// Of the trial with the largest growth.
    rss_before_kib: u64,
    peak_kib: u64,
}

impl Run {
    fn growth_mib(&self) -> f64 {
        mib(self.peak_kib.saturating_sub(self.rss_before_kib))
    }
    fn upload(&self) -> f64 {
        median(&self.upload_s)
    }
    fn tar(&self) -> f64 {
        median(&self.tar_s)
    }
    fn ratio(&self) -> f64 {
        self.upload() / self.tar()
    }
    fn best_ratio(&self) -> f64 {
        let min = |v: &[f64]| v.iter().cloned().fold(f64::INFINITY, f64::min);
        min(&self.upload_s) / min(&self.tar_s)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_by_cargo_bench("upload_throughput") {
        return Ok(());
    }
    common::stop_everything_on_ctrl_c();
    common::heading("upload_throughput");
    let started = Instant::now();
    let dir = BenchDir::new("upload");
    // No Apache: uploading does not involve it.
    let mut settings = common::settings(dir.path(), false);
    common::seed_users(&settings, &[("bench", Role::Admin)]).await?;
    let token = common::token(&settings, "bench").await?;
    let server = Server::start(dir.path(), &mut settings).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(240))
        .build()?;
    let (status, body) = common::post_json(
        &http,
        &format!("{}/api/v1/sites", server.base),
        &token,
        Some(json!({"name": SITE, "server_name": "up.bench.test"})),
    )
    .await?;
    anyhow::ensure!(status == 201, "creating the site: {status} {body}");
    let pid = server.pid();
    let can_reset = common::reset_peak(pid);
    let rss_at_start = common::rss_kib(pid).unwrap_or(0);

    let mut runs = Vec::new();
    for (mb, files) in SIZES {
        let archive = dir.path().join(format!("site-{mb}MB.tar.gz"));
        let t = Instant::now();
        let bytes = generate(&archive, mb * 1_000_000, files)?;
        println!(
            "\n-- {:.1} MB archive, {files} files (generated in {:.1} s); {TRIALS} trials, Cutover and tar alternating",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        let data = std::fs::read(&archive)?;
        let mut run = Run {
            mb: bytes as f64 / 1e6,
            files,
            upload_s: Vec::new(),
            tar_s: Vec::new(),
            sync_s: Vec::new(),
            rss_before_kib: 0,
            peak_kib: 0,
        };
        for trial in 1..=TRIALS {
            // Cutover: POST the archive; the 201 means the release is ready.
            let rss_before = common::rss_kib(pid).unwrap_or(0);
            common::reset_peak(pid);
            let form = reqwest::multipart::Form::new().part(
                "archive",
                reqwest::multipart::Part::bytes(data.clone())
                    .file_name(format!("site-{mb}MB.tar.gz")),
            );
            // Each timed step starts with nothing dirty waiting to be written back.
            std::process::Command::new("sync").status()?;
            let sampler = RssSampler::start(pid);
            let t = Instant::now();
            let res = http
                .post(format!("{}/api/v1/sites/{SITE}/releases", server.base))
                .bearer_auth(&token)
                .multipart(form)
                .send()
                .await?;
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let upload_s = t.elapsed().as_secs_f64();
            let sampled = sampler.finish();
            let hwm = if can_reset {
                common::peak_kib(pid).unwrap_or(0)
            } else {
                0
            };
            anyhow::ensure!(status == 201, "upload: {status} {body}");
            anyhow::ensure!(
                body["files"].as_u64() == Some(files),
                "the release has {} files, not {files}",
                body["files"]
            );
            // Deleted again, so the next trial's identical archive is not refused as a duplicate.
            let res = http
                .delete(format!(
                    "{}/api/v1/sites/{SITE}/releases/{}",
                    server.base,
                    body["id"].as_str().unwrap_or_default()
                ))
                .bearer_auth(&token)
                .send()
                .await?;
            anyhow::ensure!(res.status().is_success(), "delete: {}", res.status());

            // The floor: tar -xzf into a fresh folder (then, separately, sync).
            let dest = dir.path().join(format!("tar-{mb}-{trial}"));
            std::fs::create_dir(&dest)?;
            std::process::Command::new("sync").status()?;
            let t = Instant::now();
            let st = std::process::Command::new("tar")
                .arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&dest)
                .status()?;
            let tar_s = t.elapsed().as_secs_f64();
            anyhow::ensure!(st.success(), "tar -xzf failed");
            let t = Instant::now();
            std::process::Command::new("sync").status()?;
            let sync_s = t.elapsed().as_secs_f64();
            std::fs::remove_dir_all(&dest)?;

            let peak = hwm.max(sampled);
            println!(
                "   trial {trial}: Cutover {upload_s:5.2} s ({:5.1} MB/s) | tar -xzf {tar_s:5.2} s ({:5.1} MB/s), sync after it {sync_s:.2} s | \
                 console RSS {:.1} → peak {:.1} MiB (VmHWM {}, sampled {:.1})",
                run.mb / upload_s,
                run.mb / tar_s,
                mib(rss_before),
                mib(peak),
                if can_reset { format!("{:.1}", mib(hwm)) } else { "n/a".into() },
                mib(sampled),
            );
            if peak.saturating_sub(rss_before) >= run.peak_kib.saturating_sub(run.rss_before_kib) {
                run.rss_before_kib = rss_before;
                run.peak_kib = peak;
            }
            run.upload_s.push(upload_s);
            run.tar_s.push(tar_s);
            run.sync_s.push(sync_s);
        }
        std::fs::remove_file(&archive)?;
        println!(
            "   medians: Cutover upload → ready {:.2} s ({:.1} MB/s); tar -xzf {:.2} s ({:.1} MB/s); tar + sync {:.2} s",
            run.upload(),
            run.mb / run.upload(),
            run.tar(),
            run.mb / run.tar(),
            run.tar() + median(&run.sync_s)
        );
        println!(
            "   ratio {:.2} (vs tar + sync {:.2}; best run vs best run {:.2}); console memory growth (worst trial) {:.1} MiB",
            run.ratio(),
            run.upload() / (run.tar() + median(&run.sync_s)),
            run.best_ratio(),
            run.growth_mib()
        );
        runs.push(run);
    }

    let rss_at_end = common::rss_kib(pid).unwrap_or(0);
    println!(
        "\n   console RSS before the first upload {:.1} MiB, after the last {:.1} MiB",
        mib(rss_at_start),
        mib(rss_at_end)
    );
    let ratio_ok = runs.iter().all(|r| r.ratio() <= 1.3);
    let mem_ok = runs.iter().all(|r| r.growth_mib() < 100.0);
    println!();
    println!(
        "   target ratio ≤ 1.3: {}; memory growth < 100 MB at both sizes: {}",
        common::verdict(ratio_ok),
        common::verdict(mem_ok)
    );
    println!("   took {:.0} s", started.elapsed().as_secs_f64());
    let line: Vec<String> = runs
        .iter()
        .map(|r| {
            format!(
                "{:.0} MB/{} files: {:.2} s ({:.0} MB/s) vs tar {:.2} s, ratio {:.2} (best {:.2}), memory +{:.1} MiB",
                r.mb,
                r.files,
                r.upload(),
                r.mb / r.upload(),
                r.tar(),
                r.ratio(),
                r.best_ratio(),
                r.growth_mib()
            )
        })
        .collect();
    println!(
        "SUMMARY upload_throughput: {} — ratio target {}, memory target {}",
        line.join(" | "),
        common::verdict(ratio_ok),
        common::verdict(mem_ok)
    );
    drop(server);
    Ok(())
}
