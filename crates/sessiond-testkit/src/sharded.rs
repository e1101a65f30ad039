//! [`Sharded`]: any session store, held to the placement a sharded store
//! needs ([`sessiond_core::Shards`]), so the conformance suites, the
//! manager and the model test show that they place what they write without
//! a Redis Cluster at hand.
//!
//! A sharded engine (a Redis Cluster with one hash tag per shard) cannot
//! run a script over keys of two shards; this wrapper refuses the same
//! writes, every record whose id, token hashes and subject are not in one
//! shard, with [`StoreError::Backend`], and passes everything else on.

use std::sync::Arc;

use sessiond_core::{
    Audit, ClientInfo, IdPage, Inserted, Revocation, Session, SessionId, SessionStore, Shards, StoreError, Subject,
    SubjectLimit, Tenant, TokenHash, async_trait,
};
use time::OffsetDateTime;

/// A write that a sharded engine could not make: its keys span shards.
#[derive(Debug)]
pub struct Misplaced(pub SessionId);

impl std::fmt::Display for Misplaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the keys of session {} are not in one shard", self.0.as_str())
    }
}

impl std::error::Error for Misplaced {}

/// `inner`, answering [`SessionStore::shards`] with `shards` and refusing
/// misplaced records.
#[derive(Debug)]
pub struct Sharded {
    inner: Arc<dyn SessionStore>,
    shards: Shards,
}

impl Sharded {
    /// `inner` with `shards`.
    pub fn new(inner: Arc<dyn SessionStore>, shards: Shards) -> Self {
        Self { inner, shards }
    }

    /// `inner` with 64 shards, the most there can be (the strictest: a
    /// misplaced record is caught 63 times in 64).
    pub fn strictest(inner: Arc<dyn SessionStore>) -> Arc<dyn SessionStore> {
        let shards = Shards::new(Shards::MAX).expect("64 is a power of two");
        Arc::new(Self::new(inner, shards))
    }

    fn check(&self, session: &Session) -> Result<(), StoreError> {
        if self.shards.places(session) {
            Ok(())
        } else {
            Err(StoreError::Backend(Box::new(Misplaced(session.id.clone()))))
        }
    }
}

#[async_trait]
impl SessionStore for Sharded {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        self.check(session)?;
        self.inner.insert(session, limit, now, revocation, audit).await
    }

    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        self.inner.get_by_token(hash).await
    }

    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.inner.get_by_id(id).await
    }

    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        self.check(session)?;
        self.inner.update(session, expected_version, audit).await
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        self.inner.touch(id, last_seen_at, idle_expires_at, client).await
    }

    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        self.inner.revoke(id, revocation, audit).await
    }

    async fn revoke_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        except: Option<&SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner
            .revoke_subject(tenant, subject, except, revocation, now, audit)
            .await
    }

    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.list_subject(tenant, subject, now).await
    }

    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        self.inner.purge_expired(now, limit, audit).await
    }

    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        self.inner.scan_ids(cursor, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    fn shards(&self) -> Option<Shards> {
        Some(self.shards)
    }
}
