//! Login throttling: growing delays per account name and per client IP.
//!
//! Each key may fail a few times freely; after that every failure locks it
//! for twice as long as the previous one (1 s, 2 s, 4 s, … up to 15 min).
//! A locked key is refused before any password is checked, so the answer
//! says nothing about the password.
//!
//! An attempt is reserved — checked and counted as a failure in one step —
//! before its password is hashed, and a success gives the reservation back.
//! Checking first and counting after the hash let parallel guesses all pass
//! the check before any of them had failed (200 parallel guesses at an
//! account with 2 free failures left got 192 password checks). Names are counted whether or not such a
//! user exists, so throttling does not reveal which accounts exist either.
//!
//! A success clears its account's record but not its IP's: one known
//! password must not reset an attacker's budget for guessing others.
//! Counters are per process (see STACK.md: cluster-wide counters would need
//! the shared store), bounded in bytes ([`MAX_BYTES`], however long the
//! names typed), and forgotten an hour after the last failure.

mod table;

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

pub use table::MAX_BYTES;
use table::{Key, Table};

/// Failures an account name may have before delays start.
pub const FREE_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failures one IP may have before delays start (a shared NAT is many users).
pub const FREE_FAILURES_PER_IP: u32 = 20;
/// The first delay.
const BASE_DELAY: Duration = Duration::from_secs(1);
/// The longest delay.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A record with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

/// Per-process login throttle.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    table: Mutex<Table>,
}

/// The name an account is throttled under. "Alice" and "alice" are
/// throttled together even though they may be different accounts: it only
/// ever makes throttling stricter. No user name is longer than a subject,
/// so a longer one is cut there: a key costs a bounded number of bytes,
/// whatever was typed.
pub(crate) fn account_name(name: &str) -> String {
    let mut end = name.len().min(sessiond_core::MAX_SUBJECT_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut key = name[..end].trim().to_lowercase();
    // The record is accounted by capacity: no slack kept.
    key.shrink_to_fit();
    key
}

fn account_key(name: &str) -> Key {
    Key::Account(account_name(name))
}

fn delay_after(failures: u32, free: u32) -> Duration {
    let Some(over) = failures.checked_sub(free) else {
        return Duration::ZERO;
    };
    if over == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
    BASE_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

impl LoginThrottle {
    /// An empty throttle.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // Records are replaced whole; a panic elsewhere cannot corrupt one.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves one attempt for the account and the IP: `Err(wait)` when
    /// either is locked at `now` (nothing is counted), else the attempt is
    /// counted as a failure now, before its password is checked. Call
    /// [`succeeded`](Self::succeeded) if the password was right.
    pub fn reserve(&self, account: &str, ip: Option<IpAddr>, now: OffsetDateTime) -> Result<(), Duration> {
        let mut table = self.table();
        locked(&table, account, ip, now)?;
        count_failure(&mut table, account, ip, now);
        Ok(())
    }

    /// A reserved attempt had the right password: the account's record is
    /// cleared, and the IP gets back the failure its reservation counted
    /// (but keeps its other failures: one known password must not reset an
    /// attacker's budget for guessing others).
    pub fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        let mut table = self.table();
        table.remove(&account_key(account));
        if let Some(ip) = ip {
            refund(&mut table, &Key::Ip(ip), FREE_FAILURES_PER_IP);
        }
    }

    /// A reserved attempt whose password could not be checked (the store or
    /// the hashing pool failed): both get their reservation back.
    pub fn released(&self, account: &str, ip: Option<IpAddr>) {
        let mut table = self.table();
        refund(&mut table, &account_key(account), FREE_FAILURES_PER_ACCOUNT);
        if let Some(ip) = ip {
            refund(&mut table, &Key::Ip(ip), FREE_FAILURES_PER_IP);
        }
    }
}

/// Takes back one counted failure of `key`.
fn refund(table: &mut Table, key: &Key, free: u32) {
    if let Some(record) = table.get_mut(key) {
        record.failures = record.failures.saturating_sub(1);
        record.locked_until = record.last_failure + delay_after(record.failures, free);
    }
}

/// `Err(wait)` when the account or the IP is locked at `now`.
fn locked(table: &Table, account: &str, ip: Option<IpAddr>, now: OffsetDateTime) -> Result<(), Duration> {
    let keys = std::iter::once(account_key(account)).chain(ip.map(Key::Ip));
    let wait = keys
        .filter_map(|key| table.get(&key).map(|r| r.locked_until - now))
        .filter(|left| left.is_positive())
        .max();
    match wait {
        Some(left) => Err(Duration::try_from(left)
            .unwrap_or(MAX_DELAY)
            .max(Duration::from_secs(1))),
        None => Ok(()),
    }
}

/// Counts a failed attempt for the account and the IP.
fn count_failure(table: &mut Table, account: &str, ip: Option<IpAddr>, now: OffsetDateTime) {
    let keys = std::iter::once((account_key(account), FREE_FAILURES_PER_ACCOUNT))
        .chain(ip.map(|ip| (Key::Ip(ip), FREE_FAILURES_PER_IP)));
    for (key, free) in keys {
        let record = table.entry(key, now, FORGET_AFTER);
        if now - record.last_failure > FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        record.locked_until = now + delay_after(record.failures, free);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    fn secs(n: i64) -> time::Duration {
        time::Duration::seconds(n)
    }

    #[test]
    fn delays_start_after_the_free_failures_and_double() {
        let throttle = LoginThrottle::new();
        for _ in 0..FREE_FAILURES_PER_ACCOUNT {
            assert_eq!(throttle.reserve("alice", None, T0), Ok(()));
        }
        // The sixth attempt is allowed and starts the delay.
        assert_eq!(throttle.reserve("alice", None, T0), Ok(()));
        assert_eq!(throttle.reserve("ALICE ", None, T0), Err(Duration::from_secs(1)));
        assert_eq!(throttle.reserve("alice", None, T0 + secs(1)), Ok(()));
        assert_eq!(
            throttle.reserve("alice", None, T0 + secs(1)),
            Err(Duration::from_secs(2))
        );
        assert_eq!(throttle.reserve("alice", None, T0 + secs(3)), Ok(()));
        assert_eq!(
            throttle.reserve("alice", None, T0 + secs(3)),
            Err(Duration::from_secs(4))
        );
        // Other names are unaffected.
        assert_eq!(throttle.reserve("bob", None, T0 + secs(3)), Ok(()));
    }

    #[test]
    fn delays_are_capped_and_forgotten() {
        assert_eq!(delay_after(5, 5), Duration::ZERO);
        assert_eq!(delay_after(6, 5), Duration::from_secs(1));
        assert_eq!(delay_after(200, 5), MAX_DELAY);
        let throttle = LoginThrottle::new();
        for _ in 0..40 {
            count_failure(&mut throttle.table(), "alice", None, T0);
        }
        assert_eq!(throttle.reserve("alice", None, T0), Err(MAX_DELAY));
        let later = T0 + secs(2 * 3600);
        assert_eq!(throttle.reserve("alice", None, later), Ok(()));
        assert_eq!(throttle.reserve("alice", None, later), Ok(()), "old failures forgotten");
    }

    #[test]
    fn an_ip_is_throttled_across_names_and_a_success_does_not_reset_it() {
        let throttle = LoginThrottle::new();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for n in 0..=FREE_FAILURES_PER_IP {
            assert_eq!(throttle.reserve(&format!("user{n}"), Some(ip), T0), Ok(()));
        }
        // A success before the IP's last failure refunds only its own reservation.
        assert_eq!(
            throttle.reserve("someone-new", Some(ip), T0),
            Err(Duration::from_secs(1))
        );
        throttle.succeeded("user0", None);
        assert_eq!(
            throttle.reserve("someone-new", Some(ip), T0),
            Err(Duration::from_secs(1))
        );
        assert_eq!(throttle.reserve("someone-new", None, T0), Ok(()));
    }

    #[test]
    fn success_clears_the_account() {
        let throttle = LoginThrottle::new();
        for _ in 0..=FREE_FAILURES_PER_ACCOUNT {
            assert_eq!(throttle.reserve("alice", None, T0), Ok(()));
        }
        assert!(throttle.reserve("alice", None, T0).is_err());
        throttle.succeeded("alice", None);
        assert_eq!(throttle.reserve("alice", None, T0), Ok(()));
    }

    /// Finding 5: 1 MB user names cost at most a subject's length each,
    /// and however many there are, the throttle stays within its byte
    /// budget while a recently locked account stays locked.
    #[test]
    fn long_names_keep_the_throttle_within_its_byte_budget() {
        let throttle = LoginThrottle::new();
        for _ in 0..=FREE_FAILURES_PER_ACCOUNT {
            assert_eq!(throttle.reserve("alice", None, T0 + secs(3000)), Ok(()));
        }
        let tail = "x".repeat(1024 * 1024);
        let huge = format!("{tail}{tail}");
        assert_eq!(throttle.reserve(&huge, None, T0), Ok(()));
        let per_name = sessiond_core::MAX_SUBJECT_LEN + 256;
        for n in 0..2 * MAX_BYTES / per_name {
            let at = T0 + secs(i64::try_from(n % 3000).unwrap());
            let name = format!("{n:08}{}", &tail[..sessiond_core::MAX_SUBJECT_LEN]);
            assert_eq!(throttle.reserve(&name, None, at), Ok(()));
        }
        let bytes = throttle.table().bytes();
        assert!(bytes <= MAX_BYTES, "{bytes} bytes");
        assert!(
            throttle.reserve("alice", None, T0 + secs(3000)).is_err(),
            "the most recent lock was evicted"
        );
    }

    /// Parallel attempts cannot all pass a check made before any of them
    /// failed: the remaining allowance is all that gets through.
    #[test]
    fn parallel_attempts_get_only_the_remaining_allowance() {
        let throttle = std::sync::Arc::new(LoginThrottle::new());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(throttle.reserve("alice", Some(ip), T0), Ok(()));
        }
        let threads: Vec<_> = (0..200)
            .map(|_| {
                let throttle = std::sync::Arc::clone(&throttle);
                std::thread::spawn(move || throttle.reserve("alice", Some(ip), T0).is_ok())
            })
            .collect();
        let allowed = threads
            .into_iter()
            .map(|t| t.join().unwrap_or(false))
            .filter(|ok| *ok)
            .count();
        // Two free failures left, and the attempt that starts the delay.
        assert_eq!(allowed, 3);
    }

    #[test]
    fn account_keys_are_bounded() {
        let long = "é".repeat(100_000);
        let Key::Account(key) = account_key(&long) else {
            unreachable!("an account name makes an account key")
        };
        assert!(key.len() <= sessiond_core::MAX_SUBJECT_LEN * 2, "{}", key.len());
        assert_eq!(account_key(" Alice "), Key::Account("alice".to_owned()));
    }

    #[test]
    fn a_success_gives_the_ip_its_reservation_back() {
        let throttle = LoginThrottle::new();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for n in 0..FREE_FAILURES_PER_IP {
            assert_eq!(throttle.reserve(&format!("user{n}"), Some(ip), T0), Ok(()));
        }
        // The 21st attempt is the right password: refunded, so the IP is
        // not locked by it.
        assert_eq!(throttle.reserve("alice", Some(ip), T0), Ok(()));
        throttle.succeeded("alice", Some(ip));
        assert_eq!(throttle.reserve("bob", Some(ip), T0), Ok(()));
        assert_eq!(throttle.reserve("carol", Some(ip), T0), Err(Duration::from_secs(1)));
    }
}
