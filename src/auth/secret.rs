//! Random secrets (session ids, API tokens) and the hashes they are stored as.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// 32 random bytes from the OS, as URL-safe base64 (256 bits: well above the 128 required).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A password of `len` characters from an alphabet without look-alikes, for first-run accounts.
pub fn random_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(len);
    let mut byte = [0u8; 1];
    while out.len() < len {
        getrandom::fill(&mut byte).expect("the operating system's random source failed");
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - (256 % ALPHABET.len());
        if (byte[0] as usize) < limit {
            out.push(ALPHABET[byte[0] as usize % ALPHABET.len()] as char);
        }
    }
    out
}

/// SHA-256 of a secret under a purpose label, so a session id can never pass as a token hash.
pub fn hash_secret(purpose: &str, secret: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update([0u8]);
    h.update(secret.as_bytes());
    h.finalize().to_vec()
}

/// Compares two secrets without an early exit (by comparing their hashes).
pub fn same_secret(a: &str, b: &str) -> bool {
    let (ha, hb) = (hash_secret("cmp", a), hash_secret("cmp", b));
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use crate::auth::secret::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same_secret(&a, &a.clone()) && !same_secret(&a, &b));
        assert_ne!(hash_secret("session", &a), hash_secret("token", &a));
    }

    #[test]
    fn passwords_use_the_alphabet() {
        let p = random_password(20);
        assert_eq!(p.len(), 20);
        assert!(p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"0O1lI".contains(c)));
    }
}
