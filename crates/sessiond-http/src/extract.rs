//! axum extractors over the [`Session`] handle the layer puts in the
//! request's extensions.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::backend::SessionInfo;
use crate::error::HttpError;
use crate::session::Session;

fn handle(parts: &Parts) -> Result<Session, HttpError> {
    parts.extensions.get::<Session>().cloned().ok_or_else(|| {
        tracing::error!("a session extractor was used on a route without SessionLayer");
        HttpError::LayerMissing
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        handle(parts)
    }
}

/// A verified, signed-in session, required: extracting it answers 401
/// `unauthenticated` when the request has none, and for a visitor's
/// anonymous session, which proves nobody's identity (read a visitor's
/// data with [`Session::get`], or see their session with
/// [`Session::current_or_anonymous`]).
///
/// `Option<CurrentSession>` extracts `None` instead.
#[derive(Debug, Clone)]
pub struct CurrentSession(pub SessionInfo);

impl std::ops::Deref for CurrentSession {
    type Target = SessionInfo;
    fn deref(&self) -> &SessionInfo {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentSession {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        handle(parts)?.require().await.map(CurrentSession)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentSession {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(handle(parts)?.current().await?.map(CurrentSession))
    }
}

/// The CSRF token of the current session (signed in or anonymous), to
/// render into forms; 401 without a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        handle(parts)?
            .csrf_token()
            .await?
            .map(CsrfToken)
            .ok_or(HttpError::Unauthenticated)
    }
}
