//! [`InstrumentedStore`]: a session store wrapper that records how long each
//! operation takes (`sessiond_store_operation_duration_seconds{op}`) and how
//! many fail (`sessiond_store_errors_total{op}`).

use std::sync::Arc;
use std::time::Instant;

use metrics::{Counter, Histogram};
use sessiond_core::{
    Audit, ClientInfo, IdPage, Inserted, Revocation, Session, SessionId, SessionStore, StoreError, Subject,
    SubjectLimit, Tenant, TokenHash, async_trait,
};
use time::OffsetDateTime;

/// The operations of [`SessionStore`], as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// [`SessionStore::insert`]
    Insert,
    /// [`SessionStore::get_by_token`]
    GetByToken,
    /// [`SessionStore::get_by_id`]
    GetById,
    /// [`SessionStore::update`]
    Update,
    /// [`SessionStore::touch`]
    Touch,
    /// [`SessionStore::revoke`]
    Revoke,
    /// [`SessionStore::revoke_subject`]
    RevokeSubject,
    /// [`SessionStore::list_subject`]
    ListSubject,
    /// [`SessionStore::purge_expired`]
    PurgeExpired,
    /// [`SessionStore::ping`]
    Ping,
}

impl StoreOp {
    /// Every operation, in declaration order.
    pub const ALL: [StoreOp; 10] = [
        StoreOp::Insert,
        StoreOp::GetByToken,
        StoreOp::GetById,
        StoreOp::Update,
        StoreOp::Touch,
        StoreOp::Revoke,
        StoreOp::RevokeSubject,
        StoreOp::ListSubject,
        StoreOp::PurgeExpired,
        StoreOp::Ping,
    ];

    /// The `op` label.
    pub fn label(self) -> &'static str {
        match self {
            StoreOp::Insert => "insert",
            StoreOp::GetByToken => "get_by_token",
            StoreOp::GetById => "get_by_id",
            StoreOp::Update => "update",
            StoreOp::Touch => "touch",
            StoreOp::Revoke => "revoke",
            StoreOp::RevokeSubject => "revoke_subject",
            StoreOp::ListSubject => "list_subject",
            StoreOp::PurgeExpired => "purge_expired",
            StoreOp::Ping => "ping",
        }
    }
}

/// Times every call to the wrapped store.
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: Arc<dyn SessionStore>,
    /// Handles registered once, in [`StoreOp::ALL`] order: looking a metric
    /// up by name and labels on every call costs more than the in-memory
    /// read it measures.
    handles: [(Histogram, Counter); 10],
}

impl InstrumentedStore {
    /// Wraps `inner`. Install the metrics recorder first: handles
    /// registered before it exists record into nothing.
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        let handles = StoreOp::ALL.map(|op| {
            (
                metrics::histogram!("sessiond_store_operation_duration_seconds", "op" => op.label()),
                metrics::counter!("sessiond_store_errors_total", "op" => op.label()),
            )
        });
        Self { inner, handles }
    }

    async fn timed<T>(&self, op: StoreOp, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        // `ALL` lists the variants in declaration order, so the discriminant
        // is the index.
        let (histogram, errors) = &self.handles[op as usize];
        histogram.record(started.elapsed().as_secs_f64());
        let expected_outcome = matches!(
            result,
            Ok(_)
                | Err(StoreError::Collision
                    | StoreError::VersionConflict { .. }
                    | StoreError::NotFound
                    | StoreError::LimitReached)
        );
        if !expected_outcome {
            errors.increment(1);
        }
        result
    }
}

#[async_trait]
impl SessionStore for InstrumentedStore {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        self.timed(
            StoreOp::Insert,
            self.inner.insert(session, limit, now, revocation, audit),
        )
        .await
    }
    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        self.timed(StoreOp::GetByToken, self.inner.get_by_token(hash)).await
    }
    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.timed(StoreOp::GetById, self.inner.get_by_id(id)).await
    }
    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        self.timed(StoreOp::Update, self.inner.update(session, expected_version, audit))
            .await
    }
    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        self.timed(
            StoreOp::Touch,
            self.inner.touch(id, last_seen_at, idle_expires_at, client),
        )
        .await
    }
    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        self.timed(StoreOp::Revoke, self.inner.revoke(id, revocation, audit))
            .await
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
        self.timed(
            StoreOp::RevokeSubject,
            self.inner
                .revoke_subject(tenant, subject, except, revocation, now, audit),
        )
        .await
    }
    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.timed(StoreOp::ListSubject, self.inner.list_subject(tenant, subject, now))
            .await
    }
    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        self.timed(StoreOp::PurgeExpired, self.inner.purge_expired(now, limit, audit))
            .await
    }
    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        // Maintenance, not request traffic: not timed.
        self.inner.scan_ids(cursor, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed(StoreOp::Ping, self.inner.ping()).await
    }

    fn shards(&self) -> Option<sessiond_core::Shards> {
        self.inner.shards()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_operation_at_its_discriminant() {
        for (index, op) in StoreOp::ALL.iter().enumerate() {
            assert_eq!(*op as usize, index, "{op:?}");
        }
    }
}
