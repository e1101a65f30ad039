//! Following sessiond's revocation feed in a background task.
//!
//! The task first polls `GET {base}/v1/revocations` (JSON, every entry still
//! relevant, and a cursor), then holds the same route open as a
//! `text/event-stream`, resuming from the cursor with `Last-Event-ID` (or
//! `?after=` when the cursor cannot be a header value). Each `revoked` event
//! goes into the [`RevocationSet`] as soon as its bytes arrive, so a
//! revocation is known well within sessiond's one-second promise while the
//! stream is up.
//!
//! When the stream fails (refused, not an event stream, broken, or silent for
//! [`IDLE_TIMEOUT`] although sessiond sends a keep-alive every 15 s), the task
//! polls the JSON route every [`POLL_INTERVAL`] until the next stream attempt,
//! which backs off from 0.5 s to 30 s while attempts keep failing and resets
//! once a stream has stayed up for a minute. The entries held are pruned as
//! their deadlines pass, on every batch and every keep-alive.
//!
//! The task owns no part of the verifier but the shared set: dropping the
//! last [`Verifier`](crate::Verifier) clone aborts it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use tokio::time::{sleep, timeout};

use crate::http::{ApiKey, REQUEST_TIMEOUT, ReadError, read_limited};
use crate::revocations::{RevocationSet, Revoked};
use crate::sse::{Item, Parser, TooLong};
use crate::verifier::unix_now;

/// How often the JSON route is polled while the stream is down.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// A stream silent this long is dropped (sessiond sends a keep-alive every 15 s).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A stream up this long resets the backoff.
const STABLE: Duration = Duration::from_secs(60);
/// Largest JSON page read: about a million entries.
const MAX_PAGE_LEN: usize = 256 << 20;
/// Pages fetched back to back while they keep bringing entries.
const MAX_PAGES_IN_A_ROW: usize = 100;

/// Why a stream or poll ended.
#[derive(Debug, thiserror::Error)]
enum FeedError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("answered something other than an event stream")]
    NotAStream,
    #[error("timed out")]
    Timeout,
    #[error("an event or line exceeded the size limit")]
    TooLong,
    #[error("page too large")]
    TooLarge,
    #[error("page is not a revocation list: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<TooLong> for FeedError {
    fn from(_: TooLong) -> Self {
        FeedError::TooLong
    }
}

impl From<ReadError> for FeedError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Http(e) => FeedError::Http(e),
            ReadError::TooLarge => FeedError::TooLarge,
        }
    }
}

/// One entry of a page: a bad entry is skipped, not the whole page.
#[derive(Deserialize)]
#[serde(untagged)]
enum PageEntry {
    Good(Revoked),
    Bad(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Page {
    revoked: Vec<PageEntry>,
    cursor: Option<String>,
}

/// The background task's state.
#[derive(Debug)]
pub(crate) struct Follower {
    client: Client,
    /// `{base}/v1/revocations`.
    url: Url,
    key: ApiKey,
    set: Arc<RwLock<RevocationSet>>,
    /// Set once a poll has answered: from then on the set is complete.
    synced: Arc<AtomicBool>,
    cursor: Option<String>,
    poll_failures: u64,
}

impl Follower {
    pub(crate) fn new(
        client: Client,
        url: Url,
        key: ApiKey,
        set: Arc<RwLock<RevocationSet>>,
        synced: Arc<AtomicBool>,
    ) -> Self {
        Follower {
            client,
            url,
            key,
            set,
            synced,
            cursor: None,
            poll_failures: 0,
        }
    }

    /// Runs until aborted.
    pub(crate) async fn run(mut self) {
        let mut backoff = BACKOFF_START;
        loop {
            // Catch up (or, at first, load everything) before streaming.
            self.poll_pages().await;
            let started = Instant::now();
            match self.stream().await {
                Ok(()) => tracing::debug!("revocation stream ended"),
                Err(error) => tracing::warn!(%error, "revocation stream failed; polling"),
            }
            if started.elapsed() >= STABLE {
                backoff = BACKOFF_START;
            }
            let retry_at = Instant::now() + backoff;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            loop {
                self.poll_pages().await;
                let now = Instant::now();
                if now >= retry_at {
                    break;
                }
                sleep(POLL_INTERVAL.min(retry_at - now)).await;
            }
        }
    }

    /// Polls until a page brings nothing new; logs failures.
    async fn poll_pages(&mut self) {
        for _ in 0..MAX_PAGES_IN_A_ROW {
            match self.poll().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    self.poll_failures += 1;
                    // Every poll is logged at debug; the first of a run, and
                    // then about once a minute, at warn.
                    if self.poll_failures % 120 == 1 {
                        tracing::warn!(%error, failures = self.poll_failures, "revocation poll failed");
                    } else {
                        tracing::debug!(%error, "revocation poll failed");
                    }
                    return;
                }
            }
            self.poll_failures = 0;
            self.synced.store(true, Ordering::Release);
            return;
        }
    }

    /// One JSON poll. `Ok(true)`: it brought entries and moved the cursor,
    /// so there may be more.
    async fn poll(&mut self) -> Result<bool, FeedError> {
        let mut url = self.url.clone();
        if let Some(cursor) = &self.cursor {
            url.query_pairs_mut().append_pair("after", cursor);
        }
        let request = self
            .client
            .get(url)
            .header(ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT);
        let mut response = self.key.attach(request).send().await?;
        if response.status() != StatusCode::OK {
            return Err(FeedError::Status(response.status()));
        }
        let body = read_limited(&mut response, MAX_PAGE_LEN).await?;
        let page: Page = serde_json::from_slice(&body)?;
        let mut entries = Vec::with_capacity(page.revoked.len());
        for entry in page.revoked {
            match entry {
                PageEntry::Good(entry) => entries.push(entry),
                PageEntry::Bad(_) => tracing::warn!("revocation entry skipped: not of the expected shape"),
            }
        }
        let brought = !entries.is_empty();
        self.apply(&entries);
        let moved = page.cursor.is_some() && page.cursor != self.cursor;
        if page.cursor.is_some() {
            self.cursor = page.cursor;
        }
        Ok(brought && moved)
    }

    /// Holds the event stream open; returns when it ends or fails.
    async fn stream(&mut self) -> Result<(), FeedError> {
        let mut url = self.url.clone();
        let mut request = self.client.get(url.clone());
        if let Some(cursor) = &self.cursor {
            match HeaderValue::from_str(cursor) {
                Ok(value) => request = request.header("last-event-id", value),
                Err(_) => {
                    url.query_pairs_mut().append_pair("after", cursor);
                    request = self.client.get(url);
                }
            }
        }
        let request = request
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        let mut response = timeout(REQUEST_TIMEOUT, self.key.attach(request).send())
            .await
            .map_err(|_| FeedError::Timeout)??;
        if response.status() != StatusCode::OK {
            return Err(FeedError::Status(response.status()));
        }
        let is_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
        if !is_stream {
            return Err(FeedError::NotAStream);
        }
        tracing::debug!("revocation stream open");
        let mut parser = Parser::default();
        let mut items = Vec::new();
        loop {
            let chunk = timeout(IDLE_TIMEOUT, response.chunk())
                .await
                .map_err(|_| FeedError::Timeout)??;
            let Some(chunk) = chunk else {
                return Ok(());
            };
            parser.feed(&chunk, &mut items)?;
            let mut entries = Vec::new();
            for item in items.drain(..) {
                let Item::Event(event) = item else { continue };
                if event.event == "revoked" {
                    match serde_json::from_str::<Revoked>(&event.data) {
                        Ok(entry) => entries.push(entry),
                        Err(error) => tracing::warn!(%error, "revocation event skipped: not of the expected shape"),
                    }
                }
                if let Some(id) = event.id.filter(|id| !id.is_empty()) {
                    self.cursor = Some(id);
                }
            }
            self.apply(&entries);
        }
    }

    /// Records entries and prunes.
    fn apply(&self, entries: &[Revoked]) {
        let now = unix_now();
        let mut set = self.set.write().unwrap_or_else(PoisonError::into_inner);
        for entry in entries {
            set.insert(entry, now);
        }
        set.prune(now);
        if !entries.is_empty() {
            tracing::debug!(new = entries.len(), held = set.len(), "revocations recorded");
        }
    }
}
