//! The portal's extractors: a signed-in session (or the way to sign in),
//! and a form whose rejection is the portal's HTML error page.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use sessiond_http::{Session, SessionInfo};

use super::{PortalError, State};

/// The request's session, if the portal vouches for it (a portal login of an
/// existing, enabled user; see `active_users.rs`). Without one the handler
/// does not run: the browser is sent to the login page, which returns to the
/// account page — the same answer for no session and for one the portal
/// does not accept.
#[derive(Debug)]
pub(super) struct SignedIn(pub SessionInfo);

impl FromRequestParts<State> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|e| PortalError::from(e).into_response())?;
        match state.signed_in(&session).await {
            Ok(Some(info)) => Ok(SignedIn(info)),
            Ok(None) => Err(Redirect::to("/login?rd=%2Faccount").into_response()),
            Err(error) => Err(error.into_response()),
        }
    }
}

/// An `application/x-www-form-urlencoded` body; anything else is a 400
/// page, and one over [`MAX_FORM_BYTES`](crate::MAX_FORM_BYTES) a 413 page.
#[derive(Debug)]
pub(super) struct PortalForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for PortalForm<T> {
    type Rejection = PortalError;

    async fn from_request(request: Request, state: &S) -> Result<Self, PortalError> {
        Form::<T>::from_request(request, state)
            .await
            .map(|Form(value)| PortalForm(value))
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    PortalError::TooLarge
                } else {
                    PortalError::BadRequest
                }
            })
    }
}
