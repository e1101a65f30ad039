//! The revoked sessions a verifier knows of, per tenant.
//!
//! An entry from the feed says: every access token of session `session_id`
//! in `tenant` is dead, and none of them outlives `access_tokens_valid_until`.
//! The entry is kept until that instant plus the verifier's leeway (a token
//! whose `exp` is the instant is still accepted for the leeway), then it is
//! useless and pruned. Pruning walks a deadline-ordered index from its front,
//! so it costs only the entries it removes; nobody sweeps the whole map.
//!
//! Memory is bounded by a cap on entries ([`DEFAULT_CAPACITY`] by default,
//! roughly 150 MB at 1,000,000 entries with typical ids). Past the cap the
//! set fails closed without growing: it drops the entry whose deadline
//! comes first and remembers, in one pair of numbers, the latest
//! `revoked_at` and deadline of everything it dropped. Until that deadline
//! passes, every token issued at or before that `revoked_at` is treated as
//! revoked, in any session. Legitimate clients get a fresh access token from
//! sessiond (their next refresh) and carry on; holders of tokens of the
//! dropped sessions get nothing. A warning is logged when this starts.
//!
//! All times are Unix seconds. Instants with a fraction are rounded up, so
//! rounding never shortens a revocation.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use time::OffsetDateTime;

/// The cap on entries a verifier holds unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// One entry of the revocation feed.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Revoked {
    pub session_id: String,
    pub tenant: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub access_tokens_valid_until: OffsetDateTime,
}

/// Unix seconds, rounded up.
fn ceil_seconds(at: OffsetDateTime) -> i64 {
    let seconds = at.unix_timestamp();
    if at.nanosecond() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    }
}

/// Everything dropped past the cap, folded into one bound.
#[derive(Debug, Clone, Copy)]
struct Overflow {
    /// Tokens issued at or before this are suspect…
    revoked_at: i64,
    /// …until this (deadline, leeway included).
    until: i64,
}

/// Revoked sessions by tenant, each with the deadline after which it can
/// be forgotten.
#[derive(Debug)]
pub(crate) struct RevocationSet {
    by_tenant: HashMap<Arc<str>, HashMap<Arc<str>, i64>>,
    by_deadline: BTreeSet<(i64, Arc<str>, Arc<str>)>,
    capacity: usize,
    /// Seconds kept past `access_tokens_valid_until`: the verifier's leeway.
    grace: i64,
    overflow: Option<Overflow>,
}

impl RevocationSet {
    pub(crate) fn new(capacity: usize, grace: i64) -> Self {
        RevocationSet {
            by_tenant: HashMap::new(),
            by_deadline: BTreeSet::new(),
            capacity: capacity.max(1),
            grace,
            overflow: None,
        }
    }

    /// How many sessions are held.
    pub(crate) fn len(&self) -> usize {
        self.by_deadline.len()
    }

    /// Whether a token of session `sid` in `tenant`, issued at `iat`, is
    /// revoked at `now`.
    pub(crate) fn is_revoked(&self, tenant: &str, sid: &str, iat: i64, now: i64) -> bool {
        let listed = self
            .by_tenant
            .get(tenant)
            .and_then(|sessions| sessions.get(sid))
            .is_some_and(|deadline| now < *deadline);
        listed || self.overflow.is_some_and(|o| now < o.until && iat <= o.revoked_at)
    }

    /// Records an entry at `now`. An entry already past its deadline is
    /// ignored; a repeated one keeps the later deadline.
    pub(crate) fn insert(&mut self, entry: &Revoked, now: i64) {
        let deadline = ceil_seconds(entry.access_tokens_valid_until).saturating_add(self.grace);
        if deadline <= now {
            return;
        }
        let tenant: Arc<str> = match self.by_tenant.get_key_value(entry.tenant.as_str()) {
            Some((tenant, _)) => Arc::clone(tenant),
            None => Arc::from(entry.tenant.as_str()),
        };
        let sessions = self.by_tenant.entry(Arc::clone(&tenant)).or_default();
        if let Some((sid, old)) = sessions.get_key_value(entry.session_id.as_str()) {
            let (sid, old) = (Arc::clone(sid), *old);
            if deadline > old {
                sessions.insert(Arc::clone(&sid), deadline);
                self.by_deadline.remove(&(old, Arc::clone(&tenant), Arc::clone(&sid)));
                self.by_deadline.insert((deadline, tenant, sid));
            }
            return;
        }
        let sid: Arc<str> = Arc::from(entry.session_id.as_str());
        sessions.insert(Arc::clone(&sid), deadline);
        self.by_deadline.insert((deadline, tenant, sid));
        while self.by_deadline.len() > self.capacity {
            self.drop_first(ceil_seconds(entry.revoked_at));
        }
    }

    /// Drops the entry whose deadline comes first, failing closed for it.
    fn drop_first(&mut self, newest_revoked_at: i64) {
        let Some((deadline, tenant, sid)) = self.by_deadline.pop_first() else {
            return;
        };
        self.remove_from_map(&tenant, &sid);
        if self.overflow.is_none() {
            tracing::warn!(
                capacity = self.capacity,
                "revocation set full: tokens issued before the latest dropped revocation are refused until it expires"
            );
        }
        // The dropped entry was revoked no later than the newest one seen.
        let bound = Overflow {
            revoked_at: newest_revoked_at,
            until: deadline,
        };
        self.overflow = Some(match self.overflow {
            Some(o) => Overflow {
                revoked_at: o.revoked_at.max(bound.revoked_at),
                until: o.until.max(bound.until),
            },
            None => bound,
        });
    }

    fn remove_from_map(&mut self, tenant: &str, sid: &str) {
        if let Some(sessions) = self.by_tenant.get_mut(tenant) {
            sessions.remove(sid);
            if sessions.is_empty() {
                self.by_tenant.remove(tenant);
            }
        }
    }

    /// Forgets every entry whose deadline has passed at `now`.
    pub(crate) fn prune(&mut self, now: i64) {
        while let Some(first) = self.by_deadline.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, tenant, sid)) = self.by_deadline.pop_first() {
                self.remove_from_map(&tenant, &sid);
            }
        }
        if self.overflow.is_some_and(|o| o.until <= now) {
            self.overflow = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn entry(tenant: &str, sid: &str, revoked_at: i64, valid_until: i64) -> Revoked {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Revoked {
            session_id: sid.into(),
            tenant: tenant.into(),
            revoked_at: at(revoked_at),
            access_tokens_valid_until: at(valid_until),
        }
    }

    #[test]
    fn a_revoked_session_is_revoked_in_its_tenant_only() {
        let mut set = RevocationSet::new(10, 30);
        set.insert(&entry("t1", "s1", NOW, NOW + 300), NOW);
        assert!(set.is_revoked("t1", "s1", NOW - 5, NOW));
        assert!(!set.is_revoked("t2", "s1", NOW - 5, NOW));
        assert!(!set.is_revoked("t1", "s2", NOW - 5, NOW));
    }

    #[test]
    fn entries_last_until_valid_until_plus_grace_then_are_pruned() {
        let mut set = RevocationSet::new(10, 30);
        set.insert(&entry("t", "s", NOW, NOW + 300), NOW);
        assert!(set.is_revoked("t", "s", NOW, NOW + 329));
        assert!(!set.is_revoked("t", "s", NOW, NOW + 330));
        set.prune(NOW + 329);
        assert_eq!(set.len(), 1);
        set.prune(NOW + 330);
        assert_eq!(set.len(), 0);
        assert!(set.by_tenant.is_empty());
        // Already dead on arrival: not stored at all.
        set.insert(&entry("t", "s", NOW - 900, NOW - 600), NOW);
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn a_repeated_entry_keeps_the_later_deadline() {
        let mut set = RevocationSet::new(10, 0);
        set.insert(&entry("t", "s", NOW, NOW + 100), NOW);
        set.insert(&entry("t", "s", NOW, NOW + 50), NOW);
        set.insert(&entry("t", "s", NOW, NOW + 200), NOW);
        assert_eq!(set.len(), 1);
        set.prune(NOW + 150);
        assert!(set.is_revoked("t", "s", NOW, NOW + 150));
    }

    #[test]
    fn past_the_cap_it_fails_closed_for_older_tokens() {
        let mut set = RevocationSet::new(2, 0);
        set.insert(&entry("t", "a", NOW - 10, NOW + 100), NOW);
        set.insert(&entry("t", "b", NOW - 5, NOW + 200), NOW);
        set.insert(&entry("t", "c", NOW, NOW + 300), NOW);
        assert_eq!(set.len(), 2);
        // "a" was dropped, but its tokens are still refused…
        assert!(set.is_revoked("t", "a", NOW - 20, NOW + 1));
        // …as are other sessions' tokens issued before the newest revocation…
        assert!(set.is_revoked("t", "z", NOW, NOW + 1));
        // …but not tokens issued after it, nor after the dropped deadline.
        assert!(!set.is_revoked("t", "z", NOW + 1, NOW + 1));
        assert!(!set.is_revoked("t", "z", NOW - 20, NOW + 100));
        set.prune(NOW + 100);
        assert!(set.overflow.is_none());
        assert!(set.is_revoked("t", "b", NOW - 20, NOW + 100));
    }

    #[test]
    fn fractions_round_towards_longer_revocation() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(NOW) * 1_000_000_000 + 1)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(ceil_seconds(at), NOW + 1);
    }
}
