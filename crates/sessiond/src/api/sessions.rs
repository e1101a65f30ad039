//! `/v1/sessions…`: create, verify, rotate, revoke, read and update.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::{
    Aal, AnonymousOptions, CarryData, CreateOptions, Error as CoreError, RevokeReason, Session, SessionData, SessionId,
    SessionOrigin, SignInOptions, Signals, Subject,
};

use super::doc::{AalRefused, InvalidToken, NotFound, SessionLimit, TooManySessions, VersionConflict};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Caller};
use sessiond_wire::{
    CreateRequest, LoginRequest, PatchRequest, RevokeRequest, RotateRequest, SessionResponse, TokenResponse,
    VerifyRequest, decimal, session_json,
};

/// Registered once: a registry lookup per verify costs more than the count.
fn verified_counter() -> &'static metrics::Counter {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("sessiond_sessions_verified_total", "kind" => "signed_in"))
}

fn verified_anonymous_counter() -> &'static metrics::Counter {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("sessiond_sessions_verified_total", "kind" => "anonymous"))
}

fn anonymous_created_counter() -> &'static metrics::Counter {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("sessiond_anonymous_sessions_created_total"))
}

fn aal(value: Option<u8>) -> Result<Option<Aal>, ApiError> {
    value
        .map(|v| Aal::try_from(v).map_err(|e| ApiError::Core(e.into())))
        .transpose()
}

/// A session response (with the token when there is one) and the version as
/// its entity tag.
fn with_etag(session: &Session, signals: Signals, status: StatusCode, token: Option<&str>) -> Response {
    let json = match session_json(token, session, signals) {
        Ok(json) => json,
        Err(error) => {
            tracing::error!(%error, "could not serialise a session");
            return ApiError::Internal.into_response();
        }
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response();
    let mut tag = Vec::with_capacity(22);
    tag.push(b'"');
    decimal(session.version, &mut tag);
    tag.push(b'"');
    if let Ok(tag) = HeaderValue::from_maybe_shared(bytes::Bytes::from(tag)) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// An id from a URL: one that cannot exist is simply not found.
fn parse_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).ok_or(ApiError::Core(CoreError::NotFound))
}

/// Creates a session: a login when the body names a `subject`, else an
/// anonymous session (a visitor before sign-in).
#[utoipa::path(post, path = "/v1/sessions", operation_id = "create_session", tag = "sessions",
    request_body = sessiond_wire::CreateBody,
    responses(
        (status = 201, description = "Created: the token (shown once) and the session; \
            `subject` is null for an anonymous one", body = TokenResponse,
            headers(("ETag" = String, description = "The session's version, quoted"))),
        (status = 409, response = SessionLimit),
        (status = 429, response = TooManySessions),
    ))]
pub async fn create(Caller(manager): Caller, ApiJson(req): ApiJson<CreateRequest>) -> Result<Response, ApiError> {
    let client = req.client.map(|c| c.into_client()).transpose()?.unwrap_or_default();
    let data = req.data.unwrap_or_default();
    let (token, session) = match req.subject {
        Some(subject) => {
            let subject = Subject::new(subject).map_err(CoreError::from)?;
            let options = CreateOptions {
                remember_me: req.remember_me,
                aal: aal(req.aal)?.unwrap_or_default(),
                data,
                client,
                // Whoever holds an API key may name any subject: such a
                // session is never a portal login (issue 12, finding 3).
                origin: SessionOrigin::Api,
            };
            manager.create(&subject, options).await?
        }
        None => {
            // Nobody signed in, so nothing was proven above level 1 and
            // there is nobody to remember: asking for either is a mistake
            // (most likely a missing subject), not something to ignore.
            if req.remember_me || req.aal.is_some_and(|aal| aal != 1) {
                return Err(ApiError::InvalidRequest(
                    "an anonymous session (no subject) is never remember_me and always aal 1".to_owned(),
                ));
            }
            let created = manager.create_anonymous(AnonymousOptions { data, client }).await?;
            anonymous_created_counter().increment(1);
            created
        }
    };
    Ok(with_etag(
        &session,
        Signals::default(),
        StatusCode::CREATED,
        Some(token.expose_secret()),
    ))
}

/// Signs the visitor of an anonymous session in: a new session (new token,
/// new id) for `subject`, with the visitor's data unless `carry_data` is
/// false; the anonymous session ends.
#[utoipa::path(post, path = "/v1/sessions/login", operation_id = "login_session", tag = "sessions",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in: the new token (shown once) and the new session",
            body = TokenResponse,
            headers(("ETag" = String, description = "The session's version, quoted"))),
        (status = 401, response = InvalidToken),
        (status = 409, response = SessionLimit),
    ))]
pub async fn login(Caller(manager): Caller, ApiJson(req): ApiJson<LoginRequest>) -> Result<Response, ApiError> {
    let subject = Subject::new(req.subject).map_err(CoreError::from)?;
    // `data`'s keys go over what is carried (all of the visitor's data, or
    // nothing): one call for an application that merged a cart itself.
    let (carry, own) = match (req.carry_data, req.data) {
        (true, None) => (CarryData::All, SessionData::new()),
        (true, Some(over)) => {
            let merge = move |visitor: &SessionData| {
                let mut data = visitor.clone();
                data.extend(over.clone());
                data
            };
            (CarryData::With(std::sync::Arc::new(merge)), SessionData::new())
        }
        (false, own) => (CarryData::Nothing, own.unwrap_or_default()),
    };
    let options = SignInOptions {
        create: CreateOptions {
            remember_me: req.remember_me,
            aal: aal(req.aal)?.unwrap_or_default(),
            data: own,
            client: req.client.map(|c| c.into_client()).transpose()?.unwrap_or_default(),
            origin: SessionOrigin::Api,
        },
        carry,
    };
    let (token, session) = manager.sign_in(&req.token, &subject, options).await?;
    Ok(with_etag(
        &session,
        Signals::default(),
        StatusCode::OK,
        Some(token.expose_secret()),
    ))
}

/// Verifies a token; the hot path.
#[utoipa::path(post, path = "/v1/sessions/verify", operation_id = "verify_session", tag = "sessions",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Valid", body = SessionResponse,
            headers(("ETag" = String, description = "The session's version, quoted"))),
        (status = 401, response = InvalidToken),
    ))]
pub async fn verify(Caller(manager): Caller, ApiJson(req): ApiJson<VerifyRequest>) -> Result<Response, ApiError> {
    let client = req.client.map(|c| c.into_client()).transpose()?;
    let session = manager.verify(&req.token, client.as_ref()).await?;
    let signals = manager.signals(&session, client.as_ref());
    if session.is_anonymous() {
        verified_anonymous_counter().increment(1);
    } else {
        verified_counter().increment(1);
    }
    Ok(with_etag(&session, signals, StatusCode::OK, None))
}

/// Replaces the token (privilege change, re-authentication, step-up, downgrade).
#[utoipa::path(post, path = "/v1/sessions/rotate", operation_id = "rotate_session", tag = "sessions",
    request_body = RotateRequest,
    responses(
        (status = 200, description = "New token, same session id", body = TokenResponse,
            headers(("ETag" = String, description = "The session's version, quoted"))),
        (status = 400, response = AalRefused),
        (status = 401, response = InvalidToken),
    ))]
pub async fn rotate(Caller(manager): Caller, ApiJson(req): ApiJson<RotateRequest>) -> Result<Response, ApiError> {
    // The level is compared with the session's inside the manager, against
    // the very version it writes: no race can turn this into a downgrade.
    let (token, session) = manager.rotate(&req.token, req.rotation()?).await?;
    Ok(with_etag(
        &session,
        manager.signals(&session, None),
        StatusCode::OK,
        Some(token.expose_secret()),
    ))
}

/// Ends the session of a token (logout); 204 also when it is already gone.
#[utoipa::path(post, path = "/v1/sessions/revoke", operation_id = "revoke_session", tag = "sessions",
    request_body = RevokeRequest,
    responses((status = 204, description = "Ended, or already gone (also for an invalid token)")))]
pub async fn revoke(Caller(manager): Caller, ApiJson(req): ApiJson<RevokeRequest>) -> Result<StatusCode, ApiError> {
    manager.revoke_token(&req.token, RevokeReason::Logout).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads a session by id.
#[utoipa::path(get, path = "/v1/sessions/{id}", operation_id = "get_session", tag = "sessions",
    params(("id" = String, Path, description = "Session id", pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")),
    responses(
        (status = 200, description = "The session", body = SessionResponse,
            headers(("ETag" = String, description = "The session's version, quoted"))),
        (status = 404, response = NotFound),
    ))]
pub async fn get(Caller(manager): Caller, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let session = manager.get(&parse_id(&id)?).await?;
    Ok(with_etag(
        &session,
        manager.signals(&session, None),
        StatusCode::OK,
        None,
    ))
}

/// What `If-Match` (RFC 9110 13.1.1) lets a data update apply to. The
/// entity tag of a session is its version in decimal, quoted: `"3"`.
#[derive(Debug, PartialEq, Eq)]
enum IfMatch {
    /// No header: the last writer wins.
    Absent,
    /// `*`: any current version.
    Any,
    /// A list of entity tags: the versions its strong tags name. A weak tag
    /// never matches (If-Match compares strongly), nor does a strong one
    /// that is not a version, so the list may be empty.
    Versions(Vec<u64>),
    /// Not `*` nor a list of entity tags. RFC 9110 lets a recipient treat
    /// it as a failed condition; so do we (412, not 400), which also keeps
    /// a client from mistaking a typo for an unconditional write.
    Malformed,
}

impl IfMatch {
    /// Parses the field lines of `If-Match` (several lines form one list).
    fn parse<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut lines = lines.into_iter().peekable();
        if lines.peek().is_none() {
            return IfMatch::Absent;
        }
        let (mut star, mut tags, mut versions) = (false, 0usize, Vec::new());
        for line in lines {
            let mut rest = line;
            loop {
                // Whitespace and empty list elements (RFC 9110 5.6.1).
                rest = skip(rest, b" \t,");
                if rest.is_empty() {
                    break;
                }
                let Some((element, after)) = list_element(rest) else {
                    return IfMatch::Malformed;
                };
                match element {
                    Element::Star => star = true,
                    Element::Tag { weak, opaque } => {
                        tags += 1;
                        if let (false, Some(version)) = (weak, version(opaque)) {
                            versions.push(version);
                        }
                    }
                }
                rest = skip(after, b" \t");
                if !(rest.is_empty() || rest[0] == b',') {
                    return IfMatch::Malformed;
                }
            }
        }
        match (star, tags) {
            (true, 0) => IfMatch::Any,
            (true, _) => IfMatch::Malformed,
            (false, _) => IfMatch::Versions(versions),
        }
    }

    /// The versions an update may apply to; `None`: any.
    fn versions(self) -> Option<Vec<u64>> {
        match self {
            IfMatch::Absent | IfMatch::Any => None,
            IfMatch::Versions(versions) => Some(versions),
            IfMatch::Malformed => Some(Vec::new()),
        }
    }
}

/// One element of an `If-Match` list.
enum Element<'a> {
    Star,
    Tag { weak: bool, opaque: &'a [u8] },
}

/// The element at the start of `input` and what follows it; `None` when
/// there is no well-formed one.
fn list_element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    if let Some(rest) = input.strip_prefix(b"*") {
        return Some((Element::Star, rest));
    }
    let (weak, rest) = match input.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let opaque = &rest[..end];
    // etagc = %x21 / %x23-7E / obs-text
    let etagc = |b: &u8| *b == 0x21 || (0x23..=0x7e).contains(b) || *b >= 0x80;
    opaque
        .iter()
        .all(etagc)
        .then_some((Element::Tag { weak, opaque }, &rest[end + 1..]))
}

/// The version an opaque tag names: decimal as we write it, so strong
/// comparison (byte for byte) holds; `"03"` and `"+3"` name none.
fn version(opaque: &[u8]) -> Option<u64> {
    let canonical = opaque.first().is_some_and(|&b| b != b'0' || opaque.len() == 1);
    if !canonical || !opaque.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(opaque).ok()?.parse().ok()
}

fn skip<'a>(mut input: &'a [u8], set: &[u8]) -> &'a [u8] {
    while let [first, rest @ ..] = input
        && set.contains(first)
    {
        input = rest;
    }
    input
}

/// Replaces a session's data; with `If-Match`, only over that version.
#[utoipa::path(patch, path = "/v1/sessions/{id}", operation_id = "update_session_data", tag = "sessions",
    request_body = PatchRequest,
    params(
        ("id" = String, Path, description = "Session id", pattern = "^[A-Za-z0-9_-]{21}[AQgw]$"),
        // The syntax of RFC 9110: `*` or a list of entity tags. Anything
        // else is answered 412 too, as a condition that does not hold.
        ("If-Match" = Option<String>, Header, nullable = false,
            description = "`*`, or the versions the update may apply to as a list of strong entity tags (`\"3\", \"4\"`); a weak tag never matches",
            pattern = "^(\\*|(W/)?\"[!#-~]*\"( *, *(W/)?\"[!#-~]*\")*)$"),
    ),
    responses(
        (status = 200, description = "Updated; version + 1", body = SessionResponse,
            headers(("ETag" = String, description = "The session's new version, quoted"))),
        (status = 404, response = NotFound),
        (status = 412, response = VersionConflict),
    ))]
pub async fn patch(
    Caller(manager): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PatchRequest>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let versions = IfMatch::parse(headers.get_all(header::IF_MATCH).iter().map(HeaderValue::as_bytes)).versions();
    let session = manager.update_data_if(&id, req.data, versions.as_deref()).await?;
    Ok(with_etag(
        &session,
        manager.signals(&session, None),
        StatusCode::OK,
        None,
    ))
}

/// Ends a session by id (admin or "sign out that device").
#[utoipa::path(delete, path = "/v1/sessions/{id}", operation_id = "delete_session", tag = "sessions",
    params(("id" = String, Path, description = "Session id", pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, response = NotFound),
    ))]
pub async fn delete(Caller(manager): Caller, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    manager.revoke_id(&parse_id(&id)?, RevokeReason::Admin).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_written_in_decimal() {
        for n in [0, 1, 9, 10, 4711, u64::MAX] {
            let mut out = Vec::new();
            decimal(n, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    #[test]
    fn if_match_follows_rfc_9110() {
        use IfMatch::{Any, Malformed, Versions};
        let table: &[(&[&str], IfMatch)] = &[
            (&["\"7\""], Versions(vec![7])),
            (&["*"], Any),
            (&[" * "], Any),
            (&["\"3\", \"4\""], Versions(vec![3, 4])),
            (&["\"3\",\"4\",,"], Versions(vec![3, 4])),
            (&["\"3\"", "\"4\""], Versions(vec![3, 4])),
            (&["W/\"7\""], Versions(vec![])),
            (&["W/\"7\", \"8\""], Versions(vec![8])),
            (&["\"x\""], Versions(vec![])),
            (&["\"a,b\", \"2\""], Versions(vec![2])),
            (&["\"07\"", "\"+7\"", "\"-1\"", "\"\""], Versions(vec![])),
            (&["\"18446744073709551615\""], Versions(vec![u64::MAX])),
            (&["\"18446744073709551616\""], Versions(vec![])),
            (&[""], Versions(vec![])),
            (&["7"], Malformed),
            (&["0"], Malformed),
            (&["\"7"], Malformed),
            (&["\"7\"\"8\""], Malformed),
            (&["\"7\" 8"], Malformed),
            (&["w/\"7\""], Malformed),
            (&["*, \"7\""], Malformed),
            (&["*", "\"7\""], Malformed),
            (&["**"], Malformed),
            (&["\"a b\""], Malformed),
        ];
        for (lines, expected) in table {
            let parsed = IfMatch::parse(lines.iter().map(|l| l.as_bytes()));
            assert_eq!(&parsed, expected, "{lines:?}");
        }
        assert_eq!(IfMatch::parse(std::iter::empty()), IfMatch::Absent);
        assert_eq!(IfMatch::Absent.versions(), None);
        assert_eq!(IfMatch::Any.versions(), None);
        assert_eq!(IfMatch::Malformed.versions(), Some(vec![]));
    }
}
