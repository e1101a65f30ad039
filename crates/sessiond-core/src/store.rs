//! The storage contract every backend implements.
//!
//! # Semantics
//!
//! These rules are what the conformance suite in `sessiond-testkit` checks;
//! every backend must pass it unchanged.
//!
//! * **Keys.** A record is found by its [`SessionId`] or by a [`TokenHash`]:
//!   its current `token_hash` and, while it is set, `previous_token.hash`.
//!   Both kinds of key are unique across the whole store (all tenants).
//! * **Validity is not the store's business.** Stores return records whatever
//!   their deadlines or revocation; the manager decides validity. A record
//!   whose `expires_at()` has passed *may* be absent (engines with native
//!   expiry drop it), but a record before its deadline must never be.
//! * **Time** is passed in (`now`); stores never read a clock.
//! * **Versions.** `version` is written by the manager. [`SessionStore::update`]
//!   writes only if the stored version equals `expected_version`, atomically.
//!   [`SessionStore::touch`] and [`SessionStore::revoke`] need no version.
//! * **Anonymous records** (subject [`Subject::anonymous`], a visitor
//!   before sign-in) are stored and found like any other but belong to no
//!   subject: never listed nor revoked by [`SessionStore::revoke_subject`],
//!   even when the anonymous subject itself is asked for. The manager
//!   inserts them with [`SubjectLimit::Unlimited`], so an engine need not
//!   index them by subject at all.
//! * **Live** means `revoked.is_none() && now < expires_at()`; only live
//!   records count towards a subject's limit and appear in subject listings.
//! * **Atomicity.** Each method is atomic with respect to every other call on
//!   any handle of the same store, across processes for shared engines.
//! * **Durability.** When a method returns `Ok`, the change survives a crash,
//!   except a `touch`, which may be lost (the session then expires earlier,
//!   never later).
//! * **Audit.** Each write that changes sessions takes an [`Audit`]: the
//!   events that record the change. The engine stores them (as
//!   [`crate::EventStore::append_events`] would) in the same atomic step as
//!   the change, and only if the change is made: a refused or no-op write
//!   stores none. Events of records the write picks itself (evicted,
//!   revoked by subject, purged) are made with [`crate::Picked::event`], in
//!   the order the method returns the records. An engine that is not also
//!   an [`crate::EventStore`] must be given [`Audit::NONE`].
//! * **Errors.** Outcomes the caller branches on are variants
//!   ([`StoreError::Collision`], [`StoreError::VersionConflict`],
//!   [`StoreError::NotFound`], [`StoreError::LimitReached`]); engine failures
//!   keep their cause and say whether the engine is unreachable.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::audit::Audit;
use crate::ids::{SessionId, Subject, Tenant};
use crate::session::{Revocation, Session};
use crate::shards::Shards;
use crate::token::TokenHash;

/// A boxed error from an engine, kept as the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How [`SessionStore::insert`] enforces the per-subject limit, atomically
/// with the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectLimit {
    /// No limit.
    Unlimited,
    /// Fail with [`StoreError::LimitReached`] when the subject already has
    /// this many live sessions.
    Deny(u32),
    /// Revoke the subject's live sessions with the oldest `created_at` (ties:
    /// smallest id) until fewer than this many remain, then insert.
    EvictOldest(u32),
}

/// The failure of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Insert refused: the id or a token hash is already present. Nothing was
    /// written.
    #[error("a session with this id or token hash already exists")]
    Collision,
    /// Compare-and-set refused: the stored version differs. Nothing was written.
    #[error("the session changed concurrently (stored version {current})")]
    VersionConflict {
        /// The version in the store.
        current: u64,
    },
    /// No record with this id.
    #[error("no such session")]
    NotFound,
    /// Insert refused by [`SubjectLimit::Deny`].
    #[error("the subject is at its session limit")]
    LimitReached,
    /// The engine cannot be reached; try again later.
    #[error("session store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be decoded.
    #[error("stored session record is corrupt")]
    Corrupt(#[source] BoxError),
    /// Any other engine failure.
    #[error("session store failed")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// True for [`StoreError::Unavailable`]: the caller should answer
    /// "service unavailable", never "valid".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The result of an insert.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inserted {
    /// Sessions revoked to make room ([`SubjectLimit::EvictOldest`]), as they
    /// are after revocation.
    pub evicted: Vec<Session>,
}

/// One page of a walk over every session id ([`SessionStore::scan_ids`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IdPage {
    /// Ids of this page.
    pub ids: Vec<SessionId>,
    /// The cursor of the next page; `None` when the walk is done.
    pub next: Option<String>,
}

/// A session store. Object-safe: hold it as `Arc<dyn SessionStore>`.
#[async_trait]
pub trait SessionStore: Send + Sync + Debug + 'static {
    /// Adds a new record after enforcing `limit` for its tenant and subject
    /// (counting live records at `now`).
    ///
    /// Fails with [`StoreError::Collision`] if the id or any of its token
    /// hashes exists, and never overwrites. Eviction and insert happen
    /// together or not at all; evicted records get `revocation` with their
    /// version incremented. Stores `audit`'s events, and a picked event per
    /// evicted record, with the insert.
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError>;

    /// The record whose current or previous token hash is `hash`.
    ///
    /// Reads return an `Arc` so a store that keeps records in memory can
    /// answer the hot path without copying one.
    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError>;

    /// The record with this id.
    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError>;

    /// Replaces the record with `session.id` if its stored version is
    /// `expected_version`, re-indexing token hashes and deadlines.
    /// [`StoreError::NotFound`] if absent, [`StoreError::VersionConflict`] if
    /// the version differs; a replacement whose new token hash belongs to
    /// another record is a [`StoreError::Collision`]. Stores `audit`'s
    /// events with the replacement.
    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError>;

    /// Records a use: sets `last_seen_at`, `idle_expires_at` and `client`,
    /// but only if the record exists, is not revoked, and `last_seen_at` is
    /// later than the stored one (touches never move time backwards). Does
    /// not change the version. Returns whether it wrote. May be lost in a crash.
    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &crate::session::ClientInfo,
    ) -> Result<bool, StoreError>;

    /// Marks a record revoked (incrementing its version) unless it already is.
    /// Returns the record as it is afterwards, `None` if there is no record or
    /// it was already revoked. The tombstone stays findable by token until
    /// purged. Stores `audit`'s events only when it revokes.
    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError>;

    /// Revokes every live session (at `now`) of the subject except `except`,
    /// atomically; returns the revoked records as they are afterwards. Stores
    /// a picked event per revoked record with them (and no other).
    async fn revoke_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        except: Option<&SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError>;

    /// The subject's live sessions at `now`, in no particular order.
    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError>;

    /// Deletes up to `limit` records whose `expires_at()` is at or before
    /// `now`, earliest deadline first, and returns them. The cost grows with
    /// what is removed, not with the size of the store. Stores a picked event
    /// for each removed record that was not revoked (numbered in the order
    /// of those records alone) with the removal (and no other).
    async fn purge_expired(&self, now: OffsetDateTime, limit: usize, audit: &Audit)
    -> Result<Vec<Session>, StoreError>;

    /// A page of a walk over every record's id, for maintenance
    /// (`sessiond store reseal`): up to `limit` ids from `cursor` (`None` to
    /// begin; then each page's [`IdPage::next`]). Every record present for
    /// the whole walk is returned at least once; one added or removed
    /// during it may be returned or not. A page may hold fewer than
    /// `limit` ids without the walk being done.
    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError>;

    /// Checks that the engine answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The shards this store keeps sessions in, when it needs a session's
    /// token hashes and id to fall in its subject's shard (see [`Shards`]:
    /// the layout that spreads one store over a Redis Cluster's slots);
    /// `None`, the default, takes any. A store that answers `Some` refuses
    /// a record whose keys fall elsewhere with [`StoreError::Backend`], so a
    /// wrapper must pass this on.
    fn shards(&self) -> Option<Shards> {
        None
    }
}
