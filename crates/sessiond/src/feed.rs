//! Reading the audit log forward, for the feeds that follow it: the
//! revocation feed ([`crate::revocations`]) and the event stream
//! (`GET /v1/events/stream`).
//!
//! The store answers newest first, below a `before` cursor; a feed wants
//! what came after its cursor, oldest first. [`read`] walks back from the
//! newest event to the cursor. When more than a [`PAGE`] came after it, it
//! looks at ever shorter spans of time after the cursor (halving, one query
//! each) until one holds at most a page, so a cursor far behind costs a few
//! queries per read, not a walk through everything since.
//!
//! # Settled cursors
//!
//! An event id is taken when a node starts its write and becomes visible
//! when the write commits, so an event can appear a moment after one with
//! a later id (another node's, or a slower commit). A cursor that jumped to
//! the newest id would skip it for good. So the cursor a read hands out is
//! *settled*: nothing at or before it can still appear, because it is
//! older than the feed's settle time. Events newer than that come again in
//! the next read (a follower skips the ids it has sent), and the late one
//! comes with them.

use std::time::Duration;

use sessiond_core::{EventFilter, EventId, EventStoreError, StoredEvent, Tenant};
use time::OffsetDateTime;

use crate::event_log::EventLog;

/// Most events one read returns, and one store query reads.
pub const PAGE: usize = 1000;

/// One read: entries oldest first, each with the id of its event, and the
/// settled cursor.
#[derive(Debug)]
pub struct Page<T> {
    /// The entries and their ids.
    pub entries: Vec<(EventId, T)>,
    /// Nothing at or before this position can still appear: read on from
    /// it. `None` when the read settled nothing new. It is usually the id
    /// of an entry, but may lie between events (after a read of a span
    /// with none), so it is a position, not necessarily an event's id.
    pub settled: Option<EventId>,
    /// More came after the entries than one read returns: read on at once.
    pub more: bool,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            settled: None,
            more: false,
        }
    }
}

impl Page<StoredEvent> {
    /// The same page with each event made into a feed's entry, or left out
    /// (`None`); the settled cursor stays where it was.
    pub fn filter_map<T>(self, mut view: impl FnMut(StoredEvent) -> Option<T>) -> Page<T> {
        Page {
            entries: self
                .entries
                .into_iter()
                .filter_map(|(id, stored)| view(stored).map(|entry| (id, entry)))
                .collect(),
            settled: self.settled,
            more: self.more,
        }
    }
}

/// Where a client that saw every entry up to `seen` (a streamed entry's
/// id, which may not be settled) can safely resume: `settle` before it.
pub fn resume_from(seen: &EventId, settle: Duration) -> EventId {
    EventId::first_at(seen.at() - settle)
}

/// The largest id any event before `at` can have.
fn last_before(at: OffsetDateTime) -> EventId {
    EventId::compose(at - time::Duration::MICROSECOND, u32::MAX, u32::MAX)
}

/// `tenant`'s events (of `kind`, when given) after `floor`, oldest first,
/// at most [`PAGE`], read at `now` for a feed whose events may appear up to
/// `settle` after their id's time. The entries are every event after
/// `floor` up to some point, without a gap; `more` says whether others
/// came after that point.
pub async fn read(
    events: &EventLog,
    tenant: &Tenant,
    kind: Option<&'static str>,
    floor: &EventId,
    now: OffsetDateTime,
    settle: Duration,
) -> Result<Page<StoredEvent>, EventStoreError> {
    let settled_before = EventId::first_at(now - settle);
    // Read below `upper` (everything, at first); while that holds more
    // than a page, halve the span after the floor.
    let mut upper: Option<EventId> = None;
    let mut span = now - floor.at();
    let newest_first = loop {
        // Within one microsecond of the floor there is nothing left to
        // halve: walk it all (one node's events of one microsecond, a
        // store write's block at most).
        let pages = if span <= time::Duration::MICROSECOND {
            usize::MAX
        } else {
            1
        };
        if let Some(found) = walk(events, tenant, kind, floor, upper.clone(), pages).await? {
            break found;
        }
        span /= 2;
        upper = Some(EventId::first_at(floor.at() + span.max(time::Duration::MICROSECOND)));
    };
    let truncated = newest_first.len() > PAGE;
    let entries: Vec<(EventId, StoredEvent)> = newest_first
        .into_iter()
        .rev()
        .take(PAGE)
        .map(|stored| (stored.id.clone(), stored))
        .collect();
    let last_settled_entry = || {
        entries
            .iter()
            .map(|(id, _)| id)
            .rfind(|id| **id < settled_before)
            .cloned()
    };
    let settled = match &upper {
        // Every event below `upper` was read, and all of them are settled.
        Some(upper) if !truncated && *upper <= settled_before => Some(last_before(upper.at())),
        _ => last_settled_entry(),
    };
    Ok(Page {
        entries,
        settled,
        more: upper.is_some() || truncated,
    })
}

/// Events after `floor` below `before`, newest first, reading at most
/// `pages` pages: `None` when those did not reach the floor.
async fn walk(
    events: &EventLog,
    tenant: &Tenant,
    kind: Option<&'static str>,
    floor: &EventId,
    mut before: Option<EventId>,
    pages: usize,
) -> Result<Option<Vec<StoredEvent>>, EventStoreError> {
    let mut found = Vec::new();
    for _ in 0..pages {
        let filter = EventFilter {
            kind,
            before: before.clone(),
            limit: PAGE,
            ..EventFilter::default()
        };
        // Without waiting for this node's queue: a feed polls, and what is
        // queued now is written (and read) a moment later.
        let page = events.query_written(tenant, &filter).await?;
        let full = page.len() == PAGE;
        for event in page {
            if event.id <= *floor {
                return Ok(Some(found));
            }
            before = Some(event.id.clone());
            found.push(event);
        }
        if !full {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use sessiond_core::{Clock, Event, EventKind, EventSink, MemoryStore};
    use sessiond_testkit::FakeClock;

    use super::*;
    use crate::event_log::Bounds;

    const SETTLE: Duration = Duration::from_secs(1);

    /// 2,500 events over ten seconds, and a reader far behind: it reads
    /// them all, once each and in order, a page at most per read, and its
    /// cursor never passes one it has not read.
    #[tokio::test]
    async fn a_reader_far_behind_reads_every_event_once_in_order() {
        let clock = FakeClock::default();
        let bounds = Bounds {
            max_events: 10_000,
            retention: Duration::from_secs(3600),
        };
        let log = EventLog::start(Arc::new(MemoryStore::new()), bounds, Arc::new(clock.clone())).unwrap();
        let tenant = Tenant::new("shop").unwrap();
        let start = clock.now();
        for i in 0..2_500u64 {
            log.emit(Event {
                at: start + Duration::from_millis(4 * i),
                kind: EventKind::Created,
                tenant: tenant.clone(),
                session_id: None,
                subject: None,
                client: None,
                count: 1,
            });
        }
        log.flush().await;
        clock.advance(Duration::from_secs(60));
        let now = clock.now();
        let mut cursor = EventId::first_at(start - Duration::from_secs(1));
        let mut read_ids = Vec::new();
        for _ in 0..100 {
            let page = read(&log, &tenant, None, &cursor, now, SETTLE).await.unwrap();
            assert!(page.entries.len() <= PAGE);
            for (id, stored) in &page.entries {
                assert!(*id > cursor);
                assert_eq!(*id, stored.id);
            }
            read_ids.extend(page.entries.iter().map(|(id, _)| id.clone()));
            let more = page.more;
            cursor = page.settled.expect("everything is a minute old: settled");
            if !more {
                break;
            }
        }
        assert_eq!(read_ids.len(), 2_500);
        assert!(read_ids.windows(2).all(|w| w[0] < w[1]), "oldest first, no repeat");
        let page = read(&log, &tenant, None, &cursor, now, SETTLE).await.unwrap();
        assert!(page.entries.is_empty() && !page.more);
    }

    /// Entries younger than the settle time are read but not settled: the
    /// next read has them again.
    #[tokio::test]
    async fn young_entries_are_not_settled() {
        let clock = FakeClock::default();
        let bounds = Bounds {
            max_events: 100,
            retention: Duration::from_secs(3600),
        };
        let log = EventLog::start(Arc::new(MemoryStore::new()), bounds, Arc::new(clock.clone())).unwrap();
        let tenant = Tenant::new("shop").unwrap();
        let floor = EventId::first_at(clock.now() - Duration::from_secs(10));
        // Written five seconds apart (a queued event's id is its write's).
        for wait in [0u64, 5] {
            clock.advance(Duration::from_secs(wait));
            log.emit(Event {
                at: clock.now(),
                kind: EventKind::Touched,
                tenant: tenant.clone(),
                session_id: None,
                subject: None,
                client: None,
                count: 1,
            });
            log.flush().await;
        }
        let page = read(&log, &tenant, None, &floor, clock.now(), SETTLE).await.unwrap();
        let ids: BTreeSet<&EventId> = page.entries.iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), 2);
        let settled = page.settled.unwrap();
        assert_eq!(Some(&settled), ids.first().copied(), "the older one only");
        let again = read(&log, &tenant, None, &settled, clock.now(), SETTLE).await.unwrap();
        assert_eq!(again.entries.len(), 1);
        assert_eq!(again.settled, None);
    }
}
