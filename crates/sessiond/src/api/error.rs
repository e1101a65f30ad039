//! Every error the API can answer, mapped to `application/problem+json` in
//! one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessiond_core::Error as CoreError;

/// An API failure: a status, a stable code and a human title.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A core operation failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Missing or unknown API key.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// The body is not JSON, has a field of the wrong type, misses one, or
    /// has one we do not know.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The body is not `application/json`.
    #[error("request body must be application/json")]
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// Headers are larger than the configured limit.
    #[error("request headers are too large")]
    HeadersTooLarge,
    /// `If-Match` did not hold.
    #[error("the session has version {current}")]
    PreconditionFailed {
        /// The current version.
        current: u64,
    },
    /// No route has this path.
    #[error("no such endpoint")]
    NoSuchRoute,
    /// The path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Too many requests in flight.
    #[error("the server is overloaded; retry later")]
    Overloaded,
    /// The request took longer than the configured timeout.
    #[error("the request timed out")]
    Timeout,
    /// Something went wrong on our side.
    #[error("internal error")]
    Internal,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<u64>,
}

impl ApiError {
    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Core(e) => {
                let status = match e {
                    CoreError::Rejected(_) => StatusCode::UNAUTHORIZED,
                    CoreError::NotFound => StatusCode::NOT_FOUND,
                    CoreError::VersionConflict { .. } => StatusCode::PRECONDITION_FAILED,
                    CoreError::SessionLimit => StatusCode::CONFLICT,
                    CoreError::DataTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                    CoreError::InvalidName(_) | CoreError::InvalidAal(_) => StatusCode::BAD_REQUEST,
                    CoreError::Store(s) if s.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (status, e.code())
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::HeadersTooLarge => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
            ApiError::PreconditionFailed { .. } => (StatusCode::PRECONDITION_FAILED, "version_conflict"),
            ApiError::NoSuchRoute => (StatusCode::NOT_FOUND, "no_such_route"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn title(&self) -> String {
        match self {
            // One title for every rejection: no oracle.
            ApiError::Core(CoreError::Rejected(_)) => "invalid or expired session token".to_owned(),
            ApiError::Core(CoreError::Store(s)) if s.is_unavailable() => "session store unavailable".to_owned(),
            ApiError::Core(CoreError::Store(_) | CoreError::Randomness(_)) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match code {
            // An outage answers many requests; one warning each is enough,
            // and readiness and metrics carry the signal.
            "store_unavailable" | "overloaded" | "timeout" => tracing::warn!(error = %self, code, "request refused"),
            // Keep the cause in the log (never in the body).
            _ if status.is_server_error() => tracing::error!(error = ?self, code, "request failed"),
            _ => {}
        }
        let current_version = match &self {
            ApiError::PreconditionFailed { current } | ApiError::Core(CoreError::VersionConflict { current }) => {
                Some(*current)
            }
            _ => None,
        };
        let problem = Problem {
            kind: format!("urn:sessiond:problem:{code}"),
            title: self.title(),
            status: status.as_u16(),
            code,
            current_version,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED && code == "unauthorized" {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
