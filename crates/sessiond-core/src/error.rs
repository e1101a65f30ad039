//! Errors of the manager.

use crate::events::Rejection;
use crate::ids::NameError;
use crate::policy::PolicyError;
use crate::session::{Aal, AalError};
use crate::store::StoreError;

/// The operating system could not supply random bytes. Nothing is created
/// without them.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessError {
    #[source]
    source: getrandom::Error,
}

impl RandomnessError {
    pub(crate) fn new(source: getrandom::Error) -> Self {
        Self { source }
    }
}

/// Everything a [`SessionManager`](crate::SessionManager) operation can fail with.
///
/// The stable codes an API answers with are `sessiond_wire::ErrorCode`'s.
/// Every [`Error::Rejected`] must look the same to a caller, whatever the
/// [`Rejection`]: callers must not learn whether a token was unknown,
/// expired or revoked. The reason is for events and logs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token does not name a valid session.
    #[error("invalid or expired session token")]
    Rejected(Rejection),
    /// No session with this id (in this tenant).
    #[error("session not found")]
    NotFound,
    /// A compare-and-set update lost: the session changed since it was read.
    #[error("session was modified concurrently (current version {current})")]
    VersionConflict {
        /// The version the session has now.
        current: u64,
    },
    /// The subject has reached its session limit and the policy is `deny`.
    #[error("the subject has reached its session limit")]
    SessionLimit,
    /// An anonymous session was asked for something only a signed-in one
    /// may do (a step-up, re-authentication, an access token), or a
    /// sign-in named a session that is not anonymous. Answered like an
    /// invalid token: an anonymous session proves nobody's identity.
    #[error("the session is not the kind the operation needs (anonymous or signed in)")]
    WrongKind,
    /// The client address has created too many anonymous sessions
    /// recently ([`SessionManagerBuilder::anonymous_limit`](crate::SessionManagerBuilder::anonymous_limit)).
    #[error("too many anonymous sessions from this address; retry in {} s", retry_after.as_secs())]
    AnonymousLimit {
        /// How long until the address may create one again.
        retry_after: std::time::Duration,
    },
    /// The anonymous-creation counters failed; nothing was created (fail
    /// closed, like the store).
    #[error("anonymous-session counters failed")]
    Counters(#[source] crate::counters::CounterStoreError),
    /// The data object is larger than the policy allows.
    #[error("session data is {size} bytes, more than the limit of {max}")]
    DataTooLarge {
        /// Its size as compact JSON.
        size: usize,
        /// The policy's limit.
        max: usize,
    },
    /// A subject or tenant name was refused.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// An AAL outside 1..=3.
    #[error(transparent)]
    InvalidAal(#[from] AalError),
    /// A rotation asked for a level below the session's without asking for
    /// a [`Downgrade`](crate::Rotation::Downgrade): refused, so that a
    /// confused or hostile caller cannot lower a session while claiming to
    /// re-authenticate it.
    #[error("aal {requested} is below the session's aal {current}; a downgrade must be asked for")]
    AalDowngrade {
        /// The session's level.
        current: Aal,
        /// The level asked for.
        requested: Aal,
    },
    /// A [`StepUp`](crate::Rotation::StepUp) to the level the session already has.
    #[error("aal {requested} is not above the session's aal {current}")]
    AalNotHigher {
        /// The session's level.
        current: Aal,
        /// The level asked for.
        requested: Aal,
    },
    /// A [`Downgrade`](crate::Rotation::Downgrade) to a level not below the session's.
    #[error("aal {requested} is not below the session's aal {current}")]
    AalNotLower {
        /// The session's level.
        current: Aal,
        /// The level asked for.
        requested: Aal,
    },
    /// The policy given to the manager is incoherent.
    #[error(transparent)]
    InvalidPolicy(#[from] PolicyError),
    /// The store failed; the operation did not happen (fail closed).
    #[error("session store failed")]
    Store(#[source] StoreError),
    /// No randomness: no token can be made.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
}

impl From<StoreError> for Error {
    fn from(value: StoreError) -> Self {
        Error::Store(value)
    }
}
