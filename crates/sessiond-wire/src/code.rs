//! [`ErrorCode`]: every stable error code any part of sessiond answers with,
//! and the one status each code has.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use sessiond_core::Error as CoreError;

/// A stable, machine-readable error code: the `code` of every problem body.
///
/// One code per meaning, wherever it is answered (the JSON API, the portal's
/// pages, the cookie layer): a client branches on the code, never on the
/// title or the status alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorCode {
    /// The token names no valid session: unknown, malformed, expired and
    /// revoked alike (no oracle).
    InvalidToken,
    /// A missing or unknown API key.
    Unauthorized,
    /// A `/v1` request over a connection without a verified client
    /// certificate, where `server.tls.client_ca_file` requires one.
    ClientCertificateRequired,
    /// A route that needs a signed-in user was called without one.
    Unauthenticated,
    /// A valid API key whose role may not call this route (an `app` key on
    /// an admin route).
    Forbidden,
    /// No such session (in the caller's tenant).
    NotFound,
    /// A compare-and-set update lost: the record changed since it was read,
    /// or `If-Match` names another version.
    VersionConflict,
    /// The subject is at its session limit and the policy is `deny`.
    SessionLimit,
    /// One client address created too many anonymous sessions recently
    /// (`Retry-After` says when it may again).
    TooManySessions,
    /// A user with this name exists already.
    UserExists,
    /// A new password breaks the length rules.
    WeakPassword,
    /// The request body, or the session data, is larger than allowed.
    PayloadTooLarge,
    /// Malformed JSON, a field of the wrong type or value, a missing or an
    /// unknown field, a malformed form or header.
    InvalidRequest,
    /// A rotation asked for an assurance level below the session's without
    /// asking for a downgrade (`"downgrade": true`).
    AalDowngrade,
    /// A rotation's level does not fit the operation asked for: a downgrade
    /// to a level not below the session's, or a step-up to one not above it.
    AalMismatch,
    /// A request body that is not `application/json`.
    UnsupportedMediaType,
    /// The request headers are larger than allowed.
    HeadersTooLarge,
    /// No route has this path.
    NoSuchRoute,
    /// The path exists, the method does not.
    MethodNotAllowed,
    /// An unsafe request came from another site, or without proof of where
    /// it came from.
    CrossSiteRequest,
    /// An unsafe request with a session lacked a valid CSRF token.
    CsrfFailed,
    /// Development mode answers only on loopback hosts.
    DevModeNotLocal,
    /// A portal page asked over plain HTTP with no TLS anywhere in front:
    /// neither `[server.tls]`, nor `--dev`, nor `server.behind_proxy`.
    HttpsRequired,
    /// Too many requests in flight, or every password-hashing slot is busy.
    Overloaded,
    /// The request took longer than the configured timeout.
    Timeout,
    /// The request body did not arrive within `server.body_read_timeout`.
    BodyTimeout,
    /// Too many requests in flight from one client address on the public
    /// (portal) routes.
    TooManyRequests,
    /// The store cannot be reached: nothing happened (fail closed).
    StoreUnavailable,
    /// A handler used a session extractor on a route without the layer.
    SessionLayerMissing,
    /// Anything else; the details are in the server's log, never in the body.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 30] = [
        ErrorCode::InvalidToken,
        ErrorCode::Unauthorized,
        ErrorCode::ClientCertificateRequired,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::VersionConflict,
        ErrorCode::SessionLimit,
        ErrorCode::TooManySessions,
        ErrorCode::UserExists,
        ErrorCode::WeakPassword,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidRequest,
        ErrorCode::AalDowngrade,
        ErrorCode::AalMismatch,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::HeadersTooLarge,
        ErrorCode::NoSuchRoute,
        ErrorCode::MethodNotAllowed,
        ErrorCode::CrossSiteRequest,
        ErrorCode::CsrfFailed,
        ErrorCode::DevModeNotLocal,
        ErrorCode::HttpsRequired,
        ErrorCode::Overloaded,
        ErrorCode::Timeout,
        ErrorCode::BodyTimeout,
        ErrorCode::TooManyRequests,
        ErrorCode::StoreUnavailable,
        ErrorCode::SessionLayerMissing,
        ErrorCode::Internal,
    ];

    /// The snake_case code, as it appears in problem bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::ClientCertificateRequired => "client_certificate_required",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::SessionLimit => "session_limit",
            ErrorCode::TooManySessions => "too_many_sessions",
            ErrorCode::UserExists => "user_exists",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::AalDowngrade => "aal_downgrade",
            ErrorCode::AalMismatch => "aal_mismatch",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::NoSuchRoute => "no_such_route",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::CrossSiteRequest => "cross_site_request",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::DevModeNotLocal => "dev_mode_not_local",
            ErrorCode::HttpsRequired => "https_required",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Timeout => "timeout",
            ErrorCode::BodyTimeout => "body_timeout",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::SessionLayerMissing => "session_layer_missing",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status this code is always answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest | ErrorCode::AalDowngrade | ErrorCode::AalMismatch | ErrorCode::WeakPassword => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::InvalidToken
            | ErrorCode::Unauthorized
            | ErrorCode::ClientCertificateRequired
            | ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden
            | ErrorCode::CrossSiteRequest
            | ErrorCode::CsrfFailed
            | ErrorCode::DevModeNotLocal
            | ErrorCode::HttpsRequired => StatusCode::FORBIDDEN,
            ErrorCode::NotFound | ErrorCode::NoSuchRoute => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::SessionLimit | ErrorCode::UserExists => StatusCode::CONFLICT,
            ErrorCode::VersionConflict => StatusCode::PRECONDITION_FAILED,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::TooManyRequests | ErrorCode::TooManySessions => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Overloaded | ErrorCode::Timeout | ErrorCode::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::SessionLayerMissing | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem `type`: `urn:sessiond:problem:<code>`.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.as_str())
    }

    /// The code of a core error. Every rejection shares `invalid_token`,
    /// whatever the reason: callers must not learn whether a token was
    /// unknown, expired or revoked.
    pub fn of(error: &CoreError) -> Self {
        match error {
            // A session of the wrong kind is "not a token for this", like
            // any other invalid one.
            CoreError::Rejected(_) | CoreError::WrongKind => ErrorCode::InvalidToken,
            CoreError::AnonymousLimit { .. } => ErrorCode::TooManySessions,
            CoreError::Counters(e) if e.is_unavailable() => ErrorCode::StoreUnavailable,
            CoreError::NotFound => ErrorCode::NotFound,
            CoreError::VersionConflict { .. } => ErrorCode::VersionConflict,
            CoreError::SessionLimit => ErrorCode::SessionLimit,
            CoreError::DataTooLarge { .. } => ErrorCode::PayloadTooLarge,
            CoreError::InvalidName(_) | CoreError::InvalidAal(_) => ErrorCode::InvalidRequest,
            CoreError::AalDowngrade { .. } => ErrorCode::AalDowngrade,
            CoreError::AalNotHigher { .. } | CoreError::AalNotLower { .. } => ErrorCode::AalMismatch,
            CoreError::Store(e) if e.is_unavailable() => ErrorCode::StoreUnavailable,
            // An invalid policy is refused when the manager is built, so a
            // request never meets it; the rest are failures on our side.
            CoreError::InvalidPolicy(_) | CoreError::Store(_) | CoreError::Counters(_) | CoreError::Randomness(_) => {
                ErrorCode::Internal
            }
        }
    }
}

/// What every problem `type` starts with.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:sessiond:problem:";

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&CoreError> for ErrorCode {
    fn from(error: &CoreError) -> Self {
        ErrorCode::of(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_writes_the_same_code_as_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: Option<ErrorCode> = serde_json::from_str(&json).ok();
            assert_eq!(back, Some(code));
        }
    }

    #[test]
    fn codes_are_distinct_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert!(code.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn level_changes_the_caller_did_not_ask_for_are_400() {
        let (current, requested) = (sessiond_core::Aal::AAL3, sessiond_core::Aal::AAL1);
        let downgrade = CoreError::AalDowngrade { current, requested };
        assert_eq!(ErrorCode::of(&downgrade), ErrorCode::AalDowngrade);
        assert_eq!(ErrorCode::AalDowngrade.as_str(), "aal_downgrade");
        assert_eq!(ErrorCode::AalDowngrade.status(), StatusCode::BAD_REQUEST);
        let not_lower = CoreError::AalNotLower {
            current: requested,
            requested: current,
        };
        assert_eq!(ErrorCode::of(&not_lower), ErrorCode::AalMismatch);
        assert_eq!(ErrorCode::AalMismatch.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_version_conflict_is_412_everywhere() {
        assert_eq!(ErrorCode::VersionConflict.status(), StatusCode::PRECONDITION_FAILED);
        let core = CoreError::VersionConflict { current: 3 };
        assert_eq!(ErrorCode::of(&core), ErrorCode::VersionConflict);
    }
}
