//! The revocation feed: sessions revoked while access tokens for them may
//! still be unexpired, for verifiers that check tokens without a lookup.
//!
//! It is read from the audit log, not kept beside it: every revocation
//! (logout, admin, sign-out-everywhere, eviction, theft) stores its
//! `revoked` event in the same atomic write as the revocation itself (issue
//! 13), on whichever node made it. So the feed is complete on every node,
//! with nothing to keep in step, and an entry's cursor is its event id.
//!
//! An entry matters for one access-token lifetime after the revocation: a
//! token minted before it expires by then. The feed looks back that far
//! and no further.
//!
//! An event id is taken when a node starts its write and becomes visible
//! when the write commits, so a revocation can appear a moment after one
//! with a later id (another node's, or a slower commit). A cursor that
//! jumped to the newest id would skip it for good. So the cursor a page
//! hands out is *settled*: the last entry older than [`SETTLE`], before
//! which nothing can still appear. Entries newer than that come again in
//! the next page (a verifier's set of revoked sessions takes them twice
//! without harm), and the late one comes with them.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Clock, EventFilter, EventId, EventStoreError, StoredEvent, Tenant};
use sessiond_wire::RevocationView;

use crate::event_log::EventLog;

/// Events read per store query while walking back.
const PAGE: usize = 1000;

/// Most entries one answer holds; a client pages on with the cursor.
pub const MAX_ENTRIES: usize = 1000;

/// How long after its id's time a revocation may still become visible:
/// far above a commit's latency and the clock differences of nodes kept
/// by NTP.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Reads the feed for a tenant.
#[derive(Debug, Clone)]
pub struct Revocations {
    events: Arc<EventLog>,
    clock: Arc<dyn Clock>,
    horizon: Duration,
}

/// One answer: entries oldest first, each with the id of its `revoked`
/// event, and the settled cursor.
#[derive(Debug, Default)]
pub struct Page {
    /// The entries and their ids.
    pub entries: Vec<(EventId, RevocationView)>,
    /// The id of the last entry older than [`SETTLE`]: nothing at or
    /// before it can still appear. `None` when no entry is that old.
    pub settled: Option<EventId>,
}

impl Revocations {
    /// The feed over `events`, looking back `horizon` (the longest
    /// access-token lifetime).
    pub fn new(events: Arc<EventLog>, clock: Arc<dyn Clock>, horizon: Duration) -> Self {
        Self { events, clock, horizon }
    }

    /// The tenant's entries after `after` (all those still relevant when
    /// `None`), oldest first, at most [`MAX_ENTRIES`].
    ///
    /// The store answers newest first, so this walks back page by page to
    /// the cursor or the horizon, whichever is later. The walk is bounded
    /// by the revocations of one token lifetime, and by the log's own
    /// bounds (`events.max_events`).
    pub async fn after(&self, tenant: &Tenant, after: Option<&EventId>) -> Result<Page, EventStoreError> {
        let now = self.clock.now();
        let settled_before = EventId::first_at(now - SETTLE);
        let horizon = EventId::first_at(now - self.horizon);
        let floor = match after {
            Some(after) if *after > horizon => after.clone(),
            _ => horizon,
        };
        let mut newest_first: Vec<StoredEvent> = Vec::new();
        let mut before = None;
        loop {
            let filter = EventFilter {
                kind: Some("revoked"),
                before: before.clone(),
                limit: PAGE,
                ..EventFilter::default()
            };
            let page = self.events.query_written(tenant, &filter).await?;
            let full = page.len() == PAGE;
            let mut reached_floor = false;
            for event in page {
                if event.id <= floor {
                    reached_floor = true;
                    break;
                }
                before = Some(event.id.clone());
                newest_first.push(event);
            }
            if reached_floor || !full {
                break;
            }
        }
        let ttl = time::Duration::try_from(self.horizon).unwrap_or(time::Duration::HOUR);
        let entries: Vec<(EventId, RevocationView)> = newest_first
            .into_iter()
            .rev()
            .filter_map(|stored| {
                let session_id = stored.event.session_id.as_ref()?;
                let view = RevocationView {
                    session_id: session_id.to_string(),
                    tenant: tenant.as_str().to_owned(),
                    revoked_at: stored.event.at,
                    access_tokens_valid_until: stored.event.at + ttl,
                };
                Some((stored.id, view))
            })
            .take(MAX_ENTRIES)
            .collect();
        let settled = entries
            .iter()
            .map(|(id, _)| id)
            .rfind(|id| **id < settled_before)
            .cloned();
        Ok(Page { entries, settled })
    }

    /// Where a client that saw every entry up to `seen` (a streamed
    /// entry's id, which may not be settled) can safely resume: [`SETTLE`]
    /// before it.
    pub fn resume_from(seen: &EventId) -> EventId {
        EventId::first_at(seen.at() - SETTLE)
    }
}
