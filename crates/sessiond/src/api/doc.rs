//! The served OpenAPI document: its head (servers, the API-key scheme,
//! security by default), and the responses every operation shares, written
//! here once instead of in every handler's annotation.
//!
//! - every operation: `431` and `503` of the guard in front of every route,
//!   `408` when it takes a body, and `429` on the public (portal) routes;
//! - every `/v1` operation: `400`, `401`, `500`, `503`,
//!   and `413`/`415` when it takes a JSON body; `403` on `/v1/admin/…`;
//! - route-specific problems (`404`, `409`, `412`, `401 invalid_token`) are
//!   named in the handlers' annotations by the response components below.
//!
//! Every error is `application/problem+json` with the `Problem` schema.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, OpenApi, Ref, RefOr, Response};
use utoipa::{Modify, ToResponse};

use sessiond_wire::PROBLEM_CONTENT_TYPE;
use sessiond_wire::openapi::{add_response, operations_mut, problem_content, problem_response};

/// The head of the document; paths come from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "sessiond", description = "Session management over HTTP/JSON. See docs/api.md."),
    servers((url = "/", description = "This server")),
    security(("api_key" = [])),
    modifiers(&BearerKey),
    components(schemas(sessiond_wire::Problem, sessiond_wire::ErrorCode))
)]
pub(super) struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Problem responses as components, named by the handlers'
/// `(status = …, response = …)` and added to operations by [`complete`].
macro_rules! problem_responses {
    ($($(#[$meta:meta])* $name:ident = $description:literal;)*) => {
        $(
            $(#[$meta])*
            pub(super) struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), RefOr::T(problem_response($description)))
                }
            }
        )*

        /// Every problem response component.
        fn problem_components() -> Vec<(&'static str, RefOr<Response>)> {
            vec![$(<$name as ToResponse>::response()),*]
        }
    };
}

problem_responses! {
    /// 400 of every `/v1` operation.
    InvalidRequest = "`invalid_request`: malformed JSON or query, a body or field that is not an object, a missing, unknown or mistyped field, or a value out of range";
    /// 400 of rotation.
    AalRefused = "`invalid_request`: as for every operation, or `downgrade` without `aal` or with `reauthenticated`; `aal_downgrade`: `aal` is below the session's level and `downgrade` is not set; `aal_mismatch`: `downgrade` with an `aal` not below the session's level";
    /// 401 of every `/v1` operation.
    Unauthorized = "`unauthorized`: no valid API key; `client_certificate_required`: `server.tls.client_ca_file` is set and the connection presented no client certificate (checked before the key)";
    /// 401 of the operations that take a session token.
    InvalidToken = "`invalid_token`: the token is unknown, malformed, expired, revoked or rotated out, never saying which; or `unauthorized`: no valid API key; or `client_certificate_required`: `server.tls.client_ca_file` is set and the connection presented no client certificate";
    /// 403 of every admin operation.
    Forbidden = "`forbidden`: the API key is valid but its role is `app`; admin routes need an `admin` key";
    /// 400 of user writes.
    UserRefused = "`invalid_request`: as for every operation, or a user name that is empty, has surrounding spaces, control characters or is too long; `weak_password`: the password is under 8 characters or over 1024 bytes";
    /// 409 of adding a user.
    UserExists = "`user_exists`: a user with this name exists in the caller's tenant";
    /// 404 of the operations on a user.
    UserNotFound = "`not_found`: no user with this name in the caller's tenant";
    /// 404 of deleting a key.
    KeyNotFound = "`not_found`: no key with this id in the caller's tenant";
    /// 404 of the operations on a session id.
    NotFound = "`not_found`: no live session with this id in the caller's tenant";
    /// 409 of session creation.
    SessionLimit = "`session_limit`: the subject is at its session limit and the policy is `deny`";
    /// 429 of session creation.
    TooManySessions = "`too_many_sessions`: this client address (its /64 for IPv6) used up its `policy.anonymous_per_address` anonymous sessions (the count is forgotten after an hour without one) and is locked out; `Retry-After` says for how many seconds";
    /// 412 of a conditional update.
    VersionConflict = "`version_conflict`: `If-Match` names no current version or is malformed; `current_version` says which is";
    /// 413 of every operation with a JSON body.
    PayloadTooLarge = "`payload_too_large`: the body is over `server.body_limit`, or `data` over `policy.max_data_bytes`";
    /// 415 of every operation with a JSON body.
    UnsupportedMediaType = "`unsupported_media_type`: the body is not `application/json`";
    /// 431 of every operation.
    HeadersTooLarge = "`headers_too_large`: the request headers are over `server.header_limit`";
    /// 500 of every `/v1` operation.
    Internal = "`internal`: a failure on the server's side";
    /// 503 of every `/v1` operation.
    Unavailable = "`store_unavailable`: the store cannot be reached; `overloaded`: too many requests in flight; `timeout`: the request took too long";
    /// 408 of every operation with a body.
    BodyTimeout = "`body_timeout`: the body did not arrive whole within `server.body_read_timeout`";
    /// 429 of the public routes.
    TooManyRequests = "`too_many_requests`: this client address has `server.public_max_per_client` requests in flight";
    /// 503 of the guard, in front of every route.
    Shed = "`overloaded`: too many requests in flight; `timeout`: the request took too long";
}

/// Adds the responses every operation shares (see the module comment) and
/// their components. Runs over the whole document, the portal's included.
pub(super) fn complete(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Components::default);
    components.responses.extend(
        problem_components()
            .into_iter()
            .map(|(name, response)| (name.to_owned(), response)),
    );
    for (path, _, operation) in operations_mut(doc) {
        let v1 = path.starts_with("/v1/");
        let public = super::budget::RouteClass::of(path) == super::budget::RouteClass::Public;
        let has_body = operation.request_body.is_some();
        let json_body = operation
            .request_body
            .as_ref()
            .is_some_and(|body| matches!(body, RefOr::T(b) if b.content.contains_key("application/json")));
        let mut add = |status: &str, name: &str, description: &str| {
            add_response(
                operation,
                status,
                || RefOr::Ref(Ref::from_response_name(name)),
                PROBLEM_CONTENT_TYPE,
                problem_content,
                description,
            );
        };
        if v1 {
            add("400", "InvalidRequest", "`invalid_request`");
            add("401", "Unauthorized", "`unauthorized` or `client_certificate_required`");
            add("500", "Internal", "`internal`");
            add("503", "Unavailable", "`store_unavailable`, `overloaded` or `timeout`");
        }
        if path.starts_with("/v1/admin/") {
            add("403", "Forbidden", "`forbidden`");
        }
        if json_body {
            add("413", "PayloadTooLarge", "`payload_too_large`");
            add("415", "UnsupportedMediaType", "`unsupported_media_type`");
        }
        if has_body {
            add("408", "BodyTimeout", "`body_timeout`");
        }
        if public {
            add("429", "TooManyRequests", "`too_many_requests`");
        }
        add("431", "HeadersTooLarge", "`headers_too_large`");
        add("503", "Shed", "`overloaded` or `timeout` (problem+json)");
    }
}

#[cfg(test)]
mod tests {
    use sessiond_core::{SessionId, Subject};
    use sessiond_wire::{SESSION_ID_PATTERN, SUBJECT_PATTERN};

    const BASE64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    #[test]
    fn the_session_id_pattern_is_what_session_id_parse_accepts() {
        assert_eq!(SESSION_ID_PATTERN, "^[A-Za-z0-9_-]{21}[AQgw]$");
        // 21 free base64url characters, then one that carries 2 bits.
        for c in BASE64URL.chars() {
            let free = format!("{c}{}A", "A".repeat(20));
            assert!(SessionId::parse(&free).is_some(), "{free}");
            let last = format!("{}{c}", "A".repeat(21));
            assert_eq!(SessionId::parse(&last).is_some(), "AQgw".contains(c), "{last}");
        }
        for bad in [
            "A".repeat(21),
            "A".repeat(23),
            format!("{}+A", "A".repeat(20)),
            format!("{}=", "A".repeat(21)),
        ] {
            assert!(SessionId::parse(&bad).is_none(), "{bad}");
        }
    }

    /// The characters a `^[^…]+$` pattern's class names, read the way a
    /// JSON Schema (ECMA-262) validator reads them: `\uXXXX`, `\\`, `\"`
    /// and single characters, and `a-b` ranges.
    fn negated_class(pattern: &str) -> Vec<(char, char)> {
        let class = pattern
            .strip_prefix("^[^")
            .and_then(|p| p.strip_suffix("]+$"))
            .expect("a ^[^…]+$ pattern");
        let mut chars = class.chars().peekable();
        fn next(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
            let c = chars.next()?;
            if c != '\\' {
                return Some(c);
            }
            match chars.next()? {
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                }
                other => Some(other),
            }
        }
        let mut ranges = Vec::new();
        while let Some(first) = next(&mut chars) {
            if chars.peek() == Some(&'-') {
                chars.next();
                let last = next(&mut chars).expect("range end");
                ranges.push((first, last));
            } else {
                ranges.push((first, first));
            }
        }
        ranges
    }

    #[test]
    fn the_subject_pattern_refuses_exactly_what_subject_new_refuses() {
        let ranges = negated_class(SUBJECT_PATTERN);
        let refused = |c: char| ranges.iter().any(|&(a, b)| a <= c && c <= b);
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(
                Subject::new(format!("a{c}b")).is_err(),
                refused(c),
                "U+{:04X}",
                u32::from(c)
            );
        }
        for refused in ["alice, admin", "<script>", " ", "a\u{202e}b"] {
            assert!(Subject::new(refused).is_err(), "{refused:?}");
        }
    }
}
