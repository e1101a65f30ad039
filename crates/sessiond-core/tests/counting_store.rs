//! A store wrapper that counts writes, to prove which calls are read-only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sessiond_core::{
    Audit, ClientInfo, IdPage, Inserted, MemoryStore, Revocation, Session, SessionId, SessionStore, StoreError,
    Subject, SubjectLimit, Tenant, TokenHash, async_trait,
};
use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    pub writes: AtomicUsize,
    pub reads: AtomicUsize,
}

impl CountingStore {
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn insert(
        &self,
        s: &Session,
        l: SubjectLimit,
        now: OffsetDateTime,
        r: Revocation,
        a: &Audit,
    ) -> Result<Inserted, StoreError> {
        self.wrote();
        self.inner.insert(s, l, now, r, a).await
    }
    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        self.read();
        self.inner.get_by_token(hash).await
    }
    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.read();
        self.inner.get_by_id(id).await
    }
    async fn update(&self, s: &Session, v: u64, a: &Audit) -> Result<(), StoreError> {
        self.wrote();
        self.inner.update(s, v, a).await
    }
    async fn touch(
        &self,
        id: &SessionId,
        at: OffsetDateTime,
        idle: OffsetDateTime,
        c: &ClientInfo,
    ) -> Result<bool, StoreError> {
        self.wrote();
        self.inner.touch(id, at, idle, c).await
    }
    async fn revoke(&self, id: &SessionId, r: Revocation, a: &Audit) -> Result<Option<Session>, StoreError> {
        self.wrote();
        self.inner.revoke(id, r, a).await
    }
    async fn revoke_subject(
        &self,
        t: &Tenant,
        s: &Subject,
        e: Option<&SessionId>,
        r: Revocation,
        now: OffsetDateTime,
        a: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        self.wrote();
        self.inner.revoke_subject(t, s, e, r, now, a).await
    }
    async fn list_subject(&self, t: &Tenant, s: &Subject, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        self.read();
        self.inner.list_subject(t, s, now).await
    }
    async fn purge_expired(&self, now: OffsetDateTime, limit: usize, a: &Audit) -> Result<Vec<Session>, StoreError> {
        self.wrote();
        self.inner.purge_expired(now, limit, a).await
    }
    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        self.inner.scan_ids(cursor, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// A store that is always down, to check that failures fail closed.
#[derive(Debug, Default)]
pub struct DownStore;

fn down<T>() -> Result<T, StoreError> {
    Err(StoreError::Unavailable("connection refused".into()))
}

#[async_trait]
impl SessionStore for DownStore {
    async fn insert(
        &self,
        _: &Session,
        _: SubjectLimit,
        _: OffsetDateTime,
        _: Revocation,
        _: &Audit,
    ) -> Result<Inserted, StoreError> {
        down()
    }
    async fn get_by_token(&self, _: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        down()
    }
    async fn get_by_id(&self, _: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        down()
    }
    async fn update(&self, _: &Session, _: u64, _: &Audit) -> Result<(), StoreError> {
        down()
    }
    async fn touch(
        &self,
        _: &SessionId,
        _: OffsetDateTime,
        _: OffsetDateTime,
        _: &ClientInfo,
    ) -> Result<bool, StoreError> {
        down()
    }
    async fn revoke(&self, _: &SessionId, _: Revocation, _: &Audit) -> Result<Option<Session>, StoreError> {
        down()
    }
    async fn revoke_subject(
        &self,
        _: &Tenant,
        _: &Subject,
        _: Option<&SessionId>,
        _: Revocation,
        _: OffsetDateTime,
        _: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        down()
    }
    async fn list_subject(&self, _: &Tenant, _: &Subject, _: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        down()
    }
    async fn purge_expired(&self, _: OffsetDateTime, _: usize, _: &Audit) -> Result<Vec<Session>, StoreError> {
        down()
    }
    async fn scan_ids(&self, _: Option<&str>, _: usize) -> Result<IdPage, StoreError> {
        down()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        down()
    }
}

pub fn counting() -> Arc<CountingStore> {
    Arc::new(CountingStore::default())
}
