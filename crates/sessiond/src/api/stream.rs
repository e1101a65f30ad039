//! The `text/event-stream` answers that follow a feed of the audit log:
//! `GET /v1/revocations` (with `Accept: text/event-stream`) and
//! `GET /v1/events/stream`. One loop for both; each names its [`Feed`].
//!
//! A stream polls the store every [`POLL`] for entries after its settled
//! cursor ([`crate::feed`]): every node reads the same store, so what any
//! node records reaches every stream within about that time, with nothing
//! sent between nodes. Entries after the settled cursor come again in the
//! next read; the stream remembers the ids it sent since the cursor and
//! sends each entry once. Streams are capped at [`MAX_STREAMS`] per node,
//! all feeds together, and the API key is checked again at every poll.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessiond_core::{EventId, EventStoreError};
use tokio::sync::{Semaphore, mpsc};

use super::AppState;
use super::error::ApiError;
use super::extract::presented_key;
use crate::feed::Page;

/// How often a stream looks for new entries.
pub const POLL: Duration = Duration::from_millis(250);

/// Streams open at once on one node, of every feed; more are answered 503
/// `overloaded`.
pub const MAX_STREAMS: usize = 256;

/// A comment line this often keeps proxies from closing an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Entries waiting to be written to the client; a slow client holds the
/// stream's reads back rather than piling them up here.
const BUFFER: usize = 64;

fn streams() -> &'static Arc<Semaphore> {
    static STREAMS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    STREAMS.get_or_init(|| Arc::new(Semaphore::new(MAX_STREAMS)))
}

/// What a stream follows.
pub trait Feed: Send + 'static {
    /// One entry, sent as the `data` of an event.
    type Entry: Serialize + Send + 'static;

    /// The name of the event `entry` is sent as.
    fn name(entry: &Self::Entry) -> &str;

    /// Entries after `cursor` (from where the feed begins when `None`),
    /// oldest first, with the settled cursor.
    fn after(
        &self,
        cursor: Option<&EventId>,
    ) -> impl Future<Output = Result<Page<Self::Entry>, EventStoreError>> + Send;
}

/// The stream of `feed` after `cursor`, for the caller whose request
/// `headers` carry its API key.
///
/// The first read happens before answering, so a store that is down is a
/// 503 now rather than an empty stream.
pub async fn open<F: Feed>(
    state: &AppState,
    headers: &HeaderMap,
    feed: F,
    cursor: Option<EventId>,
) -> Result<Response, ApiError> {
    let permit = Arc::clone(streams())
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let first = feed.after(cursor.as_ref()).await?;
    let (sender, receiver) = mpsc::channel::<SseEvent>(BUFFER);
    // The key is checked again at every poll: a stream ends within one
    // poll of its key being deleted or expiring, like any other call.
    let key = presented_key(headers).unwrap_or_default().to_owned();
    let keys = Arc::clone(&state.keys);
    let still_allowed = move || keys.authenticate(&key).is_some();
    tokio::spawn(async move {
        let _permit = permit;
        follow(feed, first, cursor, sender, still_allowed).await;
    });
    Ok(respond(receiver, KEEP_ALIVE))
}

/// The response that writes what `receiver` gets, with a `: keep-alive`
/// comment after each `keep_alive` without an event.
fn respond(receiver: mpsc::Receiver<SseEvent>, keep_alive: Duration) -> Response {
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response()
}

/// Sends `page` and then whatever comes after it, until the client goes
/// or its key stops being valid.
async fn follow<F: Feed>(
    feed: F,
    mut page: Page<F::Entry>,
    mut cursor: Option<EventId>,
    sender: mpsc::Sender<SseEvent>,
    still_allowed: impl Fn() -> bool,
) {
    let mut every = tokio::time::interval(POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Ids sent after the settled cursor: the next read repeats them.
    let mut sent = BTreeSet::new();
    loop {
        for (id, entry) in std::mem::take(&mut page.entries) {
            if !sent.insert(id.clone()) {
                continue;
            }
            let Ok(data) = serde_json::to_string(&entry) else {
                continue;
            };
            let event = SseEvent::default().event(F::name(&entry)).id(id.to_string()).data(data);
            if sender.send(event).await.is_err() {
                return;
            }
        }
        let mut advanced = false;
        if let Some(settled) = page.settled.take() {
            sent = sent.split_off(&settled);
            sent.remove(&settled);
            advanced = cursor.as_ref().is_none_or(|cursor| settled > *cursor);
            cursor = Some(settled);
        }
        // A backlog is read on at once, as long as each read moves the
        // cursor on; otherwise the next poll.
        if !(page.more && advanced) {
            tokio::select! {
                _ = every.tick() => {}
                () = sender.closed() => return,
            }
        }
        if sender.is_closed() || !still_allowed() {
            return;
        }
        page = match feed.after(cursor.as_ref()).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "event stream: cannot read the audit log; trying again");
                Page::default()
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    /// An idle stream writes a `: keep-alive` comment every `keep_alive`,
    /// and an event as `event:`, `id:` and `data:` lines.
    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_sends_keep_alive_comments_between_events() {
        let (sender, receiver) = mpsc::channel(1);
        let response = respond(receiver, Duration::from_secs(1));
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut body = response.into_body().into_data_stream();
        let first = body.next().await.unwrap().unwrap();
        assert_eq!(&first[..], b": keep-alive\n\n");
        sender
            .send(SseEvent::default().event("created").id("7").data("{}"))
            .await
            .unwrap();
        let next = body.next().await.unwrap().unwrap();
        assert_eq!(&next[..], b"event: created\nid: 7\ndata: {}\n\n");
        let again = body.next().await.unwrap().unwrap();
        assert_eq!(&again[..], b": keep-alive\n\n");
        drop(sender);
        assert!(body.next().await.is_none(), "the stream ends with its sender");
    }
}
