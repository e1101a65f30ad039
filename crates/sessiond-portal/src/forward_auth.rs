//! `GET /auth/verify` for nginx `auth_request`, Traefik `forwardAuth` and
//! Caddy `forward_auth`: 200 with the subject and session id in headers when
//! the cookie names a valid session, 401 otherwise. The proxy copies the
//! headers to the upstream (and must strip any the client sent itself; see
//! docs/forward-auth.md).

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sessiond_http::Session;

use super::{PortalError, State as Portal};

const SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const SESSION: HeaderName = HeaderName::from_static("x-auth-session");

/// Forward auth.
#[utoipa::path(get, path = "/auth/verify", operation_id = "forward_auth", tag = "portal", security(),
    responses(
        (status = 200, description = "Valid session (empty body)", headers(
            ("X-Auth-Subject" = String, description = "The session's subject"),
            ("X-Auth-Session" = String, description = "The session's id"))),
        (status = 401, description = "No valid session (empty body)"),
    ))]
pub(super) async fn verify(State(_state): State<Portal>, session: Session) -> Result<Response, PortalError> {
    let Some(info) = session.current().await? else {
        return Ok(StatusCode::UNAUTHORIZED.into_response());
    };
    // Subjects and ids are printable by construction; if one ever were not
    // a valid header value, refusing is the safe answer.
    let (Ok(subject), Ok(id)) = (
        HeaderValue::from_str(info.subject().as_str()),
        HeaderValue::from_str(info.id().as_str()),
    ) else {
        return Ok(StatusCode::UNAUTHORIZED.into_response());
    };
    Ok(([(SUBJECT, subject), (SESSION, id)], StatusCode::OK).into_response())
}
