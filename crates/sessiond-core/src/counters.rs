//! Failure counters: the [`CounterStore`] contract.
//!
//! The login portal throttles by counting failures per account, per client
//! address and per device cookie. Counted in each process, N nodes over one
//! store gave an attacker N times the guesses; counted in the store, five
//! failures spread over three nodes lock the account on all of them.
//!
//! A counter is found by an opaque [`CounterKey`] its user builds (and
//! namespaces). What a count means — how many failures are free, how long
//! the locks after them last, when the record is forgotten — is a
//! [`CounterRule`] given with every call, so the store holds numbers and
//! times only. The arithmetic is written once, on [`CounterRecord`]: the
//! engines that compute in Rust call it, the Redis script mirrors it.
//!
//! The written semantics are on [`CounterStore`], where users of the crate
//! see them (this module is private).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ids::NameError;
use crate::store::{BoxError, StoreError};

/// Longest [`CounterKey`], in bytes.
pub const MAX_COUNTER_KEY_LEN: usize = 128;

/// Most keys one [`CounterStore::reserve`] or [`CounterStore::release`]
/// may name: an attempt counts against a subject and an address.
pub const MAX_COUNTER_KEYS: usize = 4;

/// The name of a counter: 1 to [`MAX_COUNTER_KEY_LEN`] bytes of printable
/// ASCII without spaces, so it is safe in a Redis key, a SQL value and a
/// log line as it is. Callers namespace their keys (`acct:…`, `ip:…`) and
/// hash or encode whatever they did not choose themselves.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey(Arc<str>);

impl CounterKey {
    /// A validated key.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        if value.is_empty() {
            return Err(NameError::Empty("counter key"));
        }
        if value.len() > MAX_COUNTER_KEY_LEN {
            return Err(NameError::TooLong {
                what: "counter key",
                max: MAX_COUNTER_KEY_LEN,
            });
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NameError::BadCharacter("counter key"));
        }
        Ok(Self(value.into()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CounterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CounterKey").field(&self.as_str()).finish()
    }
}

impl fmt::Display for CounterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one key's failures turn into locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterRule {
    /// Failures that lock nothing.
    pub free: u32,
    /// The lock after the first failure past the free ones; each further
    /// failure doubles it.
    pub base_delay: Duration,
    /// The longest lock.
    pub max_delay: Duration,
    /// A record with no failure counted for this long is forgotten.
    pub forget_after: Duration,
}

impl CounterRule {
    /// How long `count` failures lock the key for, from the last of them:
    /// nothing up to [`free`](Self::free), then `base_delay` doubled per
    /// further failure, at most `max_delay`.
    pub fn delay_after(&self, count: u32) -> Duration {
        let over = count.saturating_sub(self.free);
        if over == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(over - 1).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// One key's stored failures. Engines that compute in Rust store these four
/// fields and change them only through [`counted`](Self::counted) and
/// [`released`](Self::released).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterRecord {
    /// Failures counted (and not given back).
    pub count: u32,
    /// When the last one was counted.
    pub last: OffsetDateTime,
    /// Reserves before this are refused.
    pub locked_until: OffsetDateTime,
    /// After this the record is forgotten: `last + forget_after`.
    pub expires_at: OffsetDateTime,
}

impl CounterRecord {
    /// Whether the record still counts at `now` (`now <= expires_at`).
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now <= self.expires_at
    }

    /// The end of the record's lock if it is locked at `now`.
    pub fn locked_at(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        (self.is_live(now) && now < self.locked_until).then_some(self.locked_until)
    }

    /// `stored` (if any, live or not) with one more failure counted at `now`
    /// under `rule`: a forgotten record starts again from zero.
    pub fn counted(stored: Option<&Self>, rule: &CounterRule, now: OffsetDateTime) -> Self {
        let before = stored.filter(|r| r.is_live(now)).map_or(0, |r| r.count);
        let count = before.saturating_add(1);
        Self {
            count,
            last: now,
            locked_until: now + rule.delay_after(count),
            expires_at: now + rule.forget_after,
        }
    }

    /// The record with one failure given back: the lock becomes the one
    /// the remaining failures set at the last one. Times of expiry stay.
    pub fn released(&self, rule: &CounterRule) -> Self {
        let count = self.count.saturating_sub(1);
        Self {
            count,
            locked_until: self.last + rule.delay_after(count),
            ..*self
        }
    }
}

/// The answer to a [`CounterStore::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Every key was counted; its count afterwards, in the order given.
    Counted(Vec<u32>),
    /// At least one key is locked and nothing was counted: per key, in the
    /// order given, the end of its lock if it is locked.
    Locked(Vec<Option<OffsetDateTime>>),
}

/// The failure of a counter-store operation.
#[derive(Debug, thiserror::Error)]
pub enum CounterStoreError {
    /// A call with no key, more than [`MAX_COUNTER_KEYS`], or one key twice.
    /// Nothing was changed.
    #[error("a counter call names 1 to {MAX_COUNTER_KEYS} distinct keys, not {count}")]
    InvalidKeys {
        /// How many were given.
        count: usize,
    },
    /// The engine cannot be reached; try again later.
    #[error("counter store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be decoded.
    #[error("stored counter is corrupt")]
    Corrupt(#[source] BoxError),
    /// Any other engine failure.
    #[error("counter store failed")]
    Backend(#[source] BoxError),
}

impl CounterStoreError {
    /// True for [`CounterStoreError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CounterStoreError::Unavailable(_))
    }
}

/// A session-store failure met by a counter operation (the engines share
/// their connection and error handling), with its cause kept.
impl From<StoreError> for CounterStoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => CounterStoreError::Unavailable(source),
            StoreError::Corrupt(source) => CounterStoreError::Corrupt(source),
            StoreError::Backend(source) => CounterStoreError::Backend(source),
            other => CounterStoreError::Backend(Box::new(other)),
        }
    }
}

/// Refuses a call with no key, too many or one twice: every engine calls
/// it before touching anything, so the rule is written once.
pub fn check_counter_keys<'a>(keys: impl ExactSizeIterator<Item = &'a CounterKey>) -> Result<(), CounterStoreError> {
    let count = keys.len();
    let mut seen: Vec<&CounterKey> = keys.collect();
    seen.sort_unstable();
    seen.dedup();
    if (1..=MAX_COUNTER_KEYS).contains(&count) && seen.len() == count {
        Ok(())
    } else {
        Err(CounterStoreError::InvalidKeys { count })
    }
}

/// Where failure counters live.
///
/// # Semantics
///
/// Checked by `sessiond_testkit::counter_store_conformance!`:
///
/// * **Keys.** A record is found by its [`CounterKey`]; keys are exact and
///   records under different keys never affect each other. A call names 1
///   to [`MAX_COUNTER_KEYS`] distinct keys, else
///   [`CounterStoreError::InvalidKeys`] and nothing changes.
/// * **Time** is the caller's `now`: stores never read a clock. A record
///   is *live* at `now` while `now <= expires_at`; one that is not is
///   treated exactly as a missing one (engines remove it when they like:
///   Redis by TTL, the others when purging).
/// * **Reserve** ([`CounterStore::reserve`]) is one atomic step over all
///   its keys: if any key's live record is locked at `now`
///   (`now < locked_until`), nothing is counted and the answer is
///   [`Reserved::Locked`] with each key's lock end; else every key gets
///   one failure counted at `now` ([`CounterRecord::counted`]: the count
///   goes up by one, from zero for a missing record; the lock becomes
///   `now + rule.delay_after(count)`; the record expires at
///   `now + rule.forget_after`) and the answer is [`Reserved::Counted`].
///   So of any number of racing reserves, on any number of nodes, exactly
///   as many pass as the allowance left: a check and a count that are one
///   step cannot all pass the check first.
/// * **Release** ([`CounterStore::release`]) gives one failure back to
///   each key's live record ([`CounterRecord::released`]: the count goes
///   down by one, never below zero; the lock is recomputed from the last
///   failure; the expiry stays). A missing or forgotten record is left
///   alone: there is nothing to give back.
/// * **Clear** ([`CounterStore::clear`]) removes a key's record: the next
///   reserve counts from zero.
/// * **Read** ([`CounterStore::counter`]) returns the live record, if any.
/// * **Atomicity and durability** are those of the session methods: each
///   call is atomic across every handle and process; `Ok` means it
///   survives a crash on engines that promise that for sessions.
#[async_trait]
pub trait CounterStore: Send + Sync + fmt::Debug + 'static {
    /// Counts one failure on every key unless one of them is locked at
    /// `now`, atomically.
    async fn reserve(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, CounterStoreError>;

    /// Gives one failure back to every key's live record.
    async fn release(&self, keys: &[(CounterKey, CounterRule)], now: OffsetDateTime) -> Result<(), CounterStoreError>;

    /// Forgets `key`'s record.
    async fn clear(&self, key: &CounterKey) -> Result<(), CounterStoreError>;

    /// `key`'s record, if it is live at `now`.
    async fn counter(&self, key: &CounterKey, now: OffsetDateTime) -> Result<Option<CounterRecord>, CounterStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
    const RULE: CounterRule = CounterRule {
        free: 5,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(900),
        forget_after: Duration::from_secs(3600),
    };

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(CounterKey::new("acct:0123abcd").is_ok());
        assert!(CounterKey::new("x".repeat(MAX_COUNTER_KEY_LEN)).is_ok());
        for bad in [
            String::new(),
            "a b".into(),
            "a\0b".into(),
            "é".into(),
            "x".repeat(MAX_COUNTER_KEY_LEN + 1),
        ] {
            assert!(CounterKey::new(bad.clone()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn delays_double_past_the_free_failures_up_to_the_cap() {
        assert_eq!(RULE.delay_after(0), Duration::ZERO);
        assert_eq!(RULE.delay_after(5), Duration::ZERO);
        assert_eq!(RULE.delay_after(6), Duration::from_secs(1));
        assert_eq!(RULE.delay_after(8), Duration::from_secs(4));
        assert_eq!(RULE.delay_after(u32::MAX), RULE.max_delay);
    }

    #[test]
    fn records_count_release_and_are_forgotten() {
        let mut record = CounterRecord::counted(None, &RULE, T0);
        for _ in 0..5 {
            record = CounterRecord::counted(Some(&record), &RULE, T0);
        }
        assert_eq!(record.count, 6);
        assert_eq!(record.locked_at(T0), Some(T0 + Duration::from_secs(1)));
        let released = record.released(&RULE);
        assert_eq!((released.count, released.locked_at(T0)), (5, None));
        assert_eq!(released.expires_at, record.expires_at);
        let later = T0 + RULE.forget_after + Duration::from_secs(1);
        assert!(!record.is_live(later));
        assert_eq!(CounterRecord::counted(Some(&record), &RULE, later).count, 1);
    }

    #[test]
    fn calls_name_one_to_four_distinct_keys() {
        let key = |s: &str| CounterKey::new(s).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (key("a"), key("b"));
        assert!(check_counter_keys([&a, &b].into_iter()).is_ok());
        assert!(check_counter_keys([&a, &a].into_iter()).is_err());
        assert!(check_counter_keys(std::iter::empty::<&CounterKey>()).is_err());
        let many: Vec<CounterKey> = (0..=MAX_COUNTER_KEYS).map(|n| key(&n.to_string())).collect();
        assert!(matches!(
            check_counter_keys(many.iter()),
            Err(CounterStoreError::InvalidKeys { count: 5 })
        ));
    }
}
