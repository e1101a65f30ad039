//! Login throttling: growing delays per account name and per client IP,
//! with an allowance of its own for each browser known to the account.
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
//!
//! Locking an account name lets anyone lock its owner out (one guess every
//! 15 minutes keeps it so), so a browser that has signed in before is
//! trusted with an allowance of its own (OWASP's device cookies, see
//! `device_cookie.rs`): its attempts are counted per account and device
//! cookie, not against the account. After [`FREE_FAILURES_PER_DEVICE`]
//! failures the cookie is on the lockout list and its attempts count
//! against the account like a stranger's, until its failures are forgotten.
//! The IP's limit applies to every attempt.

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
/// Failures a device cookie may have at its account before it is put on
/// the lockout list: its attempts then count against the account like a
/// stranger's, until its failures are forgotten.
pub const FREE_FAILURES_PER_DEVICE: u32 = 5;
/// A record with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

/// The random part of a device cookie: which browser it is.
pub type DeviceNonce = [u8; 16];

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
fn account_name(name: &str) -> String {
    let mut end = name.len().min(sessiond_core::MAX_SUBJECT_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let mut key = name[..end].trim().to_lowercase();
    // The record is accounted by capacity: no slack kept.
    key.shrink_to_fit();
    key
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

/// A reserved attempt: the allowances it was counted against. Hand it to
/// [`LoginThrottle::succeeded`] or [`LoginThrottle::released`]; dropped,
/// it stays counted as a failure.
#[derive(Debug)]
#[must_use = "a reservation stays counted as a failure unless it is given back"]
pub struct Reservation {
    /// The account's record, or the device cookie's when it was trusted.
    subject: Key,
    ip: Option<Key>,
}

impl Reservation {
    /// Whether the attempt was counted against its device cookie's own
    /// allowance rather than the account's.
    pub fn trusted(&self) -> bool {
        matches!(self.subject, Key::Device(..))
    }
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

    /// Reserves one attempt at `account` from `ip`, by a browser that
    /// presented a valid device cookie for the account with nonce `device`
    /// (if any): `Err(wait)` when a limit that applies is locked at `now`
    /// (nothing is counted), else the attempt is counted as a failure now,
    /// before its password is checked. Call [`succeeded`](Self::succeeded)
    /// if the password was right.
    ///
    /// The IP's limit applies to everyone. A device cookie with fewer than
    /// [`FREE_FAILURES_PER_DEVICE`] failures is counted on its own instead
    /// of the account; any other attempt is counted against the account.
    pub fn reserve(
        &self,
        account: &str,
        device: Option<&DeviceNonce>,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Reservation, Duration> {
        let mut table = self.table();
        let name = account_name(account);
        let subject = match device.map(|nonce| Key::Device(name.clone(), *nonce)) {
            Some(device) if trusted(&table, &device, now) => device,
            _ => Key::Account(name),
        };
        let reservation = Reservation {
            subject,
            ip: ip.map(Key::Ip),
        };
        locked(&table, &reservation, now)?;
        count_failure(&mut table, reservation.subject.clone(), now);
        if let Some(ip) = &reservation.ip {
            count_failure(&mut table, ip.clone(), now);
        }
        Ok(reservation)
    }

    /// A reserved attempt had the right password: its account's (or device
    /// cookie's) record is cleared, and the IP gets back the failure the
    /// reservation counted (but keeps its other failures: one known password
    /// must not reset an attacker's budget for guessing others). A success
    /// on a device cookie leaves the account's record alone: whoever failed
    /// against the account stays locked out.
    pub fn succeeded(&self, reservation: Reservation) {
        let mut table = self.table();
        table.remove(&reservation.subject);
        if let Some(ip) = &reservation.ip {
            refund(&mut table, ip);
        }
    }

    /// A reserved attempt whose password could not be checked (the store or
    /// the hashing pool failed): every record gets its reservation back.
    pub fn released(&self, reservation: Reservation) {
        let mut table = self.table();
        refund(&mut table, &reservation.subject);
        if let Some(ip) = &reservation.ip {
            refund(&mut table, ip);
        }
    }
}

/// Failures `key` may have before delays start (a device cookie is not
/// delayed: past its allowance it is no longer trusted).
fn free_failures(key: &Key) -> u32 {
    match key {
        Key::Account(_) => FREE_FAILURES_PER_ACCOUNT,
        Key::Ip(_) => FREE_FAILURES_PER_IP,
        Key::Device(..) => FREE_FAILURES_PER_DEVICE,
    }
}

/// Whether a device cookie is off the lockout list at `now`: fewer failures
/// than its allowance, or none for [`FORGET_AFTER`].
fn trusted(table: &Table, device: &Key, now: OffsetDateTime) -> bool {
    table
        .get(device)
        .is_none_or(|record| record.failures < FREE_FAILURES_PER_DEVICE || now - record.last_failure > FORGET_AFTER)
}

/// Takes back one counted failure of `key`.
fn refund(table: &mut Table, key: &Key) {
    let free = free_failures(key);
    if let Some(record) = table.get_mut(key) {
        record.failures = record.failures.saturating_sub(1);
        record.locked_until = record.last_failure + delay_after(record.failures, free);
    }
}

/// `Err(wait)` when a record the reservation would count on is locked at `now`.
fn locked(table: &Table, reservation: &Reservation, now: OffsetDateTime) -> Result<(), Duration> {
    let keys = std::iter::once(&reservation.subject).chain(&reservation.ip);
    let wait = keys
        .filter_map(|key| table.get(key).map(|r| r.locked_until - now))
        .filter(|left| left.is_positive())
        .max();
    match wait {
        Some(left) => Err(Duration::try_from(left)
            .unwrap_or(MAX_DELAY)
            .max(Duration::from_secs(1))),
        None => Ok(()),
    }
}

/// Counts a failed attempt for `key`.
fn count_failure(table: &mut Table, key: Key, now: OffsetDateTime) {
    let free = free_failures(&key);
    let record = table.entry(key, now, FORGET_AFTER);
    if now - record.last_failure > FORGET_AFTER {
        record.failures = 0;
    }
    record.failures = record.failures.saturating_add(1);
    record.last_failure = now;
    record.locked_until = now + delay_after(record.failures, free);
}

#[cfg(test)]
mod tests;
