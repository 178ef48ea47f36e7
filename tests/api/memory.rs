//! Streaming, not buffering: a 300 MB upload to the real binary keeps its memory bounded.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{cutover_bin, run_cli, ChildGuard};

/// Resident memory figures of a process, in KiB.
pub(crate) fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A plain tar of three 100 MB files of incompressible bytes, written straight to disk.
fn big_tar(path: &std::path::Path) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    let mut state = 0x2545F4914F6CDD1Du64;
    for i in 0..3 {
        let mut data = vec![0u8; 100 << 20];
        for chunk in data.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, format!("blob{i}.bin"), &data[..])
            .unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// Runs `cutover serve` on `config` as a child; returns it and its base URL once it is up.
pub(crate) fn serve_binary(config: &std::path::Path) -> (ChildGuard, String) {
    let mut cmd = Command::new(cutover_bin());
    cmd.arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = ChildGuard::spawn(cmd);
    let stdout = server.0.stdout.take().unwrap();
    let base = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map(|l| l.unwrap())
        .find_map(|l| {
            l.strip_prefix("Cutover is running at ")
                .map(|u| u.trim_end_matches('/').to_owned())
        })
        .expect("server started");
    (server, base)
}

/// A config, an admin `ci` with a token, and a site `big`: returns (config path, token).
pub(crate) fn seeded_config(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[apache]\nbinary = \"/nonexistent\"\n",
            dir.join("data")
        ),
    )
    .unwrap();
    let (ok, _, err) = run_cli(
        &config,
        &["user", "add", "ci", "--role", "admin", "--password-stdin"],
        Some("memory test passphrase 77\n"),
    );
    assert!(ok, "{err}");
    let (_, out, _) = run_cli(&config, &["token", "create", "ci"], None);
    let token = out.trim_end().lines().last().unwrap().to_owned();
    let (ok, _, err) = run_cli(
        &config,
        &["site", "add", "big", "--server-name", "big.example.test"],
        None,
    );
    assert!(ok, "{err}");
    (config, token)
}

#[tokio::test]
async fn a_300_mb_upload_keeps_the_server_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (config, token) = seeded_config(dir.path());
    let (mut server, base) = serve_binary(&config);
    let pid = server.0.id();

    let archive = dir.path().join("big.tar");
    let size = big_tar(&archive);
    assert!(size > 300_000_000);
    let before = status_kib(pid, "VmRSS:");
    let res = crate::helpers::stream_upload(&base, &token, "big", &archive, size).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let release: Value = res.json().await.unwrap();
    assert_eq!(release["files"], 3);
    let peak = status_kib(pid, "VmHWM:");
    let growth_mb = peak.saturating_sub(before) / 1024;
    println!(
        "server RSS before {} MiB, peak {} MiB, growth {growth_mb} MiB for a {} MB upload",
        before / 1024,
        peak / 1024,
        size / 1_000_000
    );
    assert!(
        growth_mb < 100,
        "memory grew by {growth_mb} MiB: the upload was buffered"
    );
    assert!(server.terminate().success());
}
