//! Errors of the HTTP layer and their one mapping to `application/problem+json`.
//!
//! Every failure a browser can see goes through [`HttpError::into_response`],
//! so status codes and the stable `code` strings live in one place.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

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
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::CrossSite | HttpError::CsrfFailed | HttpError::DevModeNotLocal => StatusCode::FORBIDDEN,
            HttpError::BadRequest => StatusCode::BAD_REQUEST,
            HttpError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::Unauthenticated => StatusCode::UNAUTHORIZED,
            HttpError::VersionConflict | HttpError::SessionLimit => StatusCode::CONFLICT,
            HttpError::DataTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::LayerMissing | HttpError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case code for the problem body.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::CrossSite => "cross_site_request",
            HttpError::CsrfFailed => "csrf_failed",
            HttpError::BadRequest => "invalid_request",
            HttpError::DevModeNotLocal => "dev_mode_not_local",
            HttpError::PayloadTooLarge | HttpError::DataTooLarge => "payload_too_large",
            HttpError::Unauthenticated => "unauthenticated",
            HttpError::VersionConflict => "version_conflict",
            HttpError::SessionLimit => "session_limit",
            HttpError::Unavailable => "store_unavailable",
            HttpError::LayerMissing => "session_layer_missing",
            HttpError::Internal => "internal",
        }
    }
}

impl From<BackendError> for HttpError {
    fn from(value: BackendError) -> Self {
        match value {
            BackendError::Unavailable(_) => HttpError::Unavailable,
            BackendError::VersionConflict => HttpError::VersionConflict,
            BackendError::SessionLimit => HttpError::SessionLimit,
            BackendError::DataTooLarge => HttpError::DataTooLarge,
            BackendError::Invalid(_) | BackendError::Internal(_) => HttpError::Internal,
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.to_string(),
            "status": status.as_u16(),
            "code": self.code(),
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // Errors about sessions are as private as the sessions themselves.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
