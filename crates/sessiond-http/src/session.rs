//! The per-request [`Session`] handle: lazy verification of the cookie, and
//! the changes a handler asks for, applied by the layer after the handler.
//!
//! Changes are recorded, not performed, so that a handler that fails (5xx)
//! changes nothing: no store write, no cookie.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sessiond_core::{Aal, CarryData, Rotation, SessionData, Subject, Token};
use tokio::sync::OnceCell;

use crate::backend::SessionInfo;
use crate::data::Patch;
use crate::error::HttpError;
use crate::layer::{RawClient, Shared};

/// The session of the current request, as an axum extractor or a request
/// extension. Clones share the request's state.
///
/// Reading verifies the cookie once, on first use (requests that never ask
/// cost no store access). [`login`](Session::login),
/// [`logout`](Session::logout), [`rotate`](Session::rotate),
/// [`reauthenticate`](Session::reauthenticate), [`elevate`](Session::elevate),
/// [`insert`](Session::insert), [`remove`](Session::remove)
/// and [`update_data`](Session::update_data)
/// take effect after the handler returns, and only if its response is not a
/// server error.
///
/// # Data, key by key
///
/// [`get`](Session::get), [`insert`](Session::insert) and
/// [`remove`](Session::remove) read and change one key of the session's
/// data (a JSON object) with serde, as in tower-sessions. Reads see the
/// request's own changes. The changes are written after the handler as one
/// compare-and-set update; if another request changed the data meanwhile,
/// this request's key-level changes are applied again to the data as it is
/// now (up to three attempts in all, then 412 `version_conflict`), so
/// requests that change different keys never undo each other's writes.
///
/// # Visitors: anonymous sessions
///
/// A data write ([`insert`](Session::insert), [`remove`](Session::remove),
/// [`update_data`](Session::update_data)) on a request without a valid
/// session starts an *anonymous* session holding it after the handler, and
/// sets the cookie: a cart before sign-in. Reads never start one, so a
/// crawler that only reads pages costs no store write. An anonymous session
/// proves nobody's identity: [`current`](Session::current),
/// [`require`](Session::require) and [`CurrentSession`](crate::CurrentSession)
/// see signed-in sessions only ([`current_or_anonymous`](Session::current_or_anonymous)
/// sees both), and it cannot rotate or step up. It is guarded like any
/// other: its unsafe requests need its CSRF token. [`login`](Session::login)
/// from it signs the visitor in with a new session (new id, new token) that
/// carries its data; [`login_carrying`](Session::login_carrying) chooses
/// what to carry. Turn this off with
/// [`anonymous_sessions(false)`](crate::SessionLayerBuilder::anonymous_sessions).
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The session cookie's token, if exactly one well-formed one was sent.
    token: Option<Token>,
    /// Whether a write without a session starts an anonymous one.
    lazy: bool,
    client: RawClient,
    verified: OnceCell<Result<Option<SessionInfo>, HttpError>>,
    /// Never held across an `.await`: a plain mutex is enough and cheaper.
    changes: Mutex<Changes>,
    /// Whether the response depends on the session (it was read or changed).
    touched: AtomicBool,
}

/// What the handler asked for, applied in [`crate::layer`] after it.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub(crate) login: Option<Login>,
    pub(crate) logout: bool,
    /// With `logout`: this request's writes start a fresh anonymous
    /// session ([`Session::logout_to_anonymous`]).
    pub(crate) fresh: bool,
    /// A rotation, and what it does to the level and authentication time.
    pub(crate) rotate: Option<Rotation>,
    /// A whole new data object ([`Session::update_data`]); key-level
    /// changes made after it are applied to it directly.
    pub(crate) data: Option<SessionData>,
    /// Key-level changes to the data the request read; empty whenever
    /// `data` is set.
    pub(crate) patch: Patch,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.login.is_none() && !self.logout && self.rotate.is_none() && self.data.is_none() && self.patch.is_empty()
    }

    /// The value of `key` as the request sees it, given the session it
    /// verified (`stored`): `Err` when there is no session to read and
    /// none may be started (`lazy` false).
    fn resolve(&self, stored: Option<&SessionInfo>, key: &str, lazy: bool) -> Result<Option<Value>, NoSession> {
        if self.logout && !self.fresh {
            return Err(NoSession);
        }
        if let Some(change) = self.patch.lookup(key) {
            return Ok(change.cloned());
        }
        if let Some(data) = &self.data {
            return Ok(data.get(key).cloned());
        }
        if self.login.is_some() || self.logout {
            // A login's new session gets the carried data after the
            // handler; a fresh visitor's session starts empty.
            return Ok(None);
        }
        match stored {
            Some(session) => Ok(session.data().get(key).cloned()),
            // A write starts an anonymous session, empty until then.
            None if lazy => Ok(None),
            None => Err(NoSession),
        }
    }

    /// Records `change` to `key` (`None` removes it).
    fn record(&mut self, key: &str, change: Option<Value>) {
        match (&mut self.data, change) {
            (Some(data), Some(value)) => {
                data.insert(key.to_owned(), value);
            }
            (Some(data), None) => {
                data.remove(key);
            }
            (None, Some(value)) => self.patch.insert(key, value),
            (None, None) => self.patch.remove(key),
        }
    }
}

/// The request has no session whose data could be read or changed.
struct NoSession;

/// A login the handler asked for.
#[derive(Debug)]
pub(crate) struct Login {
    pub(crate) subject: Subject,
    pub(crate) remember_me: bool,
    pub(crate) aal: Aal,
    /// From an anonymous session: which of its data the new one gets.
    pub(crate) carry: CarryData,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("has_cookie", &self.inner.token.is_some())
            .field("verified", &self.inner.verified.get())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, token: Option<Token>, client: RawClient, lazy: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                token,
                lazy,
                client,
                verified: OnceCell::new(),
                changes: Mutex::new(Changes::default()),
                touched: AtomicBool::new(false),
            }),
        }
    }

    fn changes(&self) -> MutexGuard<'_, Changes> {
        self.inner.touched.store(true, Ordering::Relaxed);
        // A panic elsewhere cannot leave `Changes` half-written in a way
        // that matters more than losing the request; keep going.
        self.inner.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The signed-in session the request's cookie names, verified on first
    /// call; `None` when there is no valid one or it is a visitor's
    /// anonymous session. Fails only when the backend is unavailable.
    pub async fn current(&self) -> Result<Option<SessionInfo>, HttpError> {
        Ok(self.current_or_anonymous().await?.filter(|s| !s.is_anonymous()))
    }

    /// The session the request's cookie names, signed in or
    /// [anonymous](SessionInfo::is_anonymous), verified on first call;
    /// `None` when there is no valid one. Fails only when the backend is
    /// unavailable.
    pub async fn current_or_anonymous(&self) -> Result<Option<SessionInfo>, HttpError> {
        self.inner.touched.store(true, Ordering::Relaxed);
        let inner = &self.inner;
        inner
            .verified
            .get_or_init(|| async {
                let Some(token) = &inner.token else {
                    return Ok(None);
                };
                inner
                    .shared
                    .backend
                    .verify(token, &inner.client.to_client_info())
                    .await
                    .map_err(|e| {
                        tracing::warn!(error = %e, "session verification failed");
                        HttpError::from(e)
                    })
            })
            .await
            .clone()
    }

    /// The current signed-in session, or [`HttpError::Unauthenticated`]
    /// (401), also for an anonymous one.
    pub async fn require(&self) -> Result<SessionInfo, HttpError> {
        self.current().await?.ok_or(HttpError::Unauthenticated)
    }

    /// The CSRF token to put in forms (`csrf_token` field) or send in the
    /// `X-CSRF-Token` header, for the current session, signed in or
    /// anonymous; `None` without one.
    /// It changes when the session rotates: render it after the redirect
    /// that follows a login or step-up.
    pub async fn csrf_token(&self) -> Result<Option<String>, HttpError> {
        Ok(match (self.current_or_anonymous().await?, &self.inner.token) {
            (Some(_), Some(token)) => Some(self.inner.shared.csrf.token_for(token)),
            _ => None,
        })
    }

    /// Signs `subject` in: after the handler, any session the request
    /// carried ends and a brand-new session and token are created
    /// (nothing the client brought is reused, so fixation is impossible).
    /// `remember_me` makes the cookie persistent.
    ///
    /// From a visitor's anonymous session, the new session (new id, new
    /// token) gets all its data, as [`login_carrying`](Session::login_carrying)
    /// with [`CarryData::All`]; a signed-in session's data is never carried.
    /// The carrying happens after the handler: in this request,
    /// [`get`](Session::get) after `login` sees only the request's own
    /// writes, which go on top of what is carried.
    pub fn login(&self, subject: Subject, remember_me: bool) {
        self.record_login(subject, remember_me, Aal::AAL1, CarryData::All);
    }

    /// [`login`](Session::login) at a given assurance level (e.g. after a
    /// second factor).
    pub fn login_with_aal(&self, subject: Subject, remember_me: bool, aal: Aal) {
        self.record_login(subject, remember_me, aal, CarryData::All);
    }

    /// [`login`](Session::login), choosing what the new session takes from
    /// a visitor's anonymous session: [`CarryData::All`], nothing
    /// ([`CarryData::Nothing`]), or what a function makes of its data
    /// ([`CarryData::With`], e.g. merge the visitor's cart into the one the
    /// user saved; with a remote backend it runs in this process, see
    /// `RemoteBackend`). Keys this request [`insert`](Session::insert)s or
    /// [`remove`](Session::remove)s after the login apply on top of what is
    /// carried; [`update_data`](Session::update_data) replaces it. Without
    /// an anonymous session `carry` does nothing.
    pub fn login_carrying(&self, subject: Subject, remember_me: bool, carry: CarryData) {
        self.record_login(subject, remember_me, Aal::AAL1, carry);
    }

    fn record_login(&self, subject: Subject, remember_me: bool, aal: Aal, carry: CarryData) {
        let mut changes = self.changes();
        *changes = Changes {
            login: Some(Login {
                subject,
                remember_me,
                aal,
                carry,
            }),
            ..Changes::default()
        };
    }

    /// Ends the session after the handler and deletes the cookie, with all
    /// its data (a visitor's cart too). Cancels any other change recorded in
    /// this request; later writes in it are 401. The browser's next write
    /// starts a new anonymous session.
    pub fn logout(&self) {
        *self.changes() = Changes {
            logout: true,
            ..Changes::default()
        };
    }

    /// [`logout`](Session::logout), and the writes this request makes
    /// after it go into a fresh anonymous session (nothing is carried from
    /// the one that ends), whose cookie replaces the old one; without
    /// writes, the cookie is deleted as by `logout`. With
    /// [`anonymous_sessions(false)`](crate::SessionLayerBuilder::anonymous_sessions)
    /// it is `logout`.
    pub fn logout_to_anonymous(&self) {
        *self.changes() = Changes {
            logout: true,
            fresh: self.inner.lazy,
            ..Changes::default()
        };
    }

    /// Gives the session a new token after the handler (same session, new
    /// cookie, new CSRF token). 401 without a signed-in session (an
    /// anonymous one gets its new token at [`login`](Session::login)).
    pub async fn rotate(&self) -> Result<(), HttpError> {
        self.require().await?;
        self.changes().rotate.get_or_insert(Rotation::Plain);
        Ok(())
    }

    /// Records that the user proved who they are again at the session's
    /// level (e.g. re-entered their password): the session gets a new token,
    /// `authenticated_at` becomes now and its absolute deadline restarts.
    /// 401 without a session.
    pub async fn reauthenticate(&self) -> Result<(), HttpError> {
        self.require().await?;
        let mut changes = self.changes();
        // An elevate recorded earlier is already a re-authentication.
        if matches!(changes.rotate, None | Some(Rotation::Plain)) {
            changes.rotate = Some(Rotation::Reauthenticate);
        }
        Ok(())
    }

    /// Records that the user just authenticated at `aal`: a step-up when it
    /// is above the session's level, a [re-authentication](Session::reauthenticate)
    /// at the same level; the session always gets a new token. A lower
    /// level is refused ([`HttpError::AalDowngrade`], 400): lowering a
    /// session is not an authentication. 401 without a session.
    pub async fn elevate(&self, aal: Aal) -> Result<(), HttpError> {
        let current = self.require().await?;
        // Checked here so the handler hears of it; the backend checks again
        // against the session it writes.
        if aal < current.aal() {
            return Err(HttpError::AalDowngrade);
        }
        self.changes().rotate = Some(Rotation::AtLevel {
            aal,
            reauthenticated: true,
        });
        Ok(())
    }

    /// Replaces the session's data after the handler. The write is a
    /// compare-and-set against the version this request read, so a
    /// concurrent update makes this request fail with 412
    /// `version_conflict` instead of being lost (a whole object cannot be
    /// merged; prefer [`insert`](Session::insert) and
    /// [`remove`](Session::remove), which are retried key by key). It
    /// replaces any key-level change made before it in the request; those
    /// made after it apply to it. After [`login`](Session::login) in the
    /// same request, it becomes the new session's initial data (replacing
    /// what a visitor's session would carry). Without a session it starts
    /// an anonymous one (see [`Session`]); 401 when that is turned off.
    pub async fn update_data(&self, data: SessionData) -> Result<(), HttpError> {
        let decided = {
            let changes = self.changes();
            if changes.logout && !changes.fresh {
                return Err(HttpError::Unauthenticated);
            }
            changes.login.is_some() || changes.logout
        };
        if !decided && self.current_or_anonymous().await?.is_none() && !self.inner.lazy {
            return Err(HttpError::Unauthenticated);
        }
        let mut changes = self.changes();
        if changes.logout && !changes.fresh {
            return Err(HttpError::Unauthenticated);
        }
        changes.data = Some(data);
        changes.patch = Patch::default();
        Ok(())
    }

    /// The session the data methods read: the verified one, unless a login
    /// or logout recorded in this request decides (no verification then).
    async fn stored(&self) -> Result<Option<SessionInfo>, HttpError> {
        let decided = {
            let changes = self.changes();
            changes.login.is_some() || changes.logout
        };
        if decided {
            Ok(None)
        } else {
            self.current_or_anonymous().await
        }
    }

    /// The value of `key` in the session's data, as JSON, including this
    /// request's own changes; `None` when the key is absent or there is no
    /// session. Fails only when the backend is unavailable.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, HttpError> {
        let stored = self.stored().await?;
        Ok(self
            .changes()
            .resolve(stored.as_ref(), key, self.inner.lazy)
            .unwrap_or(None))
    }

    /// The value of `key` in the session's data, deserialized; `None` when
    /// the key is absent or there is no session (no error, and no session
    /// is started: reading never writes). Reads this request's own
    /// [`insert`](Session::insert)s and [`remove`](Session::remove)s.
    ///
    /// # Errors
    ///
    /// [`HttpError::Unavailable`] (503) when the backend cannot be reached;
    /// [`HttpError::Internal`] (500) when the stored value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, HttpError> {
        self.get_value(key).await?.map(|v| from_value(key, v)).transpose()
    }

    /// Sets `key` to `value` (JSON) after the handler, and returns the
    /// value it had for this request. See [`insert`](Session::insert).
    pub async fn insert_value(&self, key: &str, value: Value) -> Result<Option<Value>, HttpError> {
        let stored = self.stored().await?;
        let mut changes = self.changes();
        let previous = changes
            .resolve(stored.as_ref(), key, self.inner.lazy)
            .map_err(|NoSession| HttpError::Unauthenticated)?;
        changes.record(key, Some(value));
        Ok(previous)
    }

    /// Sets `key` to `value`, serialized with serde, after the handler
    /// (with the session's other changes; nothing is written if the
    /// handler answers 5xx). [`get`](Session::get) sees it at once. After
    /// [`login`](Session::login) in the same request, it goes into the new
    /// session's initial data.
    ///
    /// # Errors
    ///
    /// [`HttpError::Unauthenticated`] (401 `unauthenticated`) when the
    /// request has no session and may not start an anonymous one (turned
    /// off, or after [`logout`](Session::logout)). [`HttpError::Unavailable`]
    /// (503) when the backend cannot be reached; [`HttpError::Internal`]
    /// (500) when `value` cannot be serialized. The write after the handler
    /// can still fail the request with 412 `version_conflict` (see
    /// [`Session`]), 413 `payload_too_large` (the policy's data limit) or,
    /// when it would start an anonymous session, 429 `too_many_sessions`.
    pub async fn insert(&self, key: &str, value: impl Serialize) -> Result<(), HttpError> {
        let value = serde_json::to_value(value).map_err(|error| {
            tracing::error!(key, %error, "session data: value cannot be serialized");
            HttpError::Internal
        })?;
        self.insert_value(key, value).await.map(drop)
    }

    /// Removes `key` after the handler and returns the value it had for
    /// this request, as JSON. See [`remove`](Session::remove).
    pub async fn remove_value(&self, key: &str) -> Result<Option<Value>, HttpError> {
        let stored = self.stored().await?;
        let mut changes = self.changes();
        let Ok(previous) = changes.resolve(stored.as_ref(), key, self.inner.lazy) else {
            return Ok(None);
        };
        // Removing what is not there changes nothing and writes nothing.
        if previous.is_some() {
            changes.record(key, None);
        }
        Ok(previous)
    }

    /// Removes `key` after the handler and returns the value it had,
    /// deserialized; `None` when it was absent or there is no session.
    ///
    /// # Errors
    ///
    /// [`HttpError::Unavailable`] (503) when the backend cannot be reached;
    /// [`HttpError::Internal`] (500) when the removed value is not a `T`
    /// (the key is removed all the same).
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, HttpError> {
        self.remove_value(key).await?.map(|v| from_value(key, v)).transpose()
    }

    pub(crate) fn take_changes(&self) -> Changes {
        std::mem::take(&mut *self.inner.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether a write without a session may start an anonymous one.
    pub(crate) fn lazy(&self) -> bool {
        self.inner.lazy
    }

    pub(crate) fn touched(&self) -> bool {
        self.inner.touched.load(Ordering::Relaxed)
    }

    pub(crate) fn token(&self) -> Option<&Token> {
        self.inner.token.as_ref()
    }

    pub(crate) fn client(&self) -> &RawClient {
        &self.inner.client
    }

    /// The verified session, if verification already ran.
    pub(crate) fn verified(&self) -> Option<SessionInfo> {
        self.inner.verified.get().and_then(|r| r.clone().ok().flatten())
    }

    /// What verification found, if it ran and the backend answered:
    /// `Some(None)` means the cookie names no session (or there was none).
    pub(crate) fn verification(&self) -> Option<Option<SessionInfo>> {
        self.inner.verified.get().and_then(|r| r.as_ref().ok().cloned())
    }
}

/// A data value as `T`; a mismatch is the application's bug (the log says
/// which key), not the client's.
fn from_value<T: DeserializeOwned>(key: &str, value: Value) -> Result<T, HttpError> {
    serde_json::from_value(value).map_err(|error| {
        tracing::error!(key, %error, "session data: stored value has another type");
        HttpError::Internal
    })
}
