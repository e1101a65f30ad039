//! Where sessions live, as seen from the layer: the [`SessionBackend`] trait,
//! the session view handlers read ([`SessionInfo`]), and the in-process
//! implementation over a [`SessionManager`] (with an [`AccessTokenIssuer`]
//! when the layer keeps an access-token cookie).
//!
//! The layer holds one `Arc<dyn SessionBackend>` chosen at construction, so
//! handlers never become generic over in-process versus remote mode.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    Aal, AccessToken, AccessTokenError, AccessTokenIssuer, AnonymousOptions, ClientInfo, Clock, CreateOptions, Error,
    RevokeReason, Rotation, Session, SessionData, SessionId, SessionManager, SessionOrigin, SignInOptions, Subject,
    Token,
};
use time::OffsetDateTime;

/// The session a request carries, as handlers see it.
///
/// Cheap to clone. Deliberately narrower than the stored record: no token
/// hashes, no tenant, nothing a handler could leak that helps an attacker.
/// In-process it shares the manager's record; from a remote sessiond it
/// holds exactly what the API's session object says, nothing invented.
#[derive(Clone)]
pub struct SessionInfo {
    inner: Record,
}

#[derive(Clone)]
enum Record {
    Local(Arc<Session>),
    #[cfg(feature = "remote")]
    Remote(Arc<crate::remote::RemoteSession>),
}

/// One accessor: the same field of either kind of record.
macro_rules! field {
    ($self:ident, |$s:ident| $e:expr) => {
        match &$self.inner {
            Record::Local($s) => $e,
            #[cfg(feature = "remote")]
            Record::Remote($s) => $e,
        }
    };
}

impl SessionInfo {
    /// Wraps a session record.
    pub fn new(session: Arc<Session>) -> Self {
        Self {
            inner: Record::Local(session),
        }
    }

    #[cfg(feature = "remote")]
    pub(crate) fn remote(session: crate::remote::RemoteSession) -> Self {
        Self {
            inner: Record::Remote(Arc::new(session)),
        }
    }

    /// The public session id (for device lists; grants nothing).
    pub fn id(&self) -> &SessionId {
        field!(self, |s| &s.id)
    }

    /// Who the session belongs to: [`Subject::anonymous`] (the empty
    /// subject, which no user can have) for a visitor's session, which only
    /// [`Session::current_or_anonymous`](crate::Session::current_or_anonymous)
    /// hands out.
    pub fn subject(&self) -> &Subject {
        field!(self, |s| &s.subject)
    }

    /// Whether this is a visitor's session, started by a data write before
    /// sign-in: it proves nobody's identity.
    pub fn is_anonymous(&self) -> bool {
        self.subject().is_anonymous()
    }

    /// Authentication assurance level.
    pub fn aal(&self) -> Aal {
        field!(self, |s| s.aal)
    }

    /// When the user last authenticated (login or step-up).
    pub fn authenticated_at(&self) -> OffsetDateTime {
        field!(self, |s| s.authenticated_at)
    }

    /// The application data stored with the session.
    pub fn data(&self) -> &SessionData {
        field!(self, |s| &s.data)
    }

    /// Whether this is a remember-me session (persistent cookie).
    pub fn remember_me(&self) -> bool {
        field!(self, |s| s.remember_me)
    }

    /// The earlier of the idle and absolute deadlines.
    pub fn expires_at(&self) -> OffsetDateTime {
        field!(self, |s| s.expires_at())
    }

    /// The hard end of the session, whatever its use.
    pub fn absolute_expires_at(&self) -> OffsetDateTime {
        field!(self, |s| s.absolute_expires_at)
    }

    /// Compare-and-set version of the record.
    pub fn version(&self) -> u64 {
        field!(self, |s| s.version)
    }

    /// Which entry point created the session. A session from a remote
    /// sessiond is always [`SessionOrigin::Api`]: the API does not say, and
    /// an unknown origin must never pass for a portal login.
    pub fn origin(&self) -> SessionOrigin {
        match &self.inner {
            Record::Local(s) => s.origin,
            #[cfg(feature = "remote")]
            Record::Remote(_) => SessionOrigin::Api,
        }
    }

    /// When the session was last used, as the backend recorded it. Right
    /// after create or rotate this is the backend's "now", which is what the
    /// cookie's `Max-Age` is measured from.
    pub(crate) fn last_seen_at(&self) -> OffsetDateTime {
        field!(self, |s| s.last_seen_at)
    }

    /// The manager's own record, when the session is in process.
    fn local(&self) -> Option<&Session> {
        match &self.inner {
            Record::Local(s) => Some(s),
            #[cfg(feature = "remote")]
            Record::Remote(_) => None,
        }
    }
}

impl fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionInfo")
            .field("id", self.id())
            .field("subject", self.subject())
            .field("aal", &self.aal())
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

/// Why a backend operation failed. "No such session" is not an error: the
/// operations that can meet it return `Option`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The store or the remote service cannot be reached: fail closed.
    #[error("session backend unavailable: {0}")]
    Unavailable(String),
    /// A compare-and-set update lost the race.
    #[error("version conflict")]
    VersionConflict,
    /// The subject is at its session limit (policy `deny`).
    #[error("session limit reached")]
    SessionLimit,
    /// The data object is larger than the policy allows.
    #[error("session data too large")]
    DataTooLarge,
    /// The client's address created too many anonymous sessions recently.
    #[error("too many anonymous sessions from this address; retry in {} s", retry_after.as_secs())]
    TooManySessions {
        /// How long until the address may create one again.
        retry_after: Duration,
    },
    /// A rotation asked for a level below the session's without asking
    /// for a downgrade.
    #[error("the assurance level would be lowered without a downgrade")]
    AalDowngrade,
    /// A rotation's level does not fit it (a downgrade that does not lower,
    /// a step-up that does not raise).
    #[error("the assurance level does not fit the rotation")]
    AalMismatch,
    /// The backend refused the request as malformed (a bug on our side).
    #[error("request refused by the backend: {0}")]
    Invalid(String),
    /// Any other failure.
    #[error("session backend failed: {0}")]
    Internal(String),
}

impl From<Error> for BackendError {
    fn from(value: Error) -> Self {
        match value {
            Error::VersionConflict { .. } => BackendError::VersionConflict,
            Error::SessionLimit => BackendError::SessionLimit,
            Error::DataTooLarge { .. } => BackendError::DataTooLarge,
            Error::AnonymousLimit { retry_after } => BackendError::TooManySessions { retry_after },
            Error::AalDowngrade { .. } => BackendError::AalDowngrade,
            Error::AalNotHigher { .. } | Error::AalNotLower { .. } => BackendError::AalMismatch,
            Error::InvalidName(_) | Error::InvalidAal(_) => BackendError::Invalid(value.to_string()),
            Error::Store(ref e) if e.is_unavailable() => BackendError::Unavailable(value.to_string()),
            other => BackendError::Internal(other.to_string()),
        }
    }
}

/// The session operations the layer needs, in-process or remote.
///
/// Implementations must map "unknown, expired, revoked, malformed" to
/// `Ok(None)` (never an error that reveals which), and an unreachable store
/// to [`BackendError::Unavailable`].
#[async_trait::async_trait]
pub trait SessionBackend: Send + Sync + fmt::Debug + 'static {
    /// Starts a new session (login) and returns its token.
    async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, SessionInfo), BackendError>;

    /// Starts an anonymous session (a visitor's, before sign-in) holding
    /// `options.data`, and returns its token. `Ok(None)` means this backend
    /// keeps no anonymous sessions: the layer then answers a write without
    /// a session with 401 `unauthenticated`, as before they existed (the
    /// default, so that backends written before them keep working).
    /// [`BackendError::TooManySessions`] when the client's address is over
    /// its limit.
    async fn create_anonymous(&self, options: AnonymousOptions) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        let _ = options;
        Ok(None)
    }

    /// Signs the visitor whose anonymous session `token` names in as
    /// `subject`: a new session (new id, new token) with the data
    /// `options.carry` takes from the anonymous one, which ends. `Ok(None)`
    /// when `token` names no live anonymous session (unknown, ended, or
    /// signed in): the layer then revokes it and creates a session as for
    /// any login (the default, for backends without anonymous sessions).
    async fn sign_in(
        &self,
        token: &Token,
        subject: &Subject,
        options: SignInOptions,
    ) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        let _ = (token, subject, options);
        Ok(None)
    }

    /// The valid session `token` names, if any.
    async fn verify(&self, token: &Token, client: &ClientInfo) -> Result<Option<SessionInfo>, BackendError>;

    /// Replaces the token, doing what `rotation` says to the level and the
    /// authentication time. `None` when the token is not the current token
    /// of a valid session.
    async fn rotate(&self, token: &Token, rotation: Rotation) -> Result<Option<(Token, SessionInfo)>, BackendError>;

    /// Ends the session `token` names; succeeds when it is already gone.
    async fn revoke(&self, token: &Token) -> Result<(), BackendError>;

    /// Replaces the data of session `id` if its version is still `expected_version`.
    async fn update_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: u64,
    ) -> Result<SessionInfo, BackendError>;

    /// A new access token for the session `token` names, which this backend
    /// returned as `session` (verified, created or rotated) in the same
    /// request; `Ok(None)` when the session is no longer valid. Used only by
    /// a layer with an [access-token cookie](crate::AccessTokenCookie).
    ///
    /// The default mints none: it fails with [`BackendError::Invalid`].
    async fn mint_access_token(
        &self,
        token: &Token,
        session: &SessionInfo,
    ) -> Result<Option<AccessToken>, BackendError> {
        let _ = (token, session);
        Err(BackendError::Invalid(
            "this session backend mints no access tokens".to_owned(),
        ))
    }
}

#[async_trait::async_trait]
impl SessionBackend for SessionManager {
    async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, SessionInfo), BackendError> {
        let (token, session) = SessionManager::create(self, subject, options).await?;
        Ok((token, SessionInfo::new(Arc::new(session))))
    }

    async fn create_anonymous(&self, options: AnonymousOptions) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        let (token, session) = SessionManager::create_anonymous(self, options).await?;
        Ok(Some((token, SessionInfo::new(Arc::new(session)))))
    }

    async fn sign_in(
        &self,
        token: &Token,
        subject: &Subject,
        options: SignInOptions,
    ) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        match SessionManager::sign_in(self, token.expose_secret(), subject, options).await {
            Ok((token, session)) => Ok(Some((token, SessionInfo::new(Arc::new(session))))),
            // Not a visitor to sign in: the layer logs in the usual way.
            Err(Error::Rejected(_) | Error::WrongKind) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    async fn verify(&self, token: &Token, client: &ClientInfo) -> Result<Option<SessionInfo>, BackendError> {
        let client = (!client.is_empty()).then_some(client);
        match SessionManager::verify(self, token.expose_secret(), client).await {
            Ok(session) => Ok(Some(SessionInfo::new(session))),
            Err(Error::Rejected(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    async fn rotate(&self, token: &Token, rotation: Rotation) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        match SessionManager::rotate(self, token.expose_secret(), rotation).await {
            Ok((token, session)) => Ok(Some((token, SessionInfo::new(Arc::new(session))))),
            Err(Error::Rejected(_)) => Ok(None),
            Err(other) => Err(other.into()),
        }
    }

    async fn revoke(&self, token: &Token) -> Result<(), BackendError> {
        SessionManager::revoke_token(self, token.expose_secret(), RevokeReason::Logout).await?;
        Ok(())
    }

    async fn update_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: u64,
    ) -> Result<SessionInfo, BackendError> {
        match SessionManager::update_data(self, id, data, Some(expected_version)).await {
            Ok(session) => Ok(SessionInfo::new(Arc::new(session))),
            // Gone between verify and write (revoked, expired): the update
            // did not happen, and the caller must not think it did.
            Err(Error::NotFound) => Err(BackendError::VersionConflict),
            Err(other) => Err(other.into()),
        }
    }
}

/// In-process mode with an access-token cookie: the manager, and the issuer
/// that signs for its sessions at the manager's time.
#[derive(Debug)]
pub(crate) struct Issuing {
    manager: SessionManager,
    issuer: AccessTokenIssuer,
}

impl Issuing {
    pub(crate) fn new(manager: SessionManager, issuer: AccessTokenIssuer) -> Self {
        Self { manager, issuer }
    }
}

#[async_trait::async_trait]
impl SessionBackend for Issuing {
    async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, SessionInfo), BackendError> {
        SessionBackend::create(&self.manager, subject, options).await
    }

    async fn create_anonymous(&self, options: AnonymousOptions) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        SessionBackend::create_anonymous(&self.manager, options).await
    }

    async fn sign_in(
        &self,
        token: &Token,
        subject: &Subject,
        options: SignInOptions,
    ) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        SessionBackend::sign_in(&self.manager, token, subject, options).await
    }

    async fn verify(&self, token: &Token, client: &ClientInfo) -> Result<Option<SessionInfo>, BackendError> {
        SessionBackend::verify(&self.manager, token, client).await
    }

    async fn rotate(&self, token: &Token, rotation: Rotation) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        SessionBackend::rotate(&self.manager, token, rotation).await
    }

    async fn revoke(&self, token: &Token) -> Result<(), BackendError> {
        SessionBackend::revoke(&self.manager, token).await
    }

    async fn update_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: u64,
    ) -> Result<SessionInfo, BackendError> {
        SessionBackend::update_data(&self.manager, id, data, expected_version).await
    }

    async fn mint_access_token(
        &self,
        _token: &Token,
        session: &SessionInfo,
    ) -> Result<Option<AccessToken>, BackendError> {
        // The record was just verified, created or rotated by this manager
        // in this request: no second lookup.
        let record = session
            .local()
            .ok_or_else(|| BackendError::Internal("not a session of this manager".to_owned()))?;
        match self.issuer.mint(record, self.manager.now()) {
            Ok(minted) => Ok(Some(minted)),
            Err(AccessTokenError::SessionExpired) => Ok(None),
            Err(error @ AccessTokenError::NoSigningKey) => Err(BackendError::Unavailable(error.to_string())),
            Err(error) => Err(BackendError::Internal(error.to_string())),
        }
    }
}

/// The manager's clock, for deciding on renewal at the time it mints at.
#[derive(Debug)]
pub(crate) struct ManagerClock(pub(crate) SessionManager);

impl Clock for ManagerClock {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}
