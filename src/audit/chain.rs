//! The hash chain: what a row's hash covers and how it links to the row before.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields a row's hash covers, in a fixed order.
pub(crate) struct Canonical<'a> {
    pub id: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub action: &'a str,
    pub site: Option<&'a str>,
    pub release: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: &'a str,
    pub request_id: Option<&'a str>,
}

impl Canonical<'_> {
    /// SHA-256(prev ‖ canonical JSON array of the fields), as hex.
    pub fn chain_hash(&self, prev_hash: &str) -> String {
        let bytes = serde_json::to_vec(&(
            self.id,
            self.at,
            self.actor,
            self.ip,
            self.user_agent,
            self.action,
            self.site,
            self.release,
            self.outcome,
            self.detail,
            self.request_id,
        ))
        .expect("serialising plain values cannot fail");
        let mut h = Sha256::new();
        h.update(prev_hash.as_bytes());
        h.update(&bytes);
        hex::encode(h.finalize())
    }
}
