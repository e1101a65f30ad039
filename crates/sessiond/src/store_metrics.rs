//! A store wrapper that records how long each operation takes
//! (`sessiond_store_operation_duration_seconds{op}`) and how many fail.

use std::sync::Arc;
use std::time::Instant;

use sessiond_core::{
    ClientInfo, Inserted, Revocation, Session, SessionId, SessionStore, StoreError, Subject, SubjectLimit, Tenant,
    TokenHash, async_trait,
};
use time::OffsetDateTime;

/// Times every call to the wrapped store.
#[derive(Debug)]
pub struct InstrumentedStore {
    inner: Arc<dyn SessionStore>,
}

impl InstrumentedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionStore>) -> Self {
        Self { inner }
    }
}

async fn timed<T>(op: &'static str, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.await;
    metrics::histogram!("sessiond_store_operation_duration_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if let Err(error) = &result
        && !matches!(
            error,
            StoreError::Collision
                | StoreError::VersionConflict { .. }
                | StoreError::NotFound
                | StoreError::LimitReached
        )
    {
        metrics::counter!("sessiond_store_errors_total", "op" => op).increment(1);
    }
    result
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
        timed("insert", self.inner.insert(session, limit, now, revocation)).await
    }
    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        timed("get_by_token", self.inner.get_by_token(hash)).await
    }
    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        timed("get_by_id", self.inner.get_by_id(id)).await
    }
    async fn update(&self, session: &Session, expected_version: u64) -> Result<(), StoreError> {
        timed("update", self.inner.update(session, expected_version)).await
    }
    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        timed("touch", self.inner.touch(id, last_seen_at, idle_expires_at, client)).await
    }
    async fn revoke(&self, id: &SessionId, revocation: Revocation) -> Result<Option<Session>, StoreError> {
        timed("revoke", self.inner.revoke(id, revocation)).await
    }
    async fn revoke_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        except: Option<&SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        timed(
            "revoke_subject",
            self.inner.revoke_subject(tenant, subject, except, revocation, now),
        )
        .await
    }
    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        timed("list_subject", self.inner.list_subject(tenant, subject, now)).await
    }
    async fn count_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        timed("count_subject", self.inner.count_subject(tenant, subject, now)).await
    }
    async fn purge_expired(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Session>, StoreError> {
        timed("purge_expired", self.inner.purge_expired(now, limit)).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", self.inner.ping()).await
    }
}
