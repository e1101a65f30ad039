//! `GET /auth/verify` for nginx `auth_request`, Traefik `forwardAuth` and
//! Caddy `forward_auth`: 200 with the subject and session id in headers when
//! the cookie names a session the portal vouches for — a portal login of an
//! existing, enabled user (see `active_users.rs`) — and 401 otherwise, the
//! same 401 whichever check failed. The proxy copies the headers to the
//! upstream (and must strip any the client sent itself; see
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
        (status = 200, description = "A portal login of an existing, enabled user (empty body)", headers(
            ("X-Auth-Subject" = String, description = "The session's subject: the portal user's name"),
            ("X-Auth-Session" = String, description = "The session's id"))),
        (status = 401, description = "No such session, or one the portal does not vouch for (empty body)"),
    ))]
pub(super) async fn verify(State(state): State<Portal>, session: Session) -> Result<Response, PortalError> {
    let Some(info) = state.signed_in(&session).await? else {
        return Ok(StatusCode::UNAUTHORIZED.into_response());
    };
    let (Some(subject), Some(id)) = (header_value(info.subject().as_str()), header_value(info.id().as_str())) else {
        return Ok(StatusCode::UNAUTHORIZED.into_response());
    };
    Ok(([(SUBJECT, subject), (SESSION, id)], StatusCode::OK).into_response())
}

/// A header value that says exactly `text`, or `None`.
///
/// Session ids are base64url and new subjects have no control, separator,
/// quoting or list characters, but forward auth must not rely on every
/// record meeting today's rule: a value is emitted only if it is non-empty
/// visible ASCII or non-ASCII text with no control, space, separator,
/// bidi, `,`, `;`, quote or backslash character (so a proxy can neither
/// split it into two values nor fold, trim or re-quote it). Non-ASCII is
/// sent as its UTF-8 bytes, which HTTP carries as opaque `obs-text`.
/// Anything else — which no session created today can hold — is refused,
/// never altered: an altered subject would name someone else.
fn header_value(text: &str) -> Option<HeaderValue> {
    if text.is_empty() || text.chars().any(sessiond_core::is_refused_in_subject) {
        return None;
    }
    HeaderValue::from_bytes(text.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::header_value;

    #[test]
    fn header_values_say_exactly_the_text_or_nothing() {
        for ok in ["alice", "a.b+c@example.com", "user:123", "tenant/alice", "zoë"] {
            let value = header_value(ok).unwrap_or_else(|| panic!("{ok:?} refused"));
            assert_eq!(value.as_bytes(), ok.as_bytes());
        }
        for bad in [
            "",
            " ",
            "alice, admin",
            "a\r\nX-Evil: 1",
            "a\u{202e}b",
            "<script>",
            "a;b",
            "a\"b",
            "a\u{0}b",
        ] {
            assert!(header_value(bad).is_none(), "{bad:?}");
        }
    }
}
