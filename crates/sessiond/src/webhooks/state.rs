//! What every node knows about one endpoint's deliveries of one tenant's
//! events, kept in the store as one opaque
//! [`SecretStore`](sessiond_core::SecretStore) value (JSON) and changed
//! only by compare-and-set, so nodes never overwrite each other.
//!
//! * `cursor`: every event up to this id is delivered, given up, or in
//!   `pending`; only *settled* ids (older than the revocation feed's
//!   `SETTLE`) are ever passed, so an event committed late is not skipped.
//! * `lease`: the node that delivers for this record, until when. Only
//!   it sends; it renews the lease as it goes. A node that dies stops
//!   renewing and another takes over from the cursor after at most
//!   [`LEASE`]: what the dead node sent but had not recorded is sent again
//!   (at least once, with the same `webhook-id`).
//! * `pending`: retries, at most [`MAX_PENDING`]; when full the cursor
//!   stops (backpressure) rather than the list growing past the value's
//!   16 KiB.
//! * `breaker`: consecutive failures, and until when the endpoint is left
//!   alone.
//! * `failures`: the last [`MAX_FAILURES`] failed attempts, for
//!   `GET /v1/admin/webhooks/failures`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sessiond_core::{MAX_SECRET_VALUE_LEN, SecretName, Tenant};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;

/// How long a lease lasts without renewal: how soon another node takes
/// over from one that died.
pub const LEASE: Duration = Duration::from_secs(5);
/// Most retries one record holds.
pub const MAX_PENDING: usize = 32;
/// Most failures one record remembers.
pub const MAX_FAILURES: usize = 30;
/// Retries stop this long after an event's first failure.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The longest wait between two attempts of one event.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Consecutive failures that open the breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// Longest error text kept per failure.
const MAX_ERROR_LEN: usize = 120;

/// The record of one endpoint and tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The last settled event id handled.
    pub cursor: String,
    /// Who delivers, until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Events to try again.
    #[serde(default)]
    pub pending: Vec<Pending>,
    /// The circuit breaker.
    #[serde(default)]
    pub breaker: Breaker,
    /// Recent failed attempts, oldest first.
    #[serde(default)]
    pub failures: Vec<Failure>,
}

/// A node's hold on a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The node's random id.
    pub node: String,
    /// Unix milliseconds.
    pub until: i64,
}

/// An event to try again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The event id (and `webhook-id`).
    pub id: String,
    /// Attempts made so far.
    pub attempt: u32,
    /// Unix milliseconds of the next attempt.
    pub next_at: i64,
    /// Unix milliseconds of the first failure.
    pub first_failed_at: i64,
}

/// Consecutive failures and the open window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    /// Failed attempts in a row.
    pub failures: u32,
    /// Unix milliseconds until which nothing is sent; after it one attempt
    /// goes (half-open) and its outcome closes or reopens the breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<i64>,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The event id.
    pub event_id: String,
    /// Its kind.
    pub kind: String,
    /// Unix milliseconds of the attempt.
    pub at: i64,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// What went wrong (`HTTP 500`, `timeout`, ...): never a secret.
    pub error: String,
    /// True when no attempt follows.
    pub gave_up: bool,
}

/// Unix milliseconds of `at`.
pub fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `millis` plus `d`.
pub fn plus(at: i64, d: Duration) -> i64 {
    at.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The store name of the record of `url` and `tenant`: `webhook-` and 16
/// hex digits of their SHA-256 (a URL is no valid [`SecretName`]).
pub fn record_name(url: &str, tenant: &Tenant) -> SecretName {
    let digest = Sha256::new()
        .chain_update(url.as_bytes())
        .chain_update([0u8])
        .chain_update(tenant.as_str().as_bytes())
        .finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    // 24 bytes of [a-z0-9-]: always valid; the fallback is never taken.
    SecretName::new(format!("webhook-{hex}")).unwrap_or_else(|_| SecretName::portal_csrf())
}

/// The wait before attempt `attempt + 1`: full jitter over an exponential
/// ceiling (`initial`, doubling per attempt, at most [`MAX_BACKOFF`]), so
/// nodes and endpoints that failed together do not retry together.
pub fn backoff(initial: Duration, attempt: u32, random: u64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(30);
    let ceiling = initial.saturating_mul(1u32 << doublings).min(MAX_BACKOFF);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(random % (ceiling_ms + 1))
}

impl State {
    /// A new record whose cursor is `cursor`.
    pub fn starting_at(cursor: String) -> Self {
        Self {
            cursor,
            ..Self::default()
        }
    }

    /// Whether `node` may deliver at `now`: no lease, its own, or one that
    /// ran out.
    pub fn may_lead(&self, node: &str, now: i64) -> bool {
        self.lease.as_ref().is_none_or(|l| l.node == node || l.until <= now)
    }

    /// Whether the breaker lets an attempt go at `now`.
    pub fn breaker_allows(&self, now: i64) -> bool {
        self.breaker.open_until.is_none_or(|until| now >= until)
    }

    /// Records a success: the breaker closes.
    pub fn succeeded(&mut self) {
        self.breaker = Breaker::default();
    }

    /// Records a failed attempt; the breaker opens for `open_for` after
    /// [`BREAKER_THRESHOLD`] in a row (at once again after a failed
    /// half-open attempt).
    pub fn failed(&mut self, failure: Failure, open_for: Duration) {
        self.breaker.failures = self.breaker.failures.saturating_add(1);
        if self.breaker.failures >= BREAKER_THRESHOLD {
            self.breaker.open_until = Some(plus(failure.at, open_for));
        }
        let mut failure = failure;
        if failure.error.len() > MAX_ERROR_LEN {
            let mut end = MAX_ERROR_LEN;
            while !failure.error.is_char_boundary(end) {
                end -= 1;
            }
            failure.error.truncate(end);
        }
        self.failures.push(failure);
        let extra = self.failures.len().saturating_sub(MAX_FAILURES);
        self.failures.drain(..extra);
    }

    /// The value stored: JSON, the oldest failures dropped if it would
    /// not fit in a value.
    pub fn encode(&self) -> Vec<u8> {
        let mut state = self.clone();
        loop {
            let bytes = serde_json::to_vec(&state).unwrap_or_default();
            if bytes.len() <= MAX_SECRET_VALUE_LEN || state.failures.is_empty() {
                return bytes;
            }
            state.failures.remove(0);
        }
    }

    /// Reads a stored value.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_under_full_jitter_and_is_capped() {
        let base = Duration::from_secs(5);
        assert_eq!(
            backoff(base, 1, u64::MAX - 1),
            Duration::from_millis((u64::MAX - 1) % 5001)
        );
        assert!(backoff(base, 1, 7) <= base);
        assert_eq!(backoff(base, 3, 20_000), Duration::from_secs(20));
        assert_eq!(backoff(base, 40, 3_600_000), MAX_BACKOFF);
        assert!(backoff(base, 40, u64::MAX) <= MAX_BACKOFF);
    }

    #[test]
    fn the_breaker_opens_after_the_threshold_and_a_success_closes_it() {
        let mut state = State::starting_at(String::new());
        let failure = |at| Failure {
            event_id: "e".into(),
            kind: "revoked".into(),
            at,
            attempt: 1,
            error: "x".repeat(500),
            gave_up: false,
        };
        for i in 0..BREAKER_THRESHOLD {
            assert!(state.breaker_allows(i64::from(i)));
            state.failed(failure(i64::from(i)), Duration::from_secs(30));
        }
        assert!(!state.breaker_allows(10));
        assert!(state.breaker_allows(30_004));
        assert_eq!(state.failures[0].error.len(), MAX_ERROR_LEN);
        state.succeeded();
        assert!(state.breaker_allows(10));
        for i in 0..100 {
            state.failed(failure(i), Duration::from_secs(30));
        }
        assert_eq!(state.failures.len(), MAX_FAILURES);
        assert!(state.encode().len() <= MAX_SECRET_VALUE_LEN);
        assert_eq!(State::decode(&state.encode()).unwrap(), state);
    }

    #[test]
    fn leases_exclude_other_nodes_until_they_run_out() {
        let mut state = State::starting_at(String::new());
        assert!(state.may_lead("a", 0));
        state.lease = Some(Lease {
            node: "a".into(),
            until: 5_000,
        });
        assert!(state.may_lead("a", 1));
        assert!(!state.may_lead("b", 4_999));
        assert!(state.may_lead("b", 5_000));
        let name = record_name("https://x.example/", &Tenant::default_tenant());
        assert_eq!(name.as_str().len(), 24);
        assert_ne!(name, record_name("https://x.example/", &Tenant::new("other").unwrap()));
    }
}
