//! `/v1/subjects/{subject}/sessions` and `/v1/events`.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::{Error as CoreError, EventFilter, EventId, EventKind, RevokeReason, SessionId, Subject};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, Caller};
use sessiond_wire::{
    EventView, EventsParams, EventsResponse, MAX_EVENTS_PER_QUERY, RevokeSubjectParams, RevokedResponse,
    SessionsResponse, sessions_json,
};

fn subject(raw: String) -> Result<Subject, ApiError> {
    Subject::new(raw).map_err(|e| ApiError::Core(CoreError::from(e)))
}

/// A subject's live sessions, newest first (the device list).
#[utoipa::path(get, path = "/v1/subjects/{subject}/sessions", operation_id = "list_subject_sessions", tag = "subjects",
    params(("subject" = String, Path, min_length = 1, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$",
        description = "Subject: 1 to 256 bytes of UTF-8 without control characters, percent-encoded")),
    responses((status = 200, description = "Newest first", body = SessionsResponse)))]
pub async fn list(Caller(manager): Caller, ApiPath(raw): ApiPath<String>) -> Result<Response, ApiError> {
    let sessions = manager.list_subject(&subject(raw)?).await?;
    let json = sessions_json(&sessions, |s| manager.signals(s, None)).map_err(|error| {
        tracing::error!(%error, "could not serialise sessions");
        ApiError::Internal
    })?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        json,
    )
        .into_response())
}

/// Ends every session of a subject, except `except` ("sign out everywhere else").
#[utoipa::path(delete, path = "/v1/subjects/{subject}/sessions", operation_id = "revoke_subject_sessions", tag = "subjects",
    params(
        ("subject" = String, Path, min_length = 1, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$",
            description = "Subject: 1 to 256 bytes of UTF-8 without control characters, percent-encoded"),
        ("except" = Option<String>, Query, description = "Session id to keep", pattern = "^[A-Za-z0-9_-]{21}[AQgw]$"),
    ),
    responses((status = 200, description = "How many ended", body = RevokedResponse)))]
pub async fn revoke_all(
    Caller(manager): Caller,
    ApiPath(raw): ApiPath<String>,
    ApiQuery(params): ApiQuery<RevokeSubjectParams>,
) -> Result<Json<RevokedResponse>, ApiError> {
    // A malformed `except` must not turn "everywhere else" into "everywhere".
    let except = params
        .except
        .map(|id| SessionId::parse(&id).ok_or_else(|| ApiError::InvalidRequest("except is not a session id".into())))
        .transpose()?;
    let revoked = manager
        .revoke_subject(&subject(raw)?, except.as_ref(), RevokeReason::Admin)
        .await?;
    Ok(Json(RevokedResponse { revoked }))
}

/// The audit log of the caller's tenant, newest first, the same from every
/// node; page with `before`.
#[utoipa::path(get, path = "/v1/events", operation_id = "list_events", tag = "events",
    params(
        ("subject" = Option<String>, Query, min_length = 1, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$",
            description = "Only this subject (1 to 256 bytes of UTF-8 without control characters)"),
        ("session_id" = Option<String>, Query, description = "Only this session", pattern = "^[A-Za-z0-9_-]{21}[AQgw]$"),
        ("kind" = Option<String>, Query, description = "Only events of this kind",
            pattern = "^(created|verify_failed|touched|rotated|elevated|data_updated|revoked|expired_purged|anomaly)$"),
        ("before" = Option<String>, Query, description = "Only events older than this one: the id of the last event of the previous page",
            pattern = "^[0-9]{17}-[0-9a-f]{8}-[0-9a-f]{8}$"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100", minimum = 1, maximum = 1000),
    ),
    responses((status = 200, description = "Newest first", body = EventsResponse)))]
pub async fn events(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(manager): Caller,
    ApiQuery(params): ApiQuery<EventsParams>,
) -> Result<Json<EventsResponse>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_EVENTS_PER_QUERY {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be between 1 and {MAX_EVENTS_PER_QUERY}"
        )));
    }
    let session_id = params
        .session_id
        .map(|id| {
            SessionId::parse(&id).ok_or_else(|| ApiError::InvalidRequest("session_id is not a session id".into()))
        })
        .transpose()?;
    let kind = params
        .kind
        .map(|kind| {
            EventKind::parse_name(&kind)
                .ok_or_else(|| ApiError::InvalidRequest(format!("kind must be one of {}", EventKind::NAMES.join(", "))))
        })
        .transpose()?;
    let before = params
        .before
        .map(|id| EventId::parse(&id).map_err(|_| ApiError::InvalidRequest("before is not an event id".into())))
        .transpose()?;
    let filter = EventFilter {
        subject: params.subject.map(subject).transpose()?,
        session_id,
        kind,
        before,
        limit,
    };
    let events = state.events.query(manager.tenant(), &filter).await?;
    Ok(Json(EventsResponse {
        events: events.iter().map(EventView::from).collect(),
    }))
}
