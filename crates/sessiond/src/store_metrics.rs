//! A store wrapper that records how long each operation takes
//! (`sessiond_store_operation_duration_seconds{op}`) and how many fail.

use std::sync::Arc;
use std::time::Instant;

use metrics::{Counter, Histogram};

use sessiond_core::{
    ClientInfo, Inserted, Revocation, Session, SessionId, SessionStore, StoreError, Subject, SubjectLimit, Tenant,
    TokenHash, async_trait,
};
use time::OffsetDateTime;

/// The operations of the store trait, as metric labels.
const OPS: [&str; 11] = [
    "insert",
    "get_by_token",
    "get_by_id",
    "update",
    "touch",
    "revoke",
    "revoke_subject",
    "list_subject",
    "count_subject",
    "purge_expired",
    "ping",
];

/// Times every call to the wrapped store.
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: Arc<dyn SessionStore>,
    /// Handles registered once: looking a metric up by name and labels on
    /// every call costs more than the in-memory read it measures.
    handles: Vec<(Histogram, Counter)>,
}

impl InstrumentedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        let handles = OPS
            .iter()
            .map(|&op| {
                (
                    metrics::histogram!("sessiond_store_operation_duration_seconds", "op" => op),
                    metrics::counter!("sessiond_store_errors_total", "op" => op),
                )
            })
            .collect();
        Self { inner, handles }
    }

    async fn timed<T>(&self, op: usize, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        if let Some((histogram, errors)) = self.handles.get(op) {
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
    ) -> Result<Inserted, StoreError> {
        self.timed(0, self.inner.insert(session, limit, now, revocation)).await
    }
    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        self.timed(1, self.inner.get_by_token(hash)).await
    }
    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.timed(2, self.inner.get_by_id(id)).await
    }
    async fn update(&self, session: &Session, expected_version: u64) -> Result<(), StoreError> {
        self.timed(3, self.inner.update(session, expected_version)).await
    }
    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        self.timed(4, self.inner.touch(id, last_seen_at, idle_expires_at, client))
            .await
    }
    async fn revoke(&self, id: &SessionId, revocation: Revocation) -> Result<Option<Session>, StoreError> {
        self.timed(5, self.inner.revoke(id, revocation)).await
    }
    async fn revoke_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        except: Option<&SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.timed(6, self.inner.revoke_subject(tenant, subject, except, revocation, now))
            .await
    }
    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.timed(7, self.inner.list_subject(tenant, subject, now)).await
    }
    async fn count_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.timed(8, self.inner.count_subject(tenant, subject, now)).await
    }
    async fn purge_expired(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Session>, StoreError> {
        self.timed(9, self.inner.purge_expired(now, limit)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.timed(10, self.inner.ping()).await
    }
}
