//! `/v1/sessions…`: create, verify, rotate, revoke, read and update.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::{Aal, CreateOptions, Error as CoreError, RevokeReason, Session, SessionId, Subject};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Caller};
use sessiond_wire::{
    CreateRequest, PatchRequest, Problem, RevokeRequest, RotateRequest, SessionResponse, TokenResponse, VerifyRequest,
    decimal, session_json,
};

/// Registered once: a registry lookup per verify costs more than the count.
fn verified_counter() -> &'static metrics::Counter {
    static COUNTER: std::sync::OnceLock<metrics::Counter> = std::sync::OnceLock::new();
    COUNTER.get_or_init(|| metrics::counter!("sessiond_sessions_verified_total"))
}

fn aal(value: Option<u8>) -> Result<Option<Aal>, ApiError> {
    value
        .map(|v| Aal::try_from(v).map_err(|e| ApiError::Core(e.into())))
        .transpose()
}

/// A session response (with the token when there is one) and the version as
/// its entity tag.
fn with_etag(session: &Session, status: StatusCode, token: Option<&str>) -> Response {
    let json = match session_json(token, session) {
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

/// Creates a session (login).
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created", body = TokenResponse),
        (status = 400, description = "Bad fields", body = Problem),
        (status = 401, description = "Missing or wrong API key", body = Problem),
        (status = 409, description = "session_limit", body = Problem),
        (status = 413, description = "payload_too_large", body = Problem),
    ))]
pub async fn create(Caller(manager): Caller, ApiJson(req): ApiJson<CreateRequest>) -> Result<Response, ApiError> {
    let subject = Subject::new(req.subject).map_err(CoreError::from)?;
    let options = CreateOptions {
        remember_me: req.remember_me,
        aal: aal(req.aal)?.unwrap_or_default(),
        data: req.data.unwrap_or_default(),
        client: req.client.map(|c| c.into_client()).transpose()?.unwrap_or_default(),
    };
    let (token, session) = manager.create(&subject, options).await?;
    Ok(with_etag(&session, StatusCode::CREATED, Some(token.expose_secret())))
}

/// Verifies a token; the hot path.
#[utoipa::path(post, path = "/v1/sessions/verify", tag = "sessions", request_body = VerifyRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Valid", body = SessionResponse),
        (status = 401, description = "invalid_token (unknown, malformed, expired or revoked alike)", body = Problem),
        (status = 503, description = "store_unavailable", body = Problem),
    ))]
pub async fn verify(Caller(manager): Caller, ApiJson(req): ApiJson<VerifyRequest>) -> Result<Response, ApiError> {
    let client = req.client.map(|c| c.into_client()).transpose()?;
    let session = manager.verify(&req.token, client.as_ref()).await?;
    verified_counter().increment(1);
    Ok(with_etag(&session, StatusCode::OK, None))
}

/// Replaces the token (privilege change, step-up).
#[utoipa::path(post, path = "/v1/sessions/rotate", tag = "sessions", request_body = RotateRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "New token, same session id", body = TokenResponse),
        (status = 401, description = "invalid_token", body = Problem),
    ))]
pub async fn rotate(Caller(manager): Caller, ApiJson(req): ApiJson<RotateRequest>) -> Result<Response, ApiError> {
    let (token, session) = manager.rotate(&req.token, aal(req.aal)?).await?;
    Ok(with_etag(&session, StatusCode::OK, Some(token.expose_secret())))
}

/// Ends the session of a token (logout); 204 also when it is already gone.
#[utoipa::path(post, path = "/v1/sessions/revoke", tag = "sessions", request_body = RevokeRequest,
    security(("api_key" = [])),
    responses((status = 204, description = "Ended, or already gone")))]
pub async fn revoke(Caller(manager): Caller, ApiJson(req): ApiJson<RevokeRequest>) -> Result<StatusCode, ApiError> {
    manager.revoke_token(&req.token, RevokeReason::Logout).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads a session by id.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The session", body = SessionResponse),
        (status = 404, description = "not_found", body = Problem),
    ))]
pub async fn get(Caller(manager): Caller, ApiPath(id): ApiPath<String>) -> Result<Response, ApiError> {
    let session = manager.get(&parse_id(&id)?).await?;
    Ok(with_etag(&session, StatusCode::OK, None))
}

/// Parses `If-Match: "<version>"`.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || ApiError::InvalidRequest("If-Match must be a quoted version, e.g. \"3\"".to_owned());
    let text = value.to_str().map_err(|_| bad())?.trim();
    let inner = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    inner.parse::<u64>().map(Some).map_err(|_| bad())
}

/// Replaces a session's data; with `If-Match`, only over that version.
#[utoipa::path(patch, path = "/v1/sessions/{id}", tag = "sessions", request_body = PatchRequest,
    params(
        ("id" = String, Path, description = "Session id"),
        ("If-Match" = Option<String>, Header, description = "Expected version, quoted"),
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Updated; version + 1", body = SessionResponse),
        (status = 404, description = "not_found", body = Problem),
        (status = 412, description = "version_conflict", body = Problem),
        (status = 413, description = "payload_too_large", body = Problem),
    ))]
pub async fn patch(
    Caller(manager): Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PatchRequest>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let session = manager.update_data(&parse_id(&id)?, req.data, expected).await?;
    Ok(with_etag(&session, StatusCode::OK, None))
}

/// Ends a session by id (admin or "sign out that device").
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "not_found", body = Problem),
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
    fn if_match_accepts_only_a_quoted_version() {
        let mut h = HeaderMap::new();
        assert_eq!(if_match(&h).ok(), Some(None));
        h.insert(header::IF_MATCH, HeaderValue::from_static("\"7\""));
        assert_eq!(if_match(&h).ok(), Some(Some(7)));
        for bad in ["7", "\"x\"", "W/\"7\"", "\"-1\"", "\"\""] {
            h.insert(header::IF_MATCH, HeaderValue::from_static(bad));
            assert!(matches!(if_match(&h), Err(ApiError::InvalidRequest(_))), "{bad}");
        }
    }
}
