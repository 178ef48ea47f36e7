//! Issue 16, item 4: a zip whose central directory announces millions of records is refused
//! from its footer, before the zip crate builds an index of them (which cost ~1 GiB).

use std::io::Write;

use crate::memory::{seeded_config, serve_binary, status_kib};

/// `n` minimal central-directory records (47 bytes each) behind one local header, with an
/// honest zip64 footer: 4 million of them make the 184 MB archive of the security review.
fn index_bomb(path: &std::path::Path, n: u64) -> u64 {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    w.write_all(b"PK\x03\x04").unwrap();
    w.write_all(&[0; 26]).unwrap();
    let offset = 30u64;
    let mut rec = [0u8; 47];
    rec[..4].copy_from_slice(b"PK\x01\x02");
    rec[28] = 1;
    rec[46] = b'a';
    for _ in 0..n {
        w.write_all(&rec).unwrap();
    }
    let size = n * 47;
    let mut e = Vec::new();
    e.extend_from_slice(b"PK\x06\x06");
    e.extend_from_slice(&44u64.to_le_bytes());
    e.extend_from_slice(&[0; 12]);
    e.extend_from_slice(&n.to_le_bytes());
    e.extend_from_slice(&n.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&offset.to_le_bytes());
    e.extend_from_slice(b"PK\x06\x07");
    e.extend_from_slice(&[0; 4]);
    e.extend_from_slice(&(offset + size).to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(b"PK\x05\x06");
    e.extend_from_slice(&[0; 4]);
    e.extend_from_slice(&[0xFF; 12]);
    e.extend_from_slice(&[0; 2]);
    w.write_all(&e).unwrap();
    w.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test]
async fn a_zip_of_four_million_records_is_refused_without_indexing_them() {
    let dir = tempfile::tempdir().unwrap();
    let (config, token) = seeded_config(dir.path());
    let (mut server, base) = serve_binary(&config);
    let pid = server.0.id();
    let archive = dir.path().join("bomb.zip");
    let size = index_bomb(&archive, 4_000_000);
    assert!(size > 180_000_000);
    let before = status_kib(pid, "VmRSS:");
    let res = crate::helpers::stream_upload(&base, &token, "big", &archive, size).await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_entries", "{body}");
    let peak = status_kib(pid, "VmHWM:");
    let growth_mb = peak.saturating_sub(before) / 1024;
    println!(
        "zip index bomb ({} MB, 4,000,000 records): server RSS before {} MiB, peak {} MiB, growth {growth_mb} MiB",
        size / 1_000_000,
        before / 1024,
        peak / 1024
    );
    assert!(growth_mb < 100, "memory grew by {growth_mb} MiB");
    assert!(server.terminate().success());
}
