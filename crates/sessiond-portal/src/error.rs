//! How portal failures look to a person: an HTML page with the status, a
//! plain sentence and a stable code, never a stack of internals.

use askama::Template;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use sessiond_core::{CounterStoreError, Error, UserStoreError};
use sessiond_http::HttpError;
use sessiond_wire::ErrorCode;

use super::AccountError;
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
    /// The form is larger than any the portal's pages send.
    #[error("form too large")]
    TooLarge,
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
    /// The stable code; the page's status is the code's.
    pub fn code(&self) -> ErrorCode {
        match self {
            PortalError::Unavailable => ErrorCode::StoreUnavailable,
            PortalError::Busy => ErrorCode::Overloaded,
            PortalError::BadRequest => ErrorCode::InvalidRequest,
            PortalError::TooLarge => ErrorCode::PayloadTooLarge,
            PortalError::NotFound => ErrorCode::NotFound,
            PortalError::Internal => ErrorCode::Internal,
        }
    }

    /// The page's heading and sentence.
    fn words(&self) -> (&'static str, &'static str) {
        match self {
            PortalError::Unavailable => (
                "Unavailable",
                "Sign-in is unavailable right now. Please try again in a moment.",
            ),
            PortalError::Busy => (
                "Busy",
                "Too many sign-ins are in progress. Please try again in a moment.",
            ),
            PortalError::BadRequest => (
                "Bad request",
                "The form could not be read. Please go back and try again.",
            ),
            PortalError::TooLarge => (
                "Too large",
                "The form is too large to be a sign-in. Please go back and try again.",
            ),
            PortalError::NotFound => ("Not found", "That session does not exist or has already ended."),
            PortalError::Internal => (
                "Something went wrong",
                "Something went wrong on our side. Please try again.",
            ),
        }
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (title, message) = self.words();
        let code = self.code();
        let status = code.status();
        let page = ErrorPage {
            title,
            message,
            code: code.as_str(),
        };
        match page.render() {
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

/// The login throttle's store failed: the attempt is refused, never let
/// through uncounted (503 when the store is unreachable, as for sessions).
impl From<CounterStoreError> for PortalError {
    fn from(error: CounterStoreError) -> Self {
        if error.is_unavailable() {
            return PortalError::Unavailable;
        }
        tracing::error!(error = %error, "portal: login throttle failed");
        PortalError::Internal
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

impl From<AccountError> for PortalError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::NotFound => PortalError::NotFound,
            AccountError::Password(e) => e.into(),
            AccountError::Users(e) => e.into(),
            AccountError::Sessions(e) => e.into(),
            // The handlers refuse these on the page before they get here.
            other @ (AccountError::InvalidName(_) | AccountError::Exists | AccountError::Conflict) => {
                tracing::error!(error = %other, "portal: account operation failed");
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
            HttpError::PayloadTooLarge => PortalError::TooLarge,
            other => {
                tracing::error!(error = %other, "portal: session layer failed");
                PortalError::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throttle that cannot count fails closed: 503 `store_unavailable`
    /// when the store is unreachable, as for sessions; 500 for the rest.
    #[test]
    fn counter_store_failures_refuse_the_attempt() {
        let down = PortalError::from(CounterStoreError::Unavailable("down".into()));
        assert!(matches!(down, PortalError::Unavailable));
        assert_eq!(down.code(), ErrorCode::StoreUnavailable);
        assert_eq!(down.into_response().status(), 503);
        let broken = PortalError::from(CounterStoreError::Corrupt("bad".into()));
        assert!(matches!(broken, PortalError::Internal));
    }
}
