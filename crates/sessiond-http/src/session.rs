//! The per-request [`Session`] handle: lazy verification of the cookie, and
//! the changes a handler asks for, applied by the layer after the handler.
//!
//! Changes are recorded, not performed, so that a handler that fails (5xx)
//! changes nothing: no store write, no cookie.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sessiond_core::{Aal, Rotation, SessionData, Subject, Token};
use tokio::sync::OnceCell;

use crate::backend::SessionInfo;
use crate::error::HttpError;
use crate::layer::{RawClient, Shared};

/// The session of the current request, as an axum extractor or a request
/// extension. Clones share the request's state.
///
/// Reading verifies the cookie once, on first use (requests that never ask
/// cost no store access). [`login`](Session::login),
/// [`logout`](Session::logout), [`rotate`](Session::rotate),
/// [`reauthenticate`](Session::reauthenticate), [`elevate`](Session::elevate)
/// and [`update_data`](Session::update_data)
/// take effect after the handler returns, and only if its response is not a
/// server error.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// The session cookie's token, if exactly one well-formed one was sent.
    token: Option<Token>,
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
    /// A rotation, and what it does to the level and authentication time.
    pub(crate) rotate: Option<Rotation>,
    pub(crate) data: Option<SessionData>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.login.is_none() && !self.logout && self.rotate.is_none() && self.data.is_none()
    }
}

/// A login the handler asked for.
#[derive(Debug)]
pub(crate) struct Login {
    pub(crate) subject: Subject,
    pub(crate) remember_me: bool,
    pub(crate) aal: Aal,
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
    pub(crate) fn new(shared: Arc<Shared>, token: Option<Token>, client: RawClient) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                token,
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

    /// The session the request's cookie names, verified on first call;
    /// `None` when there is no valid one. Fails only when the backend is
    /// unavailable.
    pub async fn current(&self) -> Result<Option<SessionInfo>, HttpError> {
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

    /// The current session, or [`HttpError::Unauthenticated`] (401).
    pub async fn require(&self) -> Result<SessionInfo, HttpError> {
        self.current().await?.ok_or(HttpError::Unauthenticated)
    }

    /// The CSRF token to put in forms (`csrf_token` field) or send in the
    /// `X-CSRF-Token` header, for the current session; `None` without one.
    /// It changes when the session rotates: render it after the redirect
    /// that follows a login or step-up.
    pub async fn csrf_token(&self) -> Result<Option<String>, HttpError> {
        Ok(match (self.current().await?, &self.inner.token) {
            (Some(_), Some(token)) => Some(self.inner.shared.csrf.token_for(token)),
            _ => None,
        })
    }

    /// Signs `subject` in: after the handler, any session the request
    /// carried is revoked and a brand-new session and token are created
    /// (nothing the client brought is reused, so fixation is impossible).
    /// `remember_me` makes the cookie persistent.
    pub fn login(&self, subject: Subject, remember_me: bool) {
        self.login_with_aal(subject, remember_me, Aal::AAL1);
    }

    /// [`login`](Session::login) at a given assurance level (e.g. after a
    /// second factor).
    pub fn login_with_aal(&self, subject: Subject, remember_me: bool, aal: Aal) {
        let mut changes = self.changes();
        *changes = Changes {
            login: Some(Login {
                subject,
                remember_me,
                aal,
            }),
            ..Changes::default()
        };
    }

    /// Ends the session after the handler and deletes the cookie. Cancels
    /// any other change recorded in this request.
    pub fn logout(&self) {
        *self.changes() = Changes {
            logout: true,
            ..Changes::default()
        };
    }

    /// Gives the session a new token after the handler (same session, new
    /// cookie, new CSRF token). 401 without a session.
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
    /// `version_conflict` instead of being lost. After
    /// [`login`](Session::login) in the same request, it becomes the new
    /// session's initial data. 401 without either.
    pub async fn update_data(&self, data: SessionData) -> Result<(), HttpError> {
        if self.changes().login.is_none() {
            self.require().await?;
        }
        let mut changes = self.changes();
        if changes.logout {
            return Err(HttpError::Unauthenticated);
        }
        changes.data = Some(data);
        Ok(())
    }

    pub(crate) fn take_changes(&self) -> Changes {
        std::mem::take(&mut *self.inner.changes.lock().unwrap_or_else(|p| p.into_inner()))
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
