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
//! account with 2 free failures left got 192 password checks). Names are
//! counted whether or not such a user exists, so throttling does not reveal
//! which accounts exist either.
//!
//! A success clears its account's record but not its IP's: one known
//! password must not reset an attacker's budget for guessing others.
//!
//! The counters live in the store ([`CounterStore`]), where the sessions
//! are, and a reservation is one atomic step there: nodes over one store
//! act as one, so failures spread over several nodes add up (with counters
//! per process, N nodes gave an attacker N times the guesses). Records are
//! forgotten an hour after their last failure. Keys are bounded, whatever
//! was typed: the account name is hashed (`acct:<sha-256 hex>`, which also
//! keeps names typed into the wrong box — often passwords — out of the
//! store), the address is `ip:<addr>`, a device cookie
//! `dev:<name hash>:<nonce hex>`. A store that cannot be reached refuses
//! the attempt (the caller answers 503): an attempt is never let through
//! uncounted.
//!
//! Locking an account name lets anyone lock its owner out (one guess every
//! 15 minutes keeps it so), so a browser that has signed in before is
//! trusted with an allowance of its own (OWASP's device cookies, see
//! `device_cookie.rs`): its attempts are counted per account and device
//! cookie, not against the account. After [`FREE_FAILURES_PER_DEVICE`]
//! failures the cookie is on the lockout list and its attempts count
//! against the account like a stranger's, until its failures are forgotten.
//! The IP's limit applies to every attempt.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{CounterKey, CounterRule, CounterStore, CounterStoreError, Reserved};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

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

const fn delays(free: u32) -> CounterRule {
    CounterRule {
        free,
        base_delay: BASE_DELAY,
        max_delay: MAX_DELAY,
        forget_after: FORGET_AFTER,
    }
}

const ACCOUNT: CounterRule = delays(FREE_FAILURES_PER_ACCOUNT);
const IP: CounterRule = delays(FREE_FAILURES_PER_IP);
/// A device cookie is not delayed: its last free failure puts it on the
/// lockout list (a lock) for as long as the record is remembered.
const DEVICE: CounterRule = CounterRule {
    free: FREE_FAILURES_PER_DEVICE - 1,
    base_delay: FORGET_AFTER,
    max_delay: FORGET_AFTER,
    forget_after: FORGET_AFTER,
};

/// The random part of a device cookie: which browser it is.
pub type DeviceNonce = [u8; 16];

/// The login throttle, over the store's failure counters.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    store: Arc<dyn CounterStore>,
}

/// The name an account is throttled under. "Alice" and "alice" are
/// throttled together even though they may be different accounts: it only
/// ever makes throttling stricter. No user name is longer than a subject,
/// so a longer one is cut there before it is hashed. Burst detection
/// counts failures under the same name.
pub fn account_name(name: &str) -> String {
    let mut end = name.len().min(sessiond_core::MAX_SUBJECT_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim().to_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut text, b| {
            // Writing to a String cannot fail.
            let _ = write!(text, "{b:02x}");
            text
        })
}

/// A key the throttle builds: always printable ASCII within
/// `MAX_COUNTER_KEY_LEN` (a test checks the longest of each kind).
fn key(text: String) -> Result<CounterKey, CounterStoreError> {
    CounterKey::new(text).map_err(|e| CounterStoreError::Backend(Box::new(e)))
}

fn name_hash(name: &str) -> String {
    hex(&Sha256::digest(account_name(name).as_bytes()))
}

fn account_key(name: &str) -> Result<CounterKey, CounterStoreError> {
    key(format!("acct:{}", name_hash(name)))
}

fn device_key(name: &str, nonce: &DeviceNonce) -> Result<CounterKey, CounterStoreError> {
    key(format!("dev:{}:{}", name_hash(name), hex(nonce)))
}

fn ip_key(ip: IpAddr) -> Result<CounterKey, CounterStoreError> {
    key(format!("ip:{ip}"))
}

/// How long to wait for the latest of the locks.
fn wait(locks: &[Option<OffsetDateTime>], now: OffsetDateTime) -> Duration {
    let left = locks.iter().flatten().map(|until| *until - now).max();
    left.and_then(|left| Duration::try_from(left).ok())
        .unwrap_or(MAX_DELAY)
        .max(Duration::from_secs(1))
}

/// A reserved attempt: the counters it was counted on. Hand it to
/// [`LoginThrottle::succeeded`] or [`LoginThrottle::released`]; dropped,
/// it stays counted as a failure.
#[derive(Debug)]
#[must_use = "a reservation stays counted as a failure unless it is given back"]
pub struct Reservation {
    /// The account's counter, or the device cookie's when it was trusted.
    subject: (CounterKey, CounterRule),
    ip: Option<(CounterKey, CounterRule)>,
    trusted: bool,
    at: OffsetDateTime,
}

impl Reservation {
    /// Whether the attempt was counted against its device cookie's own
    /// allowance rather than the account's.
    pub fn trusted(&self) -> bool {
        self.trusted
    }

    fn counters(&self) -> Vec<(CounterKey, CounterRule)> {
        std::iter::once(self.subject.clone()).chain(self.ip.clone()).collect()
    }
}

impl LoginThrottle {
    /// A throttle over `store`'s counters (the store the sessions are in).
    pub fn new(store: Arc<dyn CounterStore>) -> Self {
        Self { store }
    }

    /// Reserves one attempt at `account` from `ip`, by a browser that
    /// presented a valid device cookie for the account with nonce `device`
    /// (if any): `Ok(Err(wait))` when a limit that applies is locked at
    /// `now` (nothing is counted), else the attempt is counted as a failure
    /// now, before its password is checked. Call
    /// [`succeeded`](Self::succeeded) if the password was right. `Err` when
    /// the store failed: refuse the attempt.
    ///
    /// The IP's limit applies to everyone. A device cookie with fewer than
    /// [`FREE_FAILURES_PER_DEVICE`] failures is counted on its own instead
    /// of the account; any other attempt is counted against the account.
    pub async fn reserve(
        &self,
        account: &str,
        device: Option<&DeviceNonce>,
        ip: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Result<Reservation, Duration>, CounterStoreError> {
        let ip = ip.map(ip_key).transpose()?.map(|key| (key, IP));
        let reservation = |subject, trusted| Reservation {
            subject,
            ip: ip.clone(),
            trusted,
            at: now,
        };
        if let Some(nonce) = device {
            let trusted = reservation((device_key(account, nonce)?, DEVICE), true);
            match self.store.reserve(&trusted.counters(), now).await? {
                Reserved::Counted(_) => return Ok(Ok(trusted)),
                // Only the IP is locked: that refuses everyone.
                Reserved::Locked(locks) if locks.first().is_some_and(Option::is_none) => {
                    return Ok(Err(wait(&locks, now)));
                }
                // The cookie is on the lockout list: a stranger.
                Reserved::Locked(_) => {}
            }
        }
        let stranger = reservation((account_key(account)?, ACCOUNT), false);
        match self.store.reserve(&stranger.counters(), now).await? {
            Reserved::Counted(_) => Ok(Ok(stranger)),
            Reserved::Locked(locks) => Ok(Err(wait(&locks, now))),
        }
    }

    /// A reserved attempt had the right password: its account's (or device
    /// cookie's) record is cleared, and the IP gets back the failure the
    /// reservation counted (but keeps its other failures: one known password
    /// must not reset an attacker's budget for guessing others). A success
    /// on a device cookie leaves the account's record alone: whoever failed
    /// against the account stays locked out.
    pub async fn succeeded(&self, reservation: Reservation) -> Result<(), CounterStoreError> {
        self.store.clear(&reservation.subject.0).await?;
        if let Some(ip) = reservation.ip {
            self.store.release(&[ip], reservation.at).await?;
        }
        Ok(())
    }

    /// A reserved attempt whose password could not be checked (the store or
    /// the hashing pool failed): every record gets its reservation back.
    pub async fn released(&self, reservation: Reservation) -> Result<(), CounterStoreError> {
        self.store.release(&reservation.counters(), reservation.at).await
    }

    /// [`succeeded`](Self::succeeded) for a sign-in that stands whatever
    /// happens here: a clear that failed only leaves the attempt counted
    /// (stricter, never looser), so it is logged rather than answered.
    pub async fn succeed_or_log(&self, reservation: Reservation) {
        if let Err(error) = self.succeeded(reservation).await {
            tracing::warn!(%error, "portal: a sign-in's failure count could not be cleared");
        }
    }

    /// [`released`](Self::released) on the way to answering another
    /// failure: if the store failed again, the attempt stays counted.
    pub async fn release_or_log(&self, reservation: Reservation) {
        if let Err(error) = self.released(reservation).await {
            tracing::warn!(%error, "portal: an unchecked attempt could not be given back");
        }
    }
}

#[cfg(test)]
mod tests;
