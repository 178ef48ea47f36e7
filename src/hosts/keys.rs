//! The console's own key pair (made with `ssh-keygen` at first use) and the host keys it
//! pins: scanned when a host is added, shown by fingerprint for an admin to confirm.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use tokio::io::AsyncWriteExt;

use super::ssh::restrict;
use super::ssh::Ssh;

impl Ssh {
    /// The private key (0600).
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The public key, made with `ssh-keygen` at first use.
    pub async fn public_key(&self) -> anyhow::Result<String> {
        let key = self.key_path();
        if !key.exists() {
            std::fs::create_dir_all(&self.dir)?;
            restrict(&self.dir, 0o700)?;
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let comment = format!("cutover@{}", host.trim());
            let out = tokio::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f"])
                .arg(&key)
                .stdin(Stdio::null())
                .output()
                .await
                .context("running ssh-keygen (install openssh-client)")?;
            anyhow::ensure!(
                out.status.success(),
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            restrict(&key, 0o600)?;
        }
        let public = std::fs::read_to_string(key.with_extension("pub"))?;
        Ok(public.trim().to_owned())
    }

    /// The `authorized_keys` line for a host: our key with `restrict` (no forwarding, no pty,
    /// no ~/.ssh/rc), which still lets commands and rsync run.
    pub async fn authorized_keys_line(&self) -> anyhow::Result<String> {
        Ok(format!("restrict {}", self.public_key().await?))
    }

    /// The host's keys as it offers them now: (`type base64`, fingerprint), ed25519 first.
    pub async fn scan(&self, address: &str, port: u16) -> anyhow::Result<(String, String)> {
        let bare = address.trim_start_matches('[').trim_end_matches(']');
        let secs = self.timeout.as_secs().clamp(1, 60).to_string();
        let out = tokio::process::Command::new("ssh-keyscan")
            .args([
                "-T",
                &secs,
                "-t",
                "ed25519,ecdsa,rsa",
                "-p",
                &port.to_string(),
                "--",
                bare,
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .context("running ssh-keyscan (install openssh-client)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut keys: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut w = l.split_whitespace().skip(1);
                Some(format!("{} {}", w.next()?, w.next()?))
            })
            .collect();
        keys.sort_by_key(|k| !k.starts_with("ssh-ed25519"));
        let key = keys.into_iter().next().with_context(|| {
            format!("{address}:{port} offered no SSH host key (is sshd running there?)")
        })?;
        Ok((key.clone(), fingerprint(&key).await?))
    }
}

/// `ssh-keygen -lf -` of one `type base64` key: `SHA256:…`.
pub async fn fingerprint(key: &str) -> anyhow::Result<String> {
    let mut child = tokio::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running ssh-keygen")?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(format!("{key}\n").as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .map(str::to_owned)
        .context("ssh-keygen could not read the host key")
}
