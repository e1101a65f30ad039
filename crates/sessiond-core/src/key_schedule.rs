//! When access-token signing keys are made, start signing and are dropped.
//!
//! Every node runs the same plan over the same stored record: the plan is a
//! pure function of the record, the time and the configuration, so nodes
//! racing to apply it compute the same change, and the store's
//! compare-and-set lets exactly one of them write it.
//!
//! The timeline of one key, with `ttl` the access-token lifetime:
//!
//! ```text
//!   added ──lead──▶ signs_from ──(until the next key signs)──▶ superseded ──retention──▶ dropped
//! ```
//!
//! * `lead` = `ttl` + `refresh` + `margin`: a key is in the JWKS at least
//!   one token lifetime before any token carries it (verifiers that cached
//!   the JWKS have refetched by then), plus the time every node needs to
//!   read it, plus room for clock differences.
//! * `retention` = the same span after the next key starts signing: a node
//!   that has not read the new key yet signs with the old one for at most
//!   `refresh` more, and its tokens live `ttl`.
//! * The first key of an empty store signs at once: no token exists yet
//!   that a verifier could have cached a JWKS for.

use std::time::Duration;

/// Longest access-token lifetime the schedule allows (API.md: at most one
/// hour).
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A key as the plan sees it: its id and when it signs from (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedKey {
    /// The key id.
    pub kid: String,
    /// First second at which it signs.
    pub signs_from: i64,
}

/// What the plan changes in a record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Ids of keys to drop: superseded, and past their retention.
    pub drop: Vec<String>,
    /// When a new key should be added, the second it signs from.
    pub add_signing_from: Option<i64>,
}

impl Plan {
    /// True when the record stays as it is.
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.add_signing_from.is_none()
    }
}

/// A schedule that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The access-token lifetime is zero or over an hour.
    #[error("access_token_ttl must be between 1s and 1h, not {0:?}")]
    Lifetime(Duration),
    /// Rotation so frequent that a key would be superseded before the next
    /// one could be published ahead of it.
    #[error("key_rotation must be at least {min:?} for this access_token_ttl, not {given:?}")]
    RotationTooShort {
        /// The least allowed.
        min: Duration,
        /// What was configured.
        given: Duration,
    },
}

/// The rotation schedule of signing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySchedule {
    ttl: Duration,
    rotation: Duration,
}

impl KeySchedule {
    /// A schedule for tokens living `access_token_ttl`, with a new key every
    /// `key_rotation`. The rotation must leave room for a key's lead and its
    /// predecessor's retention, so at most three keys exist at once.
    pub fn new(access_token_ttl: Duration, key_rotation: Duration) -> Result<Self, ScheduleError> {
        if access_token_ttl < Duration::from_secs(1) || access_token_ttl > MAX_ACCESS_TOKEN_TTL {
            return Err(ScheduleError::Lifetime(access_token_ttl));
        }
        let schedule = Self {
            ttl: access_token_ttl,
            rotation: key_rotation,
        };
        let min = schedule.lead() + schedule.retention();
        if key_rotation < min {
            return Err(ScheduleError::RotationTooShort {
                min,
                given: key_rotation,
            });
        }
        Ok(schedule)
    }

    /// How long an access token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often each node reads the stored keys again (and applies the
    /// plan): a quarter of the lifetime, between 1 and 10 seconds.
    pub fn refresh(&self) -> Duration {
        (self.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
    }

    /// Room for clocks that differ between nodes and verifiers.
    fn margin(&self) -> Duration {
        (self.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// How long before it signs a key is published.
    pub fn lead(&self) -> Duration {
        self.ttl + self.refresh() + self.margin()
    }

    /// How long a superseded key stays published.
    pub fn retention(&self) -> Duration {
        self.ttl + self.refresh() + self.margin()
    }

    /// The `max-age` of the served JWKS: half a token lifetime, at most 5
    /// minutes, well inside a new key's lead, so a cached JWKS always holds
    /// the key before a token signed with it can arrive.
    pub fn jwks_max_age(&self) -> Duration {
        (self.ttl / 2).clamp(Duration::from_secs(1), Duration::from_secs(300))
    }

    /// What to change in `keys` (any order) at `now` (Unix seconds). An
    /// empty record is the caller's to create: its first key signs at once.
    pub fn plan(&self, keys: &[PlannedKey], now: i64) -> Plan {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let mut sorted: Vec<&PlannedKey> = keys.iter().collect();
        sorted.sort_by_key(|k| k.signs_from);
        let current = sorted.iter().rposition(|k| k.signs_from <= now);
        let mut plan = Plan::default();
        let Some(current) = current else {
            // Nothing signs yet (only published keys): wait for them.
            return plan;
        };
        // A key is dropped once its successor has signed for `retention`.
        for pair in sorted[..=current].windows(2) {
            if now >= pair[1].signs_from.saturating_add(secs(self.retention())) {
                plan.drop.push(pair[0].kid.clone());
            }
        }
        let has_next = current + 1 < sorted.len();
        if !has_next {
            let due = sorted[current].signs_from.saturating_add(secs(self.rotation));
            if now >= due.saturating_sub(secs(self.lead())) {
                plan.add_signing_from = Some(due.max(now.saturating_add(secs(self.lead()))));
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, signs_from: i64) -> PlannedKey {
        PlannedKey {
            kid: kid.into(),
            signs_from,
        }
    }

    fn schedule() -> KeySchedule {
        // ttl 40 s: refresh 10 s, margin 10 s, lead and retention 60 s.
        KeySchedule::new(Duration::from_secs(40), Duration::from_secs(1000)).unwrap()
    }

    #[test]
    fn lead_and_retention_cover_a_lifetime_a_refresh_and_a_margin() {
        let s = schedule();
        assert_eq!(s.refresh(), Duration::from_secs(10));
        assert_eq!(s.lead(), Duration::from_secs(60));
        assert_eq!(s.retention(), Duration::from_secs(60));
        assert!(s.jwks_max_age() < s.lead() - s.refresh());
        let default = KeySchedule::new(Duration::from_secs(300), Duration::from_secs(30 * 86_400)).unwrap();
        assert_eq!(default.jwks_max_age(), Duration::from_secs(150));
    }

    #[test]
    fn schedules_that_cannot_overlap_are_refused() {
        assert_eq!(
            KeySchedule::new(Duration::ZERO, Duration::from_secs(1000)),
            Err(ScheduleError::Lifetime(Duration::ZERO))
        );
        assert_eq!(
            KeySchedule::new(Duration::from_secs(3601), Duration::from_secs(1_000_000)),
            Err(ScheduleError::Lifetime(Duration::from_secs(3601)))
        );
        assert_eq!(
            KeySchedule::new(Duration::from_secs(40), Duration::from_secs(119)),
            Err(ScheduleError::RotationTooShort {
                min: Duration::from_secs(120),
                given: Duration::from_secs(119)
            })
        );
    }

    #[test]
    fn a_next_key_is_published_one_lead_before_the_rotation_is_due() {
        let s = schedule();
        let keys = [key("a", 0)];
        assert!(s.plan(&keys, 939).is_empty());
        assert_eq!(s.plan(&keys, 940).add_signing_from, Some(1000));
        // A node that was down past the due time still gives the lead.
        assert_eq!(s.plan(&keys, 5000).add_signing_from, Some(5060));
    }

    #[test]
    fn a_published_next_key_is_not_added_twice() {
        let s = schedule();
        assert!(s.plan(&[key("a", 0), key("b", 1000)], 990).is_empty());
    }

    #[test]
    fn a_superseded_key_is_dropped_after_its_retention_and_not_before() {
        let s = schedule();
        let keys = [key("a", 0), key("b", 1000)];
        assert!(s.plan(&keys, 1059).drop.is_empty());
        assert_eq!(s.plan(&keys, 1060).drop, vec!["a".to_owned()]);
    }

    #[test]
    fn only_published_keys_wait() {
        assert!(schedule().plan(&[key("a", 100)], 50).is_empty());
    }
}
