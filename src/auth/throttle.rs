//! Log-in throttling: growing delays, never a lock-out, and never for someone else's guesses.
//!
//! Three records, each a count of failures and the time of the last one:
//! - the **address** (any account from that source): after a few free failures, a doubling
//!   wait before its next attempt, up to 2 minutes;
//! - the **account from that address**: the same, up to 30 s; attempts still in flight count
//!   here, so thirty simultaneous guesses from one place cannot all slip in;
//! - the **account** from everywhere: up to 30 s, but only for sources that have failed
//!   recently themselves. A source with a clean record has its password checked even while the
//!   account is under attack, so an attacker cannot keep the real owner out; each fresh
//!   address buys an attacker a few guesses at most, after which its attempts are counted
//!   against (and held back by) the account again, one at a time.
//!
//! Attempts in flight never count against the address, so twenty people behind one NAT
//! logging in at once all get their password checked. Counters live in memory: a restart
//! forgets them, which only ever helps the legitimate user.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
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
    Pair(String, IpAddr),
}

#[derive(Clone, Copy)]
struct Entry {
    failures: u32,
    /// Admitted attempts not yet decided.
    pending: u32,
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

/// An admitted attempt. Say how it ended with [`Attempt::failed`] or [`Attempt::succeeded`];
/// dropped undecided (the request was cut off mid-check), it counts as a failure.
pub struct Attempt {
    throttle: Throttle,
    account: String,
    ip: IpAddr,
    /// Whether it was counted against the account (the source was not clean).
    on_account: bool,
    decided: bool,
}

impl Attempt {
    /// The password was wrong (or the account unusable).
    pub fn failed(mut self) {
        self.decided = true;
        self.throttle.finish(&self, false);
    }

    /// The log-in succeeded: this source's records are cleared.
    pub fn succeeded(mut self) {
        self.decided = true;
        self.throttle.finish(&self, true);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.decided {
            self.throttle.finish(self, false);
        }
    }
}

impl Throttle {
    fn wait(
        entries: &HashMap<Key, Entry>,
        key: &Key,
        cap: Duration,
        with_pending: bool,
        now: Instant,
    ) -> Option<Duration> {
        let e = entries.get(key)?;
        if now.duration_since(e.last) >= MEMORY && e.pending == 0 {
            return None;
        }
        let n = e.failures + if with_pending { e.pending } else { 0 };
        let until = e.last + delay(n, cap);
        (until > now).then(|| until - now)
    }

    /// Admits an attempt now, or says how long to wait.
    pub fn try_attempt(&self, account: &str, ip: IpAddr) -> Result<Attempt, Duration> {
        let account = account.to_lowercase();
        let now = Instant::now();
        // A panic elsewhere while this was held leaves plain counters: keep using them rather
        // than failing every later log-in.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (addr, pair, acct) = (
            Key::Address(ip),
            Key::Pair(account.clone(), ip),
            Key::Account(account.clone()),
        );
        let fresh = |k: &Key| {
            entries
                .get(k)
                .is_some_and(|e| e.failures > 0 && now.duration_since(e.last) < MEMORY)
        };
        let on_account = fresh(&addr) || fresh(&pair);
        let waits = [
            Self::wait(&entries, &addr, ADDRESS_CAP, false, now),
            Self::wait(&entries, &pair, ACCOUNT_CAP, true, now),
            on_account
                .then(|| Self::wait(&entries, &acct, ACCOUNT_CAP, true, now))
                .flatten(),
        ];
        if let Some(wait) = waits.into_iter().flatten().max() {
            return Err(wait);
        }
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, e| e.pending > 0 || now.duration_since(e.last) < MEMORY);
        }
        let mut admit = |key: Key| {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                pending: 0,
                last: now,
            });
            e.pending += 1;
            e.last = now;
        };
        admit(pair);
        if on_account {
            admit(acct);
        }
        Ok(Attempt {
            throttle: self.clone(),
            account,
            ip,
            on_account,
            decided: false,
        })
    }

    fn finish(&self, a: &Attempt, success: bool) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let pair = Key::Pair(a.account.clone(), a.ip);
        let acct = Key::Account(a.account.clone());
        for key in [&pair, &acct] {
            if key == &acct && !a.on_account {
                continue;
            }
            if let Some(e) = entries.get_mut(key) {
                e.pending = e.pending.saturating_sub(1);
            }
        }
        if success {
            // The account's own record stays: other sources' guesses are not forgiven.
            entries.remove(&pair);
            entries.remove(&Key::Address(a.ip));
            return;
        }
        for key in [pair, acct, Key::Address(a.ip)] {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                pending: 0,
                last: now,
            });
            if now.duration_since(e.last) >= MEMORY {
                e.failures = 0;
            }
            e.failures += 1;
            e.last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::auth::throttle::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_panic_while_counting_does_not_break_every_later_log_in() {
        let t = Throttle::default();
        let poisoner = t.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.entries.lock().unwrap();
            panic!("a bug while the counters were held");
        })
        .join();
        assert!(t.entries.is_poisoned());
        // The counters are plain numbers: still meaningful after a panic elsewhere.
        t.try_attempt("admin", ip("192.0.2.7")).unwrap().succeeded();
    }

    #[test]
    fn simultaneous_guesses_at_one_account_from_one_place_are_held_back() {
        let t = Throttle::default();
        let held: Vec<_> = (0..30)
            .filter_map(|_| t.try_attempt("admin", ip("192.0.2.9")).ok())
            .collect();
        assert_eq!(held.len(), FREE_FAILURES as usize);
    }

    #[test]
    fn attempts_in_flight_do_not_count_against_the_address() {
        let t = Throttle::default();
        let held: Vec<_> = (0..20)
            .map(|i| t.try_attempt(&format!("user{i}"), ip("192.0.2.9")))
            .collect();
        assert!(held.iter().all(Result::is_ok), "20 people behind one NAT");
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
    fn failures_slow_their_source_but_not_a_clean_one() {
        let t = Throttle::default();
        let (bad, clean) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..3 {
            t.try_attempt("Alice", bad).unwrap().failed();
        }
        assert!(t.try_attempt("alice", bad).is_err());
        assert!(t.try_attempt("bob", bad).is_err(), "the address is slowed");
        // The owner, from an address with no failures, still gets in.
        t.try_attempt("alice", clean).unwrap().succeeded();
        // An address that failed elsewhere is held back by the account's record too.
        let other = ip("192.0.2.3");
        t.try_attempt("carol", other).unwrap().failed();
        assert!(t.try_attempt("alice", other).is_err());
    }

    #[test]
    fn an_attempt_cut_off_counts_as_a_failure() {
        let t = Throttle::default();
        for _ in 0..3 {
            drop(t.try_attempt("dora", ip("192.0.2.4")).unwrap());
        }
        assert!(t.try_attempt("dora", ip("192.0.2.4")).is_err());
    }
}
