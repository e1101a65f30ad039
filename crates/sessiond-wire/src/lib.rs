//! The wire model of the sessiond HTTP API: one vocabulary for the server,
//! the portal, the cookie layer's remote backend and other clients.
//!
//! - request and response bodies ([`CreateRequest`], [`TokenResponse`], …)
//!   and the session object ([`SessionView`]);
//! - [`ErrorCode`], every stable error code with the one status it has, and
//!   [`Problem`], the `application/problem+json` body that carries it;
//! - [`session_json`] and [`sessions_json`], the serialiser of session responses.
//!
//! ```
//! use sessiond_wire::{ErrorCode, Problem, VerifyRequest};
//!
//! // What a client sends to `POST /v1/sessions/verify`…
//! let body = serde_json::to_string(&VerifyRequest { token: "sd_…".into(), client: None })?;
//! assert_eq!(body, r#"{"token":"sd_…"}"#);
//!
//! // …and how it reads a refusal.
//! let refused: Problem = serde_json::from_str(
//!     r#"{"type":"urn:sessiond:problem:invalid_token","title":"invalid or expired session token","status":401,"code":"invalid_token"}"#,
//! )?;
//! assert_eq!(refused.code, ErrorCode::InvalidToken);
//! assert_eq!(refused.code.status(), 401);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! With the `openapi` feature every type also derives `utoipa::ToSchema`,
//! with the same bounds the server enforces.

mod access_tokens;
mod admin;
mod code;
mod json;
#[cfg(feature = "openapi")]
pub mod openapi;
mod problem;
mod requests;
mod responses;
mod rfc3339;
mod rotation;
mod session;
mod strict;

pub use access_tokens::{
    AccessTokenRequest, AccessTokenResponse, JwkView, JwksView, RefreshRequest, RefreshResponse, RevocationView,
    RevocationsParams, RevocationsResponse,
};
pub use admin::{
    CreateKeyRequest, CreateUserRequest, CreatedKeyResponse, KeyView, KeysResponse, SetPasswordRequest, UserResponse,
    UserView, UsersResponse,
};
pub use code::{ErrorCode, PROBLEM_TYPE_PREFIX};
pub use json::{decimal, session_json, sessions_json, write_session};
pub use problem::{PROBLEM_CONTENT_TYPE, Problem};
#[cfg(feature = "openapi")]
pub use requests::CreateBody;
pub use requests::{
    CreateRequest, EventsParams, LoginRequest, MAX_EVENTS_PER_QUERY, PatchRequest, RevokeRequest, RevokeSubjectParams,
    RotateRequest, VerifyRequest,
};
pub use responses::{EventView, EventsResponse, RevokedResponse, SessionResponse, SessionsResponse, TokenResponse};
pub use session::{ClientView, InvalidField, SESSION_ID_PATTERN, SUBJECT_DESCRIPTION, SUBJECT_PATTERN, SessionView};
