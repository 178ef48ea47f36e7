//! Anonymous refusals (a made-up token, a form without its CSRF token, a wrong password, an
//! oversized request) are what anyone on the network can produce at will. Recording each as a
//! row let one client grow the log without limit and hold the write lock that going live needs.
//!
//! So, per interval ([`WINDOW`]), each source (an IPv4 address, or an IPv6 /64: one host owns
//! a whole /64) gets its first [`PER_SOURCE`] refusals of each kind recorded as they happen;
//! further ones are only counted in memory and written as **one** event per source and kind
//! when the interval ends (`detail.repeated` = how many, with the first one's detail as a
//! sample). Past [`INDIVIDUAL_PER_WINDOW`] individual rows in an interval, or
//! [`MAX_SOURCES`] sources, every further refusal is counted under the source `*`. The log's
//! growth from anonymous clients is thus bounded per interval whatever they send.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::SqlitePool;

use super::event::{now_text, record, record_alone, Event, Outcome, Source};

/// The interval over which repeated refusals are counted into one event.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Refusals of one kind from one source recorded one by one per interval.
pub const PER_SOURCE: u32 = 3;
/// Rows written one by one per interval for all anonymous sources together.
pub const INDIVIDUAL_PER_WINDOW: u32 = 200;
/// Sources counted separately per interval; more share the source `*`.
pub const MAX_SOURCES: usize = 10_000;

#[derive(Hash, PartialEq, Eq, Clone)]
struct Key {
    action: String,
    outcome: &'static str,
    source: String,
}

struct Bucket {
    outcome: Outcome,
    recorded: u32,
    repeated: u64,
    first_at: String,
    last_at: String,
    sample: Option<Value>,
    user_agent: Option<String>,
}

#[derive(Default)]
struct State {
    individual: u32,
    buckets: HashMap<Key, Bucket>,
}

/// The counter of anonymous refusals, shared by the web layer and log-in.
#[derive(Clone, Default)]
pub struct Refusals {
    state: Arc<Mutex<State>>,
}

/// The source an anonymous refusal is counted under.
pub fn source_key(ip: Option<&str>) -> String {
    match ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().expect("mapped").to_string(),
        Some(v4) => v4.to_string(),
        None => "unknown".into(),
    }
}

impl Refusals {
    /// Records an anonymous refusal now, or counts it for the interval's summary event.
    pub async fn record(&self, pool: &SqlitePool, event: Event) -> anyhow::Result<()> {
        let write_now = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let mut key = Key {
                action: event.action.clone(),
                outcome: event.outcome.as_str(),
                source: source_key(event.source.ip.as_deref()),
            };
            let full = st.individual >= INDIVIDUAL_PER_WINDOW;
            if !st.buckets.contains_key(&key) && (full || st.buckets.len() >= MAX_SOURCES) {
                key.source = "*".into();
            }
            let now = now_text();
            let bucket = st.buckets.entry(key).or_insert_with(|| Bucket {
                outcome: event.outcome,
                recorded: 0,
                repeated: 0,
                first_at: now.clone(),
                last_at: now.clone(),
                sample: None,
                user_agent: None,
            });
            if bucket.recorded < PER_SOURCE && !full {
                bucket.recorded += 1;
                st.individual += 1;
                true
            } else {
                if bucket.repeated == 0 {
                    bucket.first_at = now.clone();
                    bucket.sample = Some(event.detail.clone());
                    bucket.user_agent = event.source.user_agent.clone();
                }
                bucket.repeated += 1;
                bucket.last_at = now;
                false
            }
        };
        if write_now {
            record_alone(pool, &event).await?;
        }
        Ok(())
    }

    /// Ends the interval: writes one event per source and kind that had refusals beyond the
    /// ones recorded, in one transaction, and starts counting afresh.
    pub async fn flush(&self, pool: &SqlitePool) -> anyhow::Result<usize> {
        let buckets = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *st).buckets
        };
        let summaries: Vec<_> = buckets
            .into_iter()
            .filter(|(_, b)| b.repeated > 0)
            .collect();
        if summaries.is_empty() {
            return Ok(0);
        }
        let mut tx = crate::db::begin_write(pool).await?;
        for (key, b) in &summaries {
            let source = Source {
                ip: Some(key.source.clone()),
                user_agent: b.user_agent.clone(),
                request_id: None,
            };
            let event = Event::new("anonymous", &key.action, b.outcome)
                .source(&source)
                .detail(json!({
                    "repeated": b.repeated,
                    "first_at": b.first_at,
                    "last_at": b.last_at,
                    "window_seconds": WINDOW.as_secs(),
                    "sample": b.sample,
                }));
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(summaries.len())
    }

    /// Flushes every [`WINDOW`] until the task is dropped.
    pub async fn run(self, pool: SqlitePool) {
        let mut tick = tokio::time::interval(WINDOW);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.flush(&pool).await {
                tracing::warn!(error = ?e, "could not record the repeated refusals");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::flood::*;

    #[test]
    fn ipv6_hosts_are_counted_by_their_64() {
        assert_eq!(
            source_key(Some("2001:db8:1:2:3:4:5:6")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(source_key(Some("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(source_key(Some("192.0.2.7")), "192.0.2.7");
        assert_eq!(source_key(None), "unknown");
    }
}
