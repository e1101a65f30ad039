//! `GET /v1/revocations`: the revocation feed, as one JSON answer or as a
//! `text/event-stream` that stays open.
//!
//! A stream polls the store every [`POLL`] for entries after the last one
//! it sent: every node reads the same store, so a revocation made on any
//! node reaches every stream within that time, with nothing sent between
//! nodes. Streams are few (one per verifying service instance) and capped
//! at [`MAX_STREAMS`] per node.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use sessiond_core::{EventId, Tenant};
use sessiond_wire::{RevocationsParams, RevocationsResponse};
use tokio::sync::{Semaphore, mpsc};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, Caller, presented_key};
use crate::revocations::{Page, Revocations};

/// How often a stream looks for new entries.
pub const POLL: Duration = Duration::from_millis(250);

/// Streams open at once on one node; more are answered 503 `overloaded`.
pub const MAX_STREAMS: usize = 256;

/// A comment line this often keeps proxies from closing an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

fn streams() -> &'static Arc<Semaphore> {
    static STREAMS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    STREAMS.get_or_init(|| Arc::new(Semaphore::new(MAX_STREAMS)))
}

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
    let permit = Arc::clone(streams())
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    // A streamed id may not be settled: resume a little before it (the
    // client may see a second's entries twice, and misses none).
    let after = after.as_ref().map(Revocations::resume_from);
    // The first page is read before answering, so a store that is down is
    // a 503 now rather than an empty stream.
    let first = state.revocations.after(&tenant, after.as_ref()).await?;
    let (sender, receiver) = mpsc::channel::<SseEvent>(64);
    let revocations = state.revocations.clone();
    // The key is checked again at every poll: a stream ends within one
    // poll of its key being deleted or expiring, like any other call.
    let key = presented_key(&headers).unwrap_or_default().to_owned();
    let keys = Arc::clone(&state.keys);
    let still_allowed = move || keys.authenticate(&key).is_some();
    tokio::spawn(async move {
        let _permit = permit;
        follow(revocations, tenant, first, after, sender, still_allowed).await;
    });
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// Sends `first` and then whatever comes after it, until the client goes
/// or its key stops being valid.
async fn follow(
    revocations: Revocations,
    tenant: Tenant,
    mut page: Page,
    mut cursor: Option<EventId>,
    sender: mpsc::Sender<SseEvent>,
    still_allowed: impl Fn() -> bool,
) {
    let mut every = tokio::time::interval(POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Ids sent after the settled cursor: the next page repeats them.
    let mut sent = std::collections::BTreeSet::new();
    loop {
        for (id, entry) in std::mem::take(&mut page.entries) {
            if !sent.insert(id.clone()) {
                continue;
            }
            let Ok(data) = serde_json::to_string(&entry) else {
                continue;
            };
            let event = SseEvent::default().event("revoked").id(id.to_string()).data(data);
            if sender.send(event).await.is_err() {
                return;
            }
        }
        if let Some(settled) = page.settled.take() {
            sent = sent.split_off(&settled);
            sent.remove(&settled);
            cursor = Some(settled);
        }
        tokio::select! {
            _ = every.tick() => {}
            () = sender.closed() => return,
        }
        if !still_allowed() {
            return;
        }
        page = match revocations.after(&tenant, cursor.as_ref()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "revocation stream: cannot read the feed; trying again");
                Page::default()
            }
        };
    }
}
