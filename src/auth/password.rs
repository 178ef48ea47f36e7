//! Passwords: the rules, and argon2id hashing off the async threads with a cap on concurrency.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane. Kept in each PHC string.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Shortest password accepted, in characters.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted, in characters (far above 128; nothing is truncated).
pub const MAX_CHARS: usize = 1024;

/// Common passwords of 12+ characters: those of zxcvbn's 30,000-entry frequency list (MIT,
/// from leaked-password corpora) plus its 3,000 most common entries doubled or with the usual
/// suffixes ("123", "!", a year…). Shorter ones are refused by length already.
static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("common-passwords.txt").lines().collect());

/// A password in memory; `Debug` never prints it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a typed password without checking it (log-in uses this).
    pub fn new(raw: String) -> Self {
        Self(raw)
    }

    /// The characters, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Checks a new password against the rules: length, not common, not the user name.
/// No composition rules (NIST SP 800-63B): length and rarity are what matter.
pub fn check_rules(password: &Password, user_name: &str) -> Result<(), String> {
    let pw = password.expose();
    let chars = pw.chars().count();
    if chars < MIN_CHARS {
        return Err(format!(
            "The password is too short ({chars} characters): use at least {MIN_CHARS}. \
             A few unrelated words make a strong one that is easy to type."
        ));
    }
    if chars > MAX_CHARS {
        return Err(format!(
            "The password is longer than {MAX_CHARS} characters."
        ));
    }
    let lower = pw.to_lowercase();
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if COMMON.contains(lower.as_str())
        || lower.contains(&user_name.to_lowercase())
        || distinct.len() < 4
    {
        return Err(
            "This password is too easy to guess (it is a common password, repeats \
                    a few characters, or contains the user name). Choose another."
                .into(),
        );
    }
    Ok(())
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, or no such user.
    Wrong,
    /// Right password; the hash is current.
    Right,
    /// Right password, but the stored hash is weaker than today's parameters: store this one.
    RightRehashed(String),
}

/// Hashes and verifies passwords on the blocking pool, a few at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Verified against when the user does not exist, so the answer takes as long.
    dummy_hash: Arc<String>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)
        // getrandom::Error is not a std error here: its words are kept instead.
        .map_err(|e| anyhow::anyhow!("reading random bytes for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::Error::new(e).context("salt"))?;
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::Error::new(e).context("hashing a password"))?
        .to_string())
}

fn is_current(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm.as_str() == "argon2id"
        && params.m_cost() >= M_COST_KIB
        && params.t_cost() >= T_COST
}

fn verify_blocking(password: &str, stored: &str) -> anyhow::Result<Verdict> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| anyhow::Error::new(e).context("stored hash"))?;
    // Verify with the parameters in the PHC string, whatever they are (old hashes still work).
    if Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Ok(Verdict::Wrong);
    }
    if is_current(&parsed) {
        Ok(Verdict::Right)
    } else {
        Ok(Verdict::RightRehashed(hash_blocking(password)?))
    }
}

impl Hasher {
    /// `concurrency` hashes at most run at once (each takes 19 MiB and a core for ~30 ms).
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_blocking(&crate::auth::secret::random_token())?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::new(dummy),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hasher closed")?;
        crate::blocking::spawn(job)
            .await
            .context("password hashing task failed")?
    }

    /// A new argon2id hash (PHC string) of `password`.
    pub async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let pw = password.expose().to_owned();
        self.run(move || hash_blocking(&pw)).await
    }

    /// Checks `password` against `stored`; with `None` (unknown user) it does the same work
    /// against a dummy hash and answers `Wrong`.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> anyhow::Result<Verdict> {
        let pw = password.expose().to_owned();
        let (hash, known) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.as_str().to_owned(), false),
        };
        let verdict = self.run(move || verify_blocking(&pw, &hash)).await?;
        Ok(if known { verdict } else { Verdict::Wrong })
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::password::*;

    fn pw(s: &str) -> Password {
        Password::new(s.into())
    }

    #[test]
    fn rules_accept_long_rare_passwords_only() {
        assert!(check_rules(&pw("violet staple orbit canyon"), "alice").is_ok());
        assert!(check_rules(&pw("short"), "alice")
            .unwrap_err()
            .contains("at least 12"));
        assert!(check_rules(&pw("password1234"), "alice").is_err());
        assert!(check_rules(&pw("Qwerty123456"), "alice").is_err());
        assert!(check_rules(&pw("aaaaaaaaaaaaaaaa"), "alice").is_err());
        assert!(check_rules(&pw("alice-the-great-one"), "alice").is_err());
        assert!(check_rules(&pw(&"x1y2".repeat(300)), "a").is_err());
        // 128 characters and more are fine, and not truncated (checked in the hash test).
        assert!(check_rules(&pw(&"abcdefgh".repeat(16)), "alice").is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_weak_ones_are_upgraded() {
        let hasher = Hasher::new(2).unwrap();
        let long = "correct horse ".repeat(12); // 168 characters
        let h = hasher.hash(&pw(&long)).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(
            hasher.verify(&pw(&long), Some(&h)).await.unwrap(),
            Verdict::Right
        );
        // A password that differs only after character 128 must not match.
        let mut other = long.clone();
        other.push('!');
        assert_eq!(
            hasher.verify(&pw(&other), Some(&h)).await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            hasher.verify(&pw(&long), None).await.unwrap(),
            Verdict::Wrong
        );

        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(
            b"some long password",
            &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
        )
        .unwrap()
        .to_string();
        match hasher
            .verify(&pw("some long password"), Some(&weak))
            .await
            .unwrap()
        {
            Verdict::RightRehashed(new) => assert!(new.contains("m=19456,t=2")),
            v => panic!("weak hash not upgraded: {v:?}"),
        }
    }
}
