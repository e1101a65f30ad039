//! The lifetime rules a [`SessionManager`](crate::SessionManager) enforces.

use std::time::Duration;

use crate::client_binding::{BindingError, ClientBinding};
use crate::session::{Aal, Session};

/// What to do when a subject already has the maximum number of live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitAction {
    /// Refuse the new session ([`Error::SessionLimit`](crate::Error::SessionLimit)).
    #[default]
    Deny,
    /// Revoke the subject's oldest session (by creation time) to make room.
    EvictOldest,
}

/// Session lifetime policy.
///
/// The defaults follow NIST SP 800-63B at AAL2: 30 minutes idle, 12 hours
/// absolute; "remember me" sessions get 7 days idle and 30 days absolute.
/// Whatever those say, a session at AAL2 lives at most 24 hours and one at
/// AAL3 at most 12 hours from its last authentication (800-63B §4.2.3, §4.3.3):
/// the higher the assurance, the sooner it must be proven again.
/// [`Policy::validate`] rejects combinations that make no sense; the manager
/// refuses to start with an invalid policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A session unused for this long expires.
    pub idle_timeout: Duration,
    /// A session expires this long after it was created (or last
    /// re-authenticated), however busy.
    pub absolute_timeout: Duration,
    /// Idle timeout of a "remember me" session.
    pub remember_me_idle_timeout: Duration,
    /// Absolute timeout of a "remember me" session.
    pub remember_me_absolute_timeout: Duration,
    /// Longest absolute lifetime of a session at AAL2, remember-me or not.
    pub aal2_absolute_timeout: Duration,
    /// Longest absolute lifetime of a session at AAL3, remember-me or not.
    pub aal3_absolute_timeout: Duration,
    /// The idle deadline is pushed forward (a store write) only when the last
    /// persisted use is older than this, so most verifications are reads.
    pub touch_interval: Duration,
    /// After a rotation the old token keeps verifying for this long, so that
    /// requests already in flight succeed. Zero: the old token dies at once.
    pub rotation_grace: Duration,
    /// Theft detection: a rotated-out token presented after its grace
    /// means two parties hold the session, so the session is revoked
    /// (reason `theft`). Pick the grace to cover requests a client may
    /// still have in flight with the old token when it rotates.
    pub reuse_detection: bool,
    /// Most live sessions one subject may hold; 0 means no limit.
    pub max_sessions_per_subject: u32,
    /// What happens at that limit.
    pub on_session_limit: LimitAction,
    /// Largest `data` object, measured as compact JSON, in bytes.
    pub max_data_bytes: usize,
    /// What a request from a client unlike the one that created the
    /// session does (hijack defence).
    pub client_binding: ClientBinding,
    /// Idle timeout of an anonymous session (a visitor before sign-in).
    pub anonymous_idle_timeout: Duration,
    /// Absolute timeout of an anonymous session.
    pub anonymous_absolute_timeout: Duration,
    /// Largest `data` object of an anonymous session: anyone can create
    /// one, so it holds a cart and preferences, not a document.
    pub anonymous_max_data_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            remember_me_idle_timeout: Duration::from_secs(7 * 86_400),
            remember_me_absolute_timeout: Duration::from_secs(30 * 86_400),
            aal2_absolute_timeout: Duration::from_secs(24 * 3600),
            aal3_absolute_timeout: Duration::from_secs(12 * 3600),
            touch_interval: Duration::from_secs(60),
            rotation_grace: Duration::ZERO,
            reuse_detection: true,
            max_sessions_per_subject: 0,
            on_session_limit: LimitAction::Deny,
            max_data_bytes: 16 * 1024,
            client_binding: ClientBinding::default(),
            anonymous_idle_timeout: Duration::from_secs(30 * 60),
            anonymous_absolute_timeout: Duration::from_secs(24 * 3600),
            anonymous_max_data_bytes: 4 * 1024,
        }
    }
}

/// Browsers cap cookie lifetimes at 400 days; a longer session could not be
/// carried by a cookie anyway, so it is almost certainly a typo.
pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 86_400);

/// Upper bound on `max_data_bytes`: session data is read on every request.
pub const MAX_DATA_BYTES_LIMIT: usize = 1024 * 1024;

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A duration that must be positive is zero.
    #[error("policy: {0} must be greater than zero")]
    Zero(&'static str),
    /// An idle timeout is longer than its absolute timeout.
    #[error("policy: {idle} must not exceed {absolute}")]
    IdleExceedsAbsolute {
        /// The idle key.
        idle: &'static str,
        /// The absolute key.
        absolute: &'static str,
    },
    /// The touch interval is not shorter than an idle timeout, so sessions
    /// would expire between touches.
    #[error("policy: touch_interval must be shorter than {0}")]
    TouchTooLong(&'static str),
    /// The rotation grace is not shorter than the idle timeout.
    #[error("policy: rotation_grace must be shorter than idle_timeout")]
    GraceTooLong,
    /// A lifetime exceeds [`MAX_LIFETIME`].
    #[error("policy: {0} exceeds 400 days")]
    TooLong(&'static str),
    /// The AAL3 cap is longer than the AAL2 one: a higher level would
    /// outlive a lower one.
    #[error("policy: aal3_absolute_timeout must not exceed aal2_absolute_timeout")]
    AalCapsInverted,
    /// `max_data_bytes` or `anonymous_max_data_bytes` is below 2 or above
    /// [`MAX_DATA_BYTES_LIMIT`].
    #[error("policy: max_data_bytes and anonymous_max_data_bytes must be between 2 and {MAX_DATA_BYTES_LIMIT}")]
    DataLimit,
    /// The client binding's prefix lengths are out of range.
    #[error(transparent)]
    Binding(#[from] BindingError),
}

impl Policy {
    /// Checks that the policy is coherent.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let lifetimes = [
            ("idle_timeout", self.idle_timeout),
            ("absolute_timeout", self.absolute_timeout),
            ("remember_me_idle_timeout", self.remember_me_idle_timeout),
            ("remember_me_absolute_timeout", self.remember_me_absolute_timeout),
            ("aal2_absolute_timeout", self.aal2_absolute_timeout),
            ("aal3_absolute_timeout", self.aal3_absolute_timeout),
            ("touch_interval", self.touch_interval),
            ("anonymous_idle_timeout", self.anonymous_idle_timeout),
            ("anonymous_absolute_timeout", self.anonymous_absolute_timeout),
        ];
        for (name, value) in lifetimes {
            if value.is_zero() {
                return Err(PolicyError::Zero(name));
            }
            if value > MAX_LIFETIME {
                return Err(PolicyError::TooLong(name));
            }
        }
        let pairs = [
            (
                "idle_timeout",
                self.idle_timeout,
                "absolute_timeout",
                self.absolute_timeout,
            ),
            (
                "remember_me_idle_timeout",
                self.remember_me_idle_timeout,
                "remember_me_absolute_timeout",
                self.remember_me_absolute_timeout,
            ),
            (
                "anonymous_idle_timeout",
                self.anonymous_idle_timeout,
                "anonymous_absolute_timeout",
                self.anonymous_absolute_timeout,
            ),
        ];
        for (idle, idle_value, absolute, absolute_value) in pairs {
            if idle_value > absolute_value {
                return Err(PolicyError::IdleExceedsAbsolute { idle, absolute });
            }
            if self.touch_interval >= idle_value {
                return Err(PolicyError::TouchTooLong(idle));
            }
        }
        if self.aal3_absolute_timeout > self.aal2_absolute_timeout {
            return Err(PolicyError::AalCapsInverted);
        }
        if self.rotation_grace >= self.idle_timeout {
            return Err(PolicyError::GraceTooLong);
        }
        // "{}" is the smallest data object, two bytes.
        for max in [self.max_data_bytes, self.anonymous_max_data_bytes] {
            if !(2..=MAX_DATA_BYTES_LIMIT).contains(&max) {
                return Err(PolicyError::DataLimit);
            }
        }
        self.client_binding.validate()?;
        Ok(())
    }

    /// The idle and absolute timeouts of a session by its remember-me flag
    /// alone; the absolute one is further capped by the session's level, see
    /// [`Policy::absolute_timeout_at`].
    pub fn timeouts(&self, remember_me: bool) -> (Duration, Duration) {
        if remember_me {
            (self.remember_me_idle_timeout, self.remember_me_absolute_timeout)
        } else {
            (self.idle_timeout, self.absolute_timeout)
        }
    }

    /// The idle timeout of `session`: by its kind and remember-me flag.
    pub fn idle_timeout_of(&self, session: &Session) -> Duration {
        if session.is_anonymous() {
            self.anonymous_idle_timeout
        } else {
            self.timeouts(session.remember_me).0
        }
    }

    /// The largest data object `session` may hold.
    pub fn max_data_bytes_of(&self, session: &Session) -> usize {
        if session.is_anonymous() {
            self.anonymous_max_data_bytes
        } else {
            self.max_data_bytes
        }
    }

    /// How long after its last authentication a session at `aal` may live:
    /// its remember-me or normal absolute timeout, capped by the level's.
    pub fn absolute_timeout_at(&self, remember_me: bool, aal: Aal) -> Duration {
        let (_, absolute) = self.timeouts(remember_me);
        let cap = if aal >= Aal::AAL3 {
            self.aal3_absolute_timeout
        } else if aal >= Aal::AAL2 {
            self.aal2_absolute_timeout
        } else {
            // AAL1 has no cap of its own beyond the timeouts above.
            return absolute;
        };
        absolute.min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_secure() {
        let p = Policy::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.idle_timeout, Duration::from_secs(1800));
        assert_eq!(p.absolute_timeout, Duration::from_secs(43_200));
        assert_eq!(p.rotation_grace, Duration::ZERO);
        assert_eq!(p.aal2_absolute_timeout, Duration::from_secs(24 * 3600));
        assert_eq!(p.aal3_absolute_timeout, Duration::from_secs(12 * 3600));
    }

    #[test]
    fn the_level_caps_the_absolute_timeout() {
        let p = Policy::default();
        let day = Duration::from_secs(86_400);
        assert_eq!(p.absolute_timeout_at(true, Aal::AAL1), 30 * day);
        assert_eq!(p.absolute_timeout_at(true, Aal::AAL2), day);
        assert_eq!(p.absolute_timeout_at(true, Aal::AAL3), day / 2);
        // The normal 12 h is already within both caps.
        assert_eq!(p.absolute_timeout_at(false, Aal::AAL2), day / 2);
        assert_eq!(p.absolute_timeout_at(false, Aal::AAL3), day / 2);
    }

    #[test]
    fn level_caps_are_validated() {
        let base = Policy::default();
        let zero = Policy {
            aal3_absolute_timeout: Duration::ZERO,
            ..base.clone()
        };
        assert_eq!(zero.validate(), Err(PolicyError::Zero("aal3_absolute_timeout")));
        let long = Policy {
            aal2_absolute_timeout: Duration::from_secs(401 * 86_400),
            ..base.clone()
        };
        assert_eq!(long.validate(), Err(PolicyError::TooLong("aal2_absolute_timeout")));
        let inverted = Policy {
            aal3_absolute_timeout: Duration::from_secs(25 * 3600),
            ..base
        };
        assert_eq!(inverted.validate(), Err(PolicyError::AalCapsInverted));
    }

    #[test]
    fn nonsense_is_rejected_with_the_offending_key() {
        let base = Policy::default();
        let zero_idle = Policy {
            idle_timeout: Duration::ZERO,
            ..base.clone()
        };
        assert_eq!(zero_idle.validate(), Err(PolicyError::Zero("idle_timeout")));

        let idle_over_absolute = Policy {
            idle_timeout: Duration::from_secs(13 * 3600),
            ..base.clone()
        };
        assert_eq!(
            idle_over_absolute.validate(),
            Err(PolicyError::IdleExceedsAbsolute {
                idle: "idle_timeout",
                absolute: "absolute_timeout"
            })
        );

        let touch = Policy {
            touch_interval: Duration::from_secs(1800),
            ..base.clone()
        };
        assert_eq!(touch.validate(), Err(PolicyError::TouchTooLong("idle_timeout")));

        let grace = Policy {
            rotation_grace: Duration::from_secs(1800),
            ..base.clone()
        };
        assert_eq!(grace.validate(), Err(PolicyError::GraceTooLong));

        let long = Policy {
            remember_me_absolute_timeout: Duration::from_secs(401 * 86_400),
            ..base.clone()
        };
        assert_eq!(
            long.validate(),
            Err(PolicyError::TooLong("remember_me_absolute_timeout"))
        );

        let data = Policy {
            max_data_bytes: 0,
            ..base.clone()
        };
        assert_eq!(data.validate(), Err(PolicyError::DataLimit));

        let anonymous_data = Policy {
            anonymous_max_data_bytes: 1,
            ..base.clone()
        };
        assert_eq!(anonymous_data.validate(), Err(PolicyError::DataLimit));

        let anonymous_idle = Policy {
            anonymous_idle_timeout: Duration::from_secs(25 * 3600),
            ..base
        };
        assert_eq!(
            anonymous_idle.validate(),
            Err(PolicyError::IdleExceedsAbsolute {
                idle: "anonymous_idle_timeout",
                absolute: "anonymous_absolute_timeout"
            })
        );
    }
}
