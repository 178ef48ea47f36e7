//! Log-in throttling by account and by source address: growing delays, never a lock-out.
//!
//! After a few free failures each further failure doubles the wait before the next attempt,
//! up to a cap. The account cap is short (30 s) so that an attacker hammering the on-call
//! person's account can delay them by seconds, never lock them out. Counters live in memory:
//! a restart forgets them, which only ever helps the legitimate user.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failures allowed before any delay.
const FREE_FAILURES: u32 = 3;
/// Longest wait imposed on one account.
const ACCOUNT_CAP: Duration = Duration::from_secs(30);
/// Longest wait imposed on one source address (which may try many accounts).
const ADDRESS_CAP: Duration = Duration::from_secs(120);
/// Failures older than this are forgotten.
const MEMORY: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, forgotten entries are pruned.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Hash, PartialEq, Eq, Clone, Debug)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// Shared throttle state.
#[derive(Clone, Default)]
pub struct Throttle {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
}

fn delay(failures: u32, cap: Duration) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = (failures - FREE_FAILURES).min(16);
    Duration::from_secs(1u64 << exp).min(cap)
}

impl Throttle {
    fn keys(account: &str, ip: IpAddr) -> [(Key, Duration); 2] {
        [
            (Key::Account(account.to_lowercase()), ACCOUNT_CAP),
            (Key::Address(ip), ADDRESS_CAP),
        ]
    }

    /// How long this attempt must still wait, or `None` if it may go ahead now.
    pub fn wait_needed(&self, account: &str, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let entries = self.entries.lock().expect("throttle lock");
        Self::keys(account, ip)
            .into_iter()
            .filter_map(|(key, cap)| {
                let e = entries.get(&key)?;
                let until = e.last + delay(e.failures, cap);
                (until > now).then(|| until - now)
            })
            .max()
    }

    /// Admits an attempt now, or says how long to wait. An admitted attempt is counted as a
    /// failure at once (a success clears it): checking and counting under one lock means
    /// thirty simultaneous guesses cannot all slip in before the first is counted.
    pub fn try_attempt(&self, account: &str, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("throttle lock");
        let wait = Self::keys(account, ip)
            .into_iter()
            .filter_map(|(key, cap)| {
                let e = entries.get(&key)?;
                let until = e.last + delay(e.failures, cap);
                (until > now).then(|| until - now)
            })
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        Self::count(&mut entries, account, ip, now);
        Ok(())
    }

    fn count(entries: &mut HashMap<Key, Entry>, account: &str, ip: IpAddr, now: Instant) {
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, e| now.duration_since(e.last) < MEMORY);
        }
        for (key, _) in Self::keys(account, ip) {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
            });
            if now.duration_since(e.last) >= MEMORY {
                e.failures = 0;
            }
            e.failures += 1;
            e.last = now;
        }
    }

    /// Counts a failed attempt against the account and the address.
    pub fn failed(&self, account: &str, ip: IpAddr) {
        let mut entries = self.entries.lock().expect("throttle lock");
        Self::count(&mut entries, account, ip, Instant::now());
    }

    /// A successful log-in clears the account's and the address's record.
    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        let mut entries = self.entries.lock().expect("throttle lock");
        for (key, _) in Self::keys(account, ip) {
            entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::throttle::*;

    #[test]
    fn simultaneous_attempts_are_counted_before_they_are_checked() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let admitted = (0..30)
            .filter(|_| t.try_attempt("admin", ip).is_ok())
            .count();
        assert_eq!(
            admitted, FREE_FAILURES as usize,
            "only the free attempts get through at once"
        );
        t.succeeded("admin", ip);
        assert!(t.try_attempt("admin", ip).is_ok());
    }

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay(2, ACCOUNT_CAP), Duration::ZERO);
        assert_eq!(delay(3, ACCOUNT_CAP), Duration::from_secs(1));
        assert_eq!(delay(5, ACCOUNT_CAP), Duration::from_secs(4));
        assert_eq!(delay(40, ACCOUNT_CAP), ACCOUNT_CAP);
        assert_eq!(delay(40, ADDRESS_CAP), ADDRESS_CAP);
    }

    #[test]
    fn failures_throttle_account_and_address_until_success() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(t.wait_needed("Alice", ip).is_none());
            t.failed("Alice", ip);
        }
        assert!(t.wait_needed("alice", ip).is_some());
        // The same account from elsewhere is slowed too, and so is this address for others.
        assert!(t.wait_needed("alice", other).is_some());
        assert!(t.wait_needed("bob", ip).is_some());
        assert!(t.wait_needed("bob", other).is_none());
        t.succeeded("alice", ip);
        assert!(t.wait_needed("alice", ip).is_none());
    }
}
