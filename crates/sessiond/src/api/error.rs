//! Every error the API can answer, mapped to `application/problem+json` in
//! one place.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::Error as CoreError;
use sessiond_wire::{ErrorCode, InvalidField, PROBLEM_CONTENT_TYPE, Problem};

/// An API failure: a status, a stable code and a human title.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A core operation failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Missing or unknown API key.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// `server.tls.client_ca_file` is set and the connection presented no
    /// certificate from that CA.
    #[error("the API needs a client certificate issued by the CA of server.tls.client_ca_file")]
    ClientCertificateRequired,
    /// A valid key whose role may not call the route.
    #[error("this API key's role may not call this route (an admin key can)")]
    Forbidden,
    /// No such key or user in the caller's tenant.
    #[error("{0}")]
    NotFound(&'static str),
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
    /// The body did not arrive within the body-read timeout.
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    /// The client's address has too many requests in flight on the public
    /// routes.
    #[error("too many requests in flight from your address; retry later")]
    TooManyRequests,
    /// A user with this name exists already.
    #[error("a user with this name already exists")]
    UserExists,
    /// A new password breaks the length rules.
    #[error("a password must be 8 characters to 1024 bytes long")]
    WeakPassword,
    /// The store cannot be reached (for the stores beside the sessions').
    #[error("store unavailable")]
    StoreUnavailable,
    /// Something went wrong on our side.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The stable code; its status is [`ErrorCode::status`].
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Core(e) => ErrorCode::of(e),
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::ClientCertificateRequired => ErrorCode::ClientCertificateRequired,
            ApiError::Forbidden => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ApiError::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            ApiError::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            ApiError::HeadersTooLarge => ErrorCode::HeadersTooLarge,
            ApiError::PreconditionFailed { .. } => ErrorCode::VersionConflict,
            ApiError::NoSuchRoute => ErrorCode::NoSuchRoute,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::Overloaded => ErrorCode::Overloaded,
            ApiError::Timeout => ErrorCode::Timeout,
            ApiError::BodyTimeout => ErrorCode::BodyTimeout,
            ApiError::TooManyRequests => ErrorCode::TooManyRequests,
            ApiError::StoreUnavailable => ErrorCode::StoreUnavailable,
            ApiError::UserExists => ErrorCode::UserExists,
            ApiError::WeakPassword => ErrorCode::WeakPassword,
            ApiError::Internal => ErrorCode::Internal,
        }
    }

    fn title(&self) -> String {
        match self {
            // One title for every rejection: no oracle.
            // A session of the wrong kind (an anonymous one for a step-up, a
            // signed-in one for a sign-in) reads like any invalid token.
            ApiError::Core(CoreError::Rejected(_) | CoreError::WrongKind) => {
                "invalid or expired session token".to_owned()
            }
            ApiError::Core(CoreError::Counters(c)) if c.is_unavailable() => "session store unavailable".to_owned(),
            ApiError::Core(CoreError::Store(s)) if s.is_unavailable() => "session store unavailable".to_owned(),
            ApiError::Core(
                CoreError::Store(_) | CoreError::Counters(_) | CoreError::Randomness(_) | CoreError::InvalidPolicy(_),
            ) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<InvalidField> for ApiError {
    fn from(value: InvalidField) -> Self {
        ApiError::InvalidRequest(value.0)
    }
}

/// An audit-log read that failed: 503 when the store is down, else 500
/// with the cause logged here.
impl From<sessiond_core::EventStoreError> for ApiError {
    fn from(error: sessiond_core::EventStoreError) -> Self {
        if error.is_unavailable() {
            ApiError::StoreUnavailable
        } else {
            tracing::error!(%error, source = ?std::error::Error::source(&error), "reading audit events failed");
            ApiError::Internal
        }
    }
}

/// A token that could not be minted for a session found live a moment
/// before: one that expired in between is an invalid token like any other;
/// the rest are the server's failures, logged here.
impl From<sessiond_core::AccessTokenError> for ApiError {
    fn from(error: sessiond_core::AccessTokenError) -> Self {
        match error {
            sessiond_core::AccessTokenError::SessionExpired => {
                ApiError::Core(CoreError::Rejected(sessiond_core::Rejection::ExpiredIdle))
            }
            sessiond_core::AccessTokenError::Anonymous => ApiError::Core(CoreError::WrongKind),
            other => {
                tracing::error!(error = %other, source = ?std::error::Error::source(&other), "minting an access token failed");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = code.status();
        match code {
            // An outage answers many requests; one warning each is enough,
            // and readiness and metrics carry the signal.
            ErrorCode::StoreUnavailable | ErrorCode::Overloaded | ErrorCode::Timeout => {
                tracing::warn!(error = %self, code = code.as_str(), "request refused");
            }
            // Keep the cause in the log (never in the body).
            _ if status.is_server_error() => tracing::error!(error = ?self, code = code.as_str(), "request failed"),
            _ => {}
        }
        let current_version = match &self {
            ApiError::PreconditionFailed { current } | ApiError::Core(CoreError::VersionConflict { current }) => {
                Some(*current)
            }
            _ => None,
        };
        let body = Problem::new(code, self.title())
            .with_current_version(current_version)
            .to_json();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if code == ErrorCode::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Core(CoreError::AnonymousLimit { retry_after }) = &self {
            // Whole seconds, rounded up: never invite a retry that is refused.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}
