//! How portal failures look to a person: an HTML page with the status, a
//! plain sentence and a stable code, never a stack of internals.

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sessiond_core::{Error, UserStoreError};
use sessiond_http::HttpError;

use super::passwords::PasswordError;

/// A failed portal request.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The store cannot be reached: fail closed.
    #[error("the session store is unavailable")]
    Unavailable,
    /// Every password-hashing slot is busy.
    #[error("too many sign-ins in progress")]
    Busy,
    /// The form or path is malformed.
    #[error("malformed request")]
    BadRequest,
    /// No such session of this user.
    #[error("no such session")]
    NotFound,
    /// Anything else; details are logged, not shown.
    #[error("internal error")]
    Internal,
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage {
    title: &'static str,
    message: &'static str,
    code: &'static str,
}

impl PortalError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str, &'static str) {
        match self {
            PortalError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Sign-in is unavailable right now. Please try again in a moment.",
                "unavailable",
            ),
            PortalError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "Too many sign-ins are in progress. Please try again in a moment.",
                "overloaded",
            ),
            PortalError::BadRequest => (
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form could not be read. Please go back and try again.",
                "bad_request",
            ),
            PortalError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "That session does not exist or has already ended.",
                "not_found",
            ),
            PortalError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side. Please try again.",
                "internal",
            ),
        }
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, title, message, code) = self.parts();
        match (ErrorPage { title, message, code }).render() {
            Ok(page) => (status, Html(page)).into_response(),
            Err(_) => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response(),
        }
    }
}

impl From<Error> for PortalError {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound => PortalError::NotFound,
            Error::Store(ref e) if e.is_unavailable() => PortalError::Unavailable,
            other => {
                tracing::error!(error = %other, "portal: session operation failed");
                PortalError::Internal
            }
        }
    }
}

impl From<UserStoreError> for PortalError {
    fn from(error: UserStoreError) -> Self {
        if error.is_unavailable() {
            return PortalError::Unavailable;
        }
        tracing::error!(%error, "portal: user store operation failed");
        PortalError::Internal
    }
}

impl From<PasswordError> for PortalError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Busy => PortalError::Busy,
            // Callers check the length rules themselves and say so on the form.
            PasswordError::Unacceptable => PortalError::BadRequest,
            PasswordError::Internal(message) => {
                tracing::error!(%message, "portal: password hashing failed");
                PortalError::Internal
            }
        }
    }
}

impl From<HttpError> for PortalError {
    fn from(error: HttpError) -> Self {
        match error {
            HttpError::Unavailable => PortalError::Unavailable,
            HttpError::BadRequest => PortalError::BadRequest,
            other => {
                tracing::error!(error = %other, "portal: session layer failed");
                PortalError::Internal
            }
        }
    }
}
