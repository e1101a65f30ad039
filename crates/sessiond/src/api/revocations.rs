//! `GET /v1/revocations`: the revocation feed, as one JSON answer or as a
//! `text/event-stream` that stays open.
//!
//! The stream is [`super::stream`]'s, shared with `GET /v1/events/stream`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::{EventId, EventStoreError, Tenant};
use sessiond_wire::{RevocationView, RevocationsParams, RevocationsResponse};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, Caller};
use super::stream::{self, Feed};
use crate::feed::Page;
use crate::revocations::Revocations;

fn parse_cursor(raw: &str) -> Result<EventId, ApiError> {
    EventId::parse(raw).map_err(|_| ApiError::InvalidRequest("after is not a cursor of this feed".into()))
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Sessions revoked while access tokens for them may still be unexpired,
/// oldest first; with `Accept: text/event-stream`, a stream of them that
/// stays open.
#[utoipa::path(get, path = "/v1/revocations", operation_id = "list_revocations", tag = "access tokens",
    params(
        ("after" = Option<String>, Query, description = "Only entries after this cursor (a `cursor`, or a streamed entry's `id`); a stream also takes it as `Last-Event-ID`",
            pattern = "^[0-9]{17}-[0-9a-f]{8}-[0-9a-f]{8}$"),
    ),
    responses(
        (status = 200, description = "Oldest first, at most 1000 (page on with `cursor`). With `Accept: text/event-stream`, a stream instead: each entry as an event `revoked` whose `id` is its cursor and whose `data` is the entry's JSON, and a `: keep-alive` comment every 15 s",
            content(
                (RevocationsResponse = "application/json"),
                (String = "text/event-stream"),
            )),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Caller(manager): Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<RevocationsParams>,
) -> Result<Response, ApiError> {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let stream = wants_stream(&headers);
    let after = match (params.after.as_deref(), last_event_id) {
        (Some(raw), _) => Some(parse_cursor(raw)?),
        (None, Some(raw)) if stream => Some(parse_cursor(raw)?),
        _ => None,
    };
    let tenant = manager.tenant().clone();
    if !stream {
        let page = state.revocations.after(&tenant, after.as_ref()).await?;
        return Ok(Json(RevocationsResponse {
            // Settled, else the caller's own: never past an entry that
            // may still be joined by an earlier one.
            cursor: page.settled.as_ref().or(after.as_ref()).map(ToString::to_string),
            revoked: page.entries.into_iter().map(|(_, view)| view).collect(),
        })
        .into_response());
    }
    // A streamed id may not be settled: resume a little before it (the
    // client may see a second's entries twice, and misses none).
    let after = after.as_ref().map(Revocations::resume_from);
    let feed = RevocationFeed {
        revocations: state.revocations.clone(),
        tenant,
    };
    stream::open(&state, &headers, feed, after).await
}

/// The feed of one tenant, for a stream.
struct RevocationFeed {
    revocations: Revocations,
    tenant: Tenant,
}

impl Feed for RevocationFeed {
    type Entry = RevocationView;

    fn name(_: &RevocationView) -> &str {
        "revoked"
    }

    async fn after(&self, cursor: Option<&EventId>) -> Result<Page<RevocationView>, EventStoreError> {
        self.revocations.after(&self.tenant, cursor).await
    }
}
