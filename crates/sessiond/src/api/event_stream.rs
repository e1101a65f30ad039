//! `GET /v1/events/stream`: the caller's tenant's audit events as they
//! happen, as a `text/event-stream` ([`super::stream`], the loop the
//! revocation stream uses too).
//!
//! Events are read from the store, so a stream on one node carries every
//! node's events. Each is the view `GET /v1/events` lists, sent as an
//! event named by its kind with its event id as `id`; a client that
//! reconnects with `Last-Event-ID` misses nothing.
//!
//! The settle time is longer than the revocation feed's: besides the
//! events written with their change (ids taken just before the commit),
//! the log holds events queued on their node and written in its next batch
//! (`touched`, `verify_failed`, `anomaly`), whose ids are taken when that
//! batch is written: normally within milliseconds, later when the writer
//! is behind. [`SETTLE`] covers a writer a few seconds behind.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use sessiond_core::{EventId, EventKind, EventStoreError, SessionManager};
use sessiond_wire::EventView;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, Caller};
use super::stream::{self, Feed};
use crate::event_log::EventLog;
use crate::feed::{self, Page};

/// How long after its id's time an event may still become visible.
pub const SETTLE: Duration = Duration::from_secs(5);

/// Query of `GET /v1/events/stream`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Only events of this kind.
    kind: Option<String>,
    /// Only events after this one (as `Last-Event-ID`, for clients that
    /// cannot set headers).
    after: Option<String>,
}

/// The caller's tenant's audit events as they happen, oldest first, each
/// sent once (until a reconnect).
#[utoipa::path(get, path = "/v1/events/stream", operation_id = "stream_events", tag = "events",
    params(
        ("kind" = Option<String>, Query, description = "Only events of this kind",
            pattern = "^(created|verify_failed|touched|rotated|elevated|data_updated|revoked|expired_purged|anomaly)$"),
        ("after" = Option<String>, Query, description = "Resume after this event (a streamed event's `id`); wins over `Last-Event-ID`",
            pattern = "^[0-9]{17}-[0-9a-f]{8}-[0-9a-f]{8}$"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event: the `id` of the last event received (sent by `EventSource` when it reconnects)",
            pattern = "^[0-9]{17}-[0-9a-f]{8}-[0-9a-f]{8}$"),
    ),
    responses(
        (status = 200, description = "A stream that stays open: each event as an SSE event named by its `kind`, whose `id` is the event's id and whose `data` is its JSON as `GET /v1/events` lists it (`EventView`); a `: keep-alive` comment every 15 s. A resumed stream starts 5 s before the given id, so a few events may come again: de-duplicate on `id`",
            content_type = "text/event-stream", body = String),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    Caller(manager): Caller,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, ApiError> {
    let kind = params
        .kind
        .map(|kind| {
            EventKind::parse_name(&kind)
                .ok_or_else(|| ApiError::InvalidRequest(format!("kind must be one of {}", EventKind::NAMES.join(", "))))
        })
        .transpose()?;
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let seen = params
        .after
        .as_deref()
        .or(last_event_id)
        .map(|raw| EventId::parse(raw).map_err(|_| ApiError::InvalidRequest("not an event id to resume after".into())))
        .transpose()?;
    // A seen id may not be settled: resume a little before it (the client
    // may get a few events twice, and misses none). A new stream starts as
    // settled as a resumed one: with the events of the last moment.
    let start = match &seen {
        Some(seen) => feed::resume_from(seen, SETTLE),
        None => EventId::first_at(manager.now() - SETTLE),
    };
    let feed = EventFeed {
        events: Arc::clone(&state.events),
        manager,
        kind,
    };
    stream::open(&state, &headers, feed, Some(start)).await
}

/// One tenant's events (of one kind), for a stream.
struct EventFeed {
    events: Arc<EventLog>,
    /// The caller's: its tenant and the clock.
    manager: SessionManager,
    kind: Option<&'static str>,
}

impl Feed for EventFeed {
    type Entry = EventView;

    fn name(entry: &EventView) -> &str {
        &entry.kind
    }

    async fn after(&self, cursor: Option<&EventId>) -> Result<Page<EventView>, EventStoreError> {
        let now = self.manager.now();
        let floor = cursor.cloned().unwrap_or_else(|| EventId::first_at(now - SETTLE));
        let page = feed::read(&self.events, self.manager.tenant(), self.kind, &floor, now, SETTLE).await?;
        Ok(page.filter_map(|stored| Some(EventView::from(&stored))))
    }
}
