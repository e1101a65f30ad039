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
//! An event id is taken before its write commits, so the cursor a page
//! hands out is *settled* ([`crate::feed`]): entries younger than
//! [`SETTLE`] come again in the next page (a verifier's set of revoked
//! sessions takes them twice without harm), and one that committed late
//! comes with them.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Clock, EventId, EventStoreError, Tenant};
use sessiond_wire::RevocationView;

use crate::event_log::EventLog;
use crate::feed::{self, Page};

/// Most entries one answer holds; a client pages on with the cursor.
pub const MAX_ENTRIES: usize = feed::PAGE;

/// How long after its id's time a revocation may still become visible:
/// far above a commit's latency and the clock differences of nodes kept
/// by NTP. `revoked` events are written with their revocation, never
/// queued, so nothing else delays them.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Reads the feed for a tenant.
#[derive(Debug, Clone)]
pub struct Revocations {
    events: Arc<EventLog>,
    clock: Arc<dyn Clock>,
    horizon: Duration,
}

impl Revocations {
    /// The feed over `events`, looking back `horizon` (the longest
    /// access-token lifetime).
    pub fn new(events: Arc<EventLog>, clock: Arc<dyn Clock>, horizon: Duration) -> Self {
        Self { events, clock, horizon }
    }

    /// The tenant's entries after `after` (all those still relevant when
    /// `None`), oldest first, at most [`MAX_ENTRIES`], and the settled
    /// cursor ([`feed::read`]).
    pub async fn after(
        &self,
        tenant: &Tenant,
        after: Option<&EventId>,
    ) -> Result<Page<RevocationView>, EventStoreError> {
        let now = self.clock.now();
        let horizon = EventId::first_at(now - self.horizon);
        let floor = match after {
            Some(after) if *after > horizon => after.clone(),
            _ => horizon,
        };
        let page = feed::read(&self.events, tenant, Some("revoked"), &floor, now, SETTLE).await?;
        let ttl = time::Duration::try_from(self.horizon).unwrap_or(time::Duration::HOUR);
        Ok(page.filter_map(|stored| {
            let session_id = stored.event.session_id.as_ref()?;
            Some(RevocationView {
                session_id: session_id.to_string(),
                tenant: tenant.as_str().to_owned(),
                revoked_at: stored.event.at,
                access_tokens_valid_until: stored.event.at + ttl,
            })
        }))
    }

    /// Where a client that saw every entry up to `seen` (a streamed
    /// entry's id, which may not be settled) can safely resume: [`SETTLE`]
    /// before it.
    pub fn resume_from(seen: &EventId) -> EventId {
        feed::resume_from(seen, SETTLE)
    }
}
