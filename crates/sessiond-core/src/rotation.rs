//! [`Rotation`]: what a rotation does to a session's assurance level, its
//! authentication time and its absolute deadline.
//!
//! Raising the level, proving identity again and lowering the level are
//! distinct, explicit operations (issue 12, finding 10): before, any rotation
//! that named a level reset `authenticated_at`, even one from AAL3 down to
//! AAL1, and none restarted the absolute deadline. The operation is resolved
//! against the session as read inside the manager's compare-and-set loop, so
//! a concurrent step-up cannot turn a "same level" request into a silent
//! downgrade.

use time::OffsetDateTime;

use crate::error::Error;
use crate::events::EventKind;
use crate::manager::after;
use crate::policy::Policy;
use crate::session::{Aal, Session};

/// What a [`SessionManager::rotate`](crate::SessionManager::rotate) does
/// besides issuing a new token.
///
/// In every case the idle deadline restarts from now, never past the
/// absolute deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// A new token only: level, `authenticated_at` and the absolute deadline
    /// stay as they are (privilege change, periodic rotation).
    #[default]
    Plain,
    /// The user proved who they are again at the session's current level:
    /// `authenticated_at` becomes now and the absolute deadline restarts
    /// from now.
    Reauthenticate,
    /// The user proved a higher level: it must be strictly above the
    /// session's ([`Error::AalDowngrade`] if below, [`Error::AalNotHigher`] if
    /// equal). Re-authenticates at that level, capped by its absolute
    /// timeout, and records an `elevated` event.
    StepUp(Aal),
    /// Lowers the level on purpose (e.g. the user removed a factor): it must
    /// be strictly below the session's, else [`Error::AalNotLower`]. Not an
    /// authentication: `authenticated_at` is kept and the absolute deadline
    /// is never extended.
    Downgrade(Aal),
    /// "The session's level should be `aal`", resolved against the level
    /// found when the rotation is applied: a higher `aal` is a
    /// [`StepUp`](Rotation::StepUp); the same level is a
    /// [`Reauthenticate`](Rotation::Reauthenticate) if `reauthenticated`, else
    /// [`Plain`](Rotation::Plain); a lower one is refused with
    /// [`Error::AalDowngrade`] (ask for a [`Downgrade`](Rotation::Downgrade)).
    AtLevel {
        /// The level the caller believes the user has proven.
        aal: Aal,
        /// Whether the user has just proven it (a fresh authentication).
        reauthenticated: bool,
    },
}

impl Rotation {
    /// Resolves [`Rotation::AtLevel`] against the session's `current` level
    /// and checks the explicit operations against it.
    fn resolve(self, current: Aal) -> Result<Self, Error> {
        match self {
            Rotation::AtLevel { aal, .. } if aal < current => Err(Error::AalDowngrade {
                current,
                requested: aal,
            }),
            Rotation::AtLevel { aal, .. } if aal > current => Ok(Rotation::StepUp(aal)),
            Rotation::AtLevel {
                reauthenticated: true, ..
            } => Ok(Rotation::Reauthenticate),
            Rotation::AtLevel { .. } => Ok(Rotation::Plain),
            Rotation::StepUp(aal) if aal < current => Err(Error::AalDowngrade {
                current,
                requested: aal,
            }),
            Rotation::StepUp(aal) if aal == current => Err(Error::AalNotHigher {
                current,
                requested: aal,
            }),
            Rotation::Downgrade(aal) if aal >= current => Err(Error::AalNotLower {
                current,
                requested: aal,
            }),
            other => Ok(other),
        }
    }

    /// Applies the operation to `next`, a copy of the session as read, and
    /// returns the event that records it. Sets `aal`, `authenticated_at` and
    /// both deadlines; the caller sets the token and version.
    pub(crate) fn apply(self, next: &mut Session, now: OffsetDateTime, policy: &Policy) -> Result<EventKind, Error> {
        let resolved = self.resolve(next.aal)?;
        // An anonymous session has proven nobody: it may get a new token,
        // never a level or an authentication time.
        if next.is_anonymous() && !matches!(resolved, Rotation::Plain) {
            return Err(Error::WrongKind);
        }
        let kind = match resolved {
            Rotation::Plain | Rotation::AtLevel { .. } => EventKind::Rotated,
            Rotation::Reauthenticate => {
                next.authenticated_at = now;
                next.absolute_expires_at = after(now, policy.absolute_timeout_at(next.remember_me, next.aal));
                EventKind::Rotated
            }
            Rotation::StepUp(aal) => {
                next.aal = aal;
                next.authenticated_at = now;
                next.absolute_expires_at = after(now, policy.absolute_timeout_at(next.remember_me, aal));
                EventKind::Elevated { aal }
            }
            Rotation::Downgrade(aal) => {
                next.aal = aal;
                // What the lower level allows from the last authentication,
                // but never more than the session already had: lowering the
                // level must not buy time.
                let allowed = after(next.authenticated_at, policy.absolute_timeout_at(next.remember_me, aal));
                next.absolute_expires_at = next.absolute_expires_at.min(allowed);
                EventKind::Rotated
            }
        };
        next.idle_expires_at = after(now, policy.idle_timeout_of(next)).min(next.absolute_expires_at);
        Ok(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_level_resolves_against_the_current_level() {
        let at = |aal, reauthenticated| Rotation::AtLevel { aal, reauthenticated };
        assert!(matches!(at(Aal::AAL2, false).resolve(Aal::AAL2), Ok(Rotation::Plain)));
        assert!(matches!(
            at(Aal::AAL2, true).resolve(Aal::AAL2),
            Ok(Rotation::Reauthenticate)
        ));
        assert!(matches!(
            at(Aal::AAL3, false).resolve(Aal::AAL2),
            Ok(Rotation::StepUp(Aal::AAL3))
        ));
        assert!(matches!(
            at(Aal::AAL1, true).resolve(Aal::AAL3),
            Err(Error::AalDowngrade {
                current: Aal::AAL3,
                requested: Aal::AAL1
            })
        ));
    }

    #[test]
    fn explicit_operations_must_change_the_level_their_way() {
        assert!(matches!(
            Rotation::StepUp(Aal::AAL2).resolve(Aal::AAL2),
            Err(Error::AalNotHigher {
                current: Aal::AAL2,
                requested: Aal::AAL2
            })
        ));
        assert!(matches!(
            Rotation::StepUp(Aal::AAL1).resolve(Aal::AAL2),
            Err(Error::AalDowngrade { .. })
        ));
        assert!(matches!(
            Rotation::Downgrade(Aal::AAL2).resolve(Aal::AAL2),
            Err(Error::AalNotLower { .. })
        ));
        assert!(matches!(
            Rotation::Downgrade(Aal::AAL3).resolve(Aal::AAL2),
            Err(Error::AalNotLower { .. })
        ));
        assert!(matches!(
            Rotation::Downgrade(Aal::AAL1).resolve(Aal::AAL3),
            Ok(Rotation::Downgrade(Aal::AAL1))
        ));
    }
}
