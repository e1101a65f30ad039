//! Errors of the HTTP layer and their one mapping to `application/problem+json`.
//!
//! Every failure a browser can see goes through [`HttpError::into_response`],
//! so every code comes from the one vocabulary of [`sessiond_wire::ErrorCode`].

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use sessiond_wire::{ErrorCode, PROBLEM_CONTENT_TYPE, Problem};

use crate::backend::BackendError;

/// A request the layer or an extractor refused, or a session operation that
/// failed. Converts into a problem+json response with a stable `code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// An unsafe request came from another site (Fetch Metadata or `Origin`),
    /// or without any proof of where it came from.
    #[error("cross-site request refused")]
    CrossSite,
    /// An unsafe request with a session cookie lacked a valid CSRF token.
    #[error("missing or invalid CSRF token")]
    CsrfFailed,
    /// A form body too large to look for the CSRF token in.
    #[error("request body too large")]
    PayloadTooLarge,
    /// A request body that could not be read.
    #[error("malformed request")]
    BadRequest,
    /// Development mode serves only loopback hosts.
    #[error("development mode answers only on localhost")]
    DevModeNotLocal,
    /// The handler needs a signed-in user and there is none.
    #[error("no valid session")]
    Unauthenticated,
    /// The session changed concurrently; the update was not applied.
    #[error("the session was modified concurrently")]
    VersionConflict,
    /// The subject is at its session limit.
    #[error("the subject has reached its session limit")]
    SessionLimit,
    /// The session data exceeds the policy's limit.
    #[error("session data too large")]
    DataTooLarge,
    /// A write would start an anonymous session, and the client's address
    /// has started too many recently (429 `too_many_sessions`, with
    /// `Retry-After`).
    #[error("too many sessions from this address; retry in {retry_after_secs} s")]
    TooManySessions {
        /// Seconds until the address may start one again.
        retry_after_secs: u64,
    },
    /// A step-up named a level below the session's: lowering a session is
    /// not an authentication.
    #[error("the assurance level would be lowered without a downgrade")]
    AalDowngrade,
    /// A rotation's level does not fit it.
    #[error("the assurance level does not fit the rotation")]
    AalMismatch,
    /// The session store (or remote sessiond) is unreachable: fail closed.
    #[error("session service unavailable")]
    Unavailable,
    /// A handler used a session extractor on a route without the layer.
    #[error("the session layer is not installed on this route")]
    LayerMissing,
    /// Anything else; details go to the log, not to the client.
    #[error("internal error")]
    Internal,
}

impl HttpError {
    /// The stable code of the problem body.
    pub fn code(&self) -> ErrorCode {
        match self {
            HttpError::CrossSite => ErrorCode::CrossSiteRequest,
            HttpError::CsrfFailed => ErrorCode::CsrfFailed,
            HttpError::BadRequest => ErrorCode::InvalidRequest,
            HttpError::DevModeNotLocal => ErrorCode::DevModeNotLocal,
            HttpError::PayloadTooLarge | HttpError::DataTooLarge => ErrorCode::PayloadTooLarge,
            HttpError::Unauthenticated => ErrorCode::Unauthenticated,
            HttpError::VersionConflict => ErrorCode::VersionConflict,
            HttpError::SessionLimit => ErrorCode::SessionLimit,
            HttpError::TooManySessions { .. } => ErrorCode::TooManySessions,
            HttpError::AalDowngrade => ErrorCode::AalDowngrade,
            HttpError::AalMismatch => ErrorCode::AalMismatch,
            HttpError::Unavailable => ErrorCode::StoreUnavailable,
            HttpError::LayerMissing => ErrorCode::SessionLayerMissing,
            HttpError::Internal => ErrorCode::Internal,
        }
    }

    /// The HTTP status this error is answered with: its code's.
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }
}

impl From<BackendError> for HttpError {
    fn from(value: BackendError) -> Self {
        match value {
            BackendError::Unavailable(_) => HttpError::Unavailable,
            BackendError::VersionConflict => HttpError::VersionConflict,
            BackendError::SessionLimit => HttpError::SessionLimit,
            BackendError::DataTooLarge => HttpError::DataTooLarge,
            BackendError::TooManySessions { retry_after } => HttpError::TooManySessions {
                // Rounded up: retrying a fraction of a second early is refused again.
                retry_after_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
            },
            BackendError::AalDowngrade => HttpError::AalDowngrade,
            BackendError::AalMismatch => HttpError::AalMismatch,
            BackendError::Invalid(_) | BackendError::Internal(_) => HttpError::Internal,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = Problem::new(self.code(), self.to_string()).to_json();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        // Errors about sessions are as private as the sessions themselves.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let HttpError::TooManySessions { retry_after_secs } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}
