//! Audit events in the store: the [`EventStore`] contract.
//!
//! Events used to be kept by each node for itself (a ring in memory and a
//! file in its data directory), so `/v1/events` answered differently on
//! every node. They now live where the sessions live: any node appends,
//! any node reads the same list.
//!
//! The written semantics are on [`EventStore`], where users of the crate
//! see them (this module is private).

use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event_id::EventId;
use crate::events::{Event, EventKind};
use crate::ids::{SessionId, Subject, Tenant};
use crate::store::{BoxError, StoreError};

/// An event as stored: its id and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Unique, time-ordered; the `before` cursor of the next page.
    pub id: EventId,
    /// What happened. Holds no token and no token hash.
    pub event: Event,
}

/// Which of a tenant's events a query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this subject's.
    pub subject: Option<Subject>,
    /// Only this session's.
    pub session_id: Option<SessionId>,
    /// Only events of this kind: one of [`EventKind::NAMES`], as
    /// [`EventKind::name`] gives it.
    pub kind: Option<&'static str>,
    /// Only events with an id below this one (older): the id of the last
    /// event of the previous page.
    pub before: Option<EventId>,
    /// At most this many.
    pub limit: usize,
}

impl EventFilter {
    /// True when `event` passes the subject, session and kind filters (the
    /// tenant, cursor and limit are the engine's to apply). Engines that
    /// filter in Rust call this, so the rule is written once.
    pub fn matches(&self, event: &Event) -> bool {
        self.subject.as_ref().is_none_or(|s| event.subject.as_ref() == Some(s))
            && self
                .session_id
                .as_ref()
                .is_none_or(|s| event.session_id.as_ref() == Some(s))
            && self.kind.is_none_or(|k| event.kind.name() == k)
    }
}

/// How much of a tenant's history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many of each tenant's newest events.
    pub max_events: usize,
    /// Remove events older than this instant (ids below
    /// [`EventId::first_at`] of it).
    pub older_than: OffsetDateTime,
}

/// The failure of an event-store operation. Never holds a token or hash
/// (events hold none).
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// The engine cannot be reached; try again later.
    #[error("event store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored event could not be decoded.
    #[error("stored event is corrupt")]
    Corrupt(#[source] BoxError),
    /// Any other engine failure.
    #[error("event store failed")]
    Backend(#[source] BoxError),
}

impl EventStoreError {
    /// True for [`EventStoreError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, EventStoreError::Unavailable(_))
    }
}

/// A session-store failure met by an event-store operation (the engines
/// share their connection and error handling), with its cause kept.
impl From<StoreError> for EventStoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => EventStoreError::Unavailable(source),
            StoreError::Corrupt(source) => EventStoreError::Corrupt(source),
            StoreError::Backend(source) => EventStoreError::Backend(source),
            other => EventStoreError::Backend(Box::new(other)),
        }
    }
}

impl EventKind {
    /// Every kind's [`EventKind::name`].
    pub const NAMES: [&'static str; 9] = [
        "created",
        "verify_failed",
        "touched",
        "rotated",
        "elevated",
        "data_updated",
        "revoked",
        "expired_purged",
        "anomaly",
    ];

    /// The kind name `text` is, as a `'static` string for an
    /// [`EventFilter`]; `None` when it names no kind.
    pub fn parse_name(text: &str) -> Option<&'static str> {
        Self::NAMES.into_iter().find(|name| *name == text)
    }
}

/// Where audit events live.
///
/// # Semantics
///
/// Checked by `sessiond_testkit::event_store_conformance!`:
///
/// * **Ids and order.** Every stored event has an [`EventId`], chosen by
///   the writer (see [`crate::EventIds`]): fixed-width text that begins
///   with a time in microseconds (when the write began: the event's own
///   time, or later for an event queued before its write), so ids compare
///   as text in time order on every engine. "Newest first" means by id, descending. The
///   store never makes or changes ids; it sorts by them.
/// * **Append** ([`EventStore::append_events`]) stores a batch, which may
///   mix tenants, in one atomic step: a reader sees all of it or none of
///   it. An event whose id is already stored is skipped (the stored one is
///   kept), so a batch retried after an ambiguous failure (a timeout after
///   the commit) is not stored twice. An empty batch does nothing.
/// * **Query** ([`EventStore::query_events`]) returns one tenant's events,
///   newest first: those passing [`EventFilter::matches`] with an id below
///   `before` (when given), at most `limit`. Nothing of another tenant is
///   ever returned. Paging by passing the last id of a page as the next
///   `before` walks every event once, without gaps or repeats, whatever
///   is appended meanwhile (new events have higher ids, so they are never
///   inside a walk that began before them).
/// * **Prune** ([`EventStore::prune_events`]) removes, for one tenant or
///   for every tenant, the events beyond its `max_events` newest and the
///   events older than `older_than`, and returns how many went. It is
///   idempotent, and several nodes may prune at once: each event goes
///   once, and the bound holds after every prune. Nothing else removes
///   events; pruning is the caller's (the store reads no clock).
/// * **Atomicity and durability** are those of the session methods: each
///   call is atomic across every handle and process; `Ok` means it
///   survives a crash.
/// * Events are stored as given; [`Event`] carries no token or token hash,
///   so neither can reach the store through this trait.
#[async_trait]
pub trait EventStore: Send + Sync + fmt::Debug + 'static {
    /// Stores `events`, all or none; ids already stored are skipped.
    async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError>;

    /// `tenant`'s events matching `filter`, newest first.
    async fn query_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError>;

    /// Removes `tenant`'s (or, for `None`, every tenant's) events beyond
    /// `retention`; returns how many it removed.
    async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Rejection;
    use crate::session::{Aal, RevokeReason};

    #[test]
    fn names_are_exactly_the_kinds_names() {
        let kinds = [
            EventKind::Created,
            EventKind::VerifyFailed(Rejection::Unknown),
            EventKind::Touched,
            EventKind::Rotated,
            EventKind::Elevated { aal: Aal::AAL2 },
            EventKind::DataUpdated,
            EventKind::Revoked(RevokeReason::Logout),
            EventKind::ExpiredPurged,
            EventKind::Anomaly(crate::events::AnomalyReason::TokenGuessing),
        ];
        assert_eq!(kinds.map(|k| k.name()), EventKind::NAMES);
        for name in EventKind::NAMES {
            assert_eq!(EventKind::parse_name(name), Some(name));
        }
        assert_eq!(EventKind::parse_name("Created"), None);
        assert_eq!(EventKind::parse_name(""), None);
    }
}
