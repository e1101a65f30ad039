//! A store in a temporary directory that lives exactly as long as the store.

use std::sync::Arc;

use sessiond_core::{
    Audit, ClientInfo, CounterKey, CounterRecord, CounterRule, CounterStore, CounterStoreError, EventFilter,
    EventStore, EventStoreError, IdPage, Inserted, KeyId, KeyRecord, KeyStore, KeyStoreError, Reserved, Retention,
    Revocation, SecretName, SecretStore, SecretStoreError, Session, SessionId, SessionStore, StoreError, StoredEvent,
    Subject, SubjectLimit, Tenant, TokenHash, UserRecord, UserStore, UserStoreError, async_trait,
};
use sessiond_store_embedded::{EmbeddedStore, Options};
use tempfile::TempDir;
use time::OffsetDateTime;

/// An [`EmbeddedStore`] in its own temporary directory, removed on drop
/// (after the store is closed: fields drop in order).
#[derive(Debug)]
pub struct TempStore {
    pub store: EmbeddedStore,
    pub _dir: TempDir,
}

impl TempStore {
    pub fn with(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
        Self { store, _dir: dir }
    }

    /// With the default read cache.
    pub fn shared() -> Arc<dyn SessionStore> {
        Arc::new(Self::with(Options::default()))
    }

    /// Every read goes to the database.
    pub fn uncached() -> Arc<dyn SessionStore> {
        Arc::new(Self::with(Options::default().cache_bytes(0)))
    }

    /// As a user store (default options).
    pub fn users() -> Arc<dyn UserStore> {
        Arc::new(Self::with(Options::default()))
    }

    /// As a secret store (default options).
    pub fn secrets() -> Arc<dyn SecretStore> {
        Arc::new(Self::with(Options::default()))
    }

    /// As a counter store (default options).
    pub fn counters() -> Arc<dyn CounterStore> {
        Arc::new(Self::with(Options::default()))
    }

    /// As a key store (default options).
    pub fn keys() -> Arc<dyn KeyStore> {
        Arc::new(Self::with(Options::default()))
    }

    /// As an event store (default options).
    pub fn events() -> Arc<dyn EventStore> {
        Arc::new(Self::with(Options::default()))
    }

    /// One store as the session store written to and the event store read.
    pub fn audit() -> (Arc<dyn SessionStore>, Arc<dyn EventStore>) {
        let store = Arc::new(Self::with(Options::default()));
        (
            Arc::clone(&store) as Arc<dyn SessionStore>,
            store as Arc<dyn EventStore>,
        )
    }

    /// A cache so small that it evicts all the time.
    pub fn tiny_cache() -> Arc<dyn SessionStore> {
        Arc::new(Self::with(Options::default().cache_bytes(2 * 1024)))
    }

    /// Only the packed level: every hit decodes stored bytes.
    pub fn packed_only() -> Arc<dyn SessionStore> {
        Arc::new(Self::with(
            Options::default().cache_bytes(0).packed_cache_bytes(16 << 20),
        ))
    }
}

#[async_trait]
impl SessionStore for TempStore {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        self.store.insert(session, limit, now, revocation, audit).await
    }
    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        self.store.get_by_token(hash).await
    }
    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        self.store.get_by_id(id).await
    }
    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        self.store.update(session, expected_version, audit).await
    }
    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        self.store.touch(id, last_seen_at, idle_expires_at, client).await
    }
    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        self.store.revoke(id, revocation, audit).await
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
        self.store
            .revoke_subject(tenant, subject, except, revocation, now, audit)
            .await
    }
    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.store.list_subject(tenant, subject, now).await
    }
    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        // Every conformance case that writes also purges or reads back; a
        // consistency check here covers the indexes after real sequences.
        let purged = self.store.purge_expired(now, limit, audit).await?;
        let report = self.store.check()?;
        assert!(report.is_consistent(), "{:?}", report.problems);
        Ok(purged)
    }
    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        self.store.scan_ids(cursor, limit).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

#[async_trait]
impl UserStore for TempStore {
    async fn get_user(&self, tenant: &Tenant, name: &Subject) -> Result<Option<UserRecord>, UserStoreError> {
        self.store.get_user(tenant, name).await
    }
    async fn insert_user(&self, user: &UserRecord) -> Result<(), UserStoreError> {
        self.store.insert_user(user).await
    }
    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> Result<(), UserStoreError> {
        self.store.update_user(user, expected_version).await
    }
    async fn list_users(&self, tenant: &Tenant) -> Result<Vec<UserRecord>, UserStoreError> {
        self.store.list_users(tenant).await
    }
    async fn delete_user(&self, tenant: &Tenant, name: &Subject) -> Result<bool, UserStoreError> {
        self.store.delete_user(tenant, name).await
    }
}

#[async_trait]
impl SecretStore for TempStore {
    async fn secret_value(&self, name: &SecretName) -> Result<Option<Vec<u8>>, SecretStoreError> {
        self.store.secret_value(name).await
    }
    async fn init_secret_value(&self, name: &SecretName, initial: &[u8]) -> Result<Vec<u8>, SecretStoreError> {
        self.store.init_secret_value(name, initial).await
    }
    async fn put_secret_value(&self, name: &SecretName, value: &[u8], expected: &[u8]) -> Result<(), SecretStoreError> {
        self.store.put_secret_value(name, value, expected).await
    }
}

#[async_trait]
impl CounterStore for TempStore {
    async fn reserve(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, CounterStoreError> {
        self.store.reserve(keys, now).await
    }
    async fn release(&self, keys: &[(CounterKey, CounterRule)], now: OffsetDateTime) -> Result<(), CounterStoreError> {
        self.store.release(keys, now).await
    }
    async fn clear(&self, key: &CounterKey) -> Result<(), CounterStoreError> {
        self.store.clear(key).await
    }
    async fn counter(&self, key: &CounterKey, now: OffsetDateTime) -> Result<Option<CounterRecord>, CounterStoreError> {
        self.store.counter(key, now).await
    }
}

#[async_trait]
impl KeyStore for TempStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyStoreError> {
        self.store.list_keys().await
    }
    async fn keys_version(&self) -> Result<u64, KeyStoreError> {
        self.store.keys_version().await
    }
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        self.store.insert_key(key).await
    }
    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, KeyStoreError> {
        self.store.insert_first_key(key).await
    }
    async fn delete_key(&self, id: &KeyId) -> Result<bool, KeyStoreError> {
        self.store.delete_key(id).await
    }
    async fn touch_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), KeyStoreError> {
        self.store.touch_key(id, at).await
    }
}

#[async_trait]
impl EventStore for TempStore {
    async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError> {
        self.store.append_events(events).await
    }
    async fn query_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError> {
        self.store.query_events(tenant, filter).await
    }
    async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError> {
        self.store.prune_events(tenant, retention).await
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        // Skip while unwinding: a second panic would abort the test binary.
        if !std::thread::panicking() {
            let report = self.store.check().unwrap();
            assert!(report.is_consistent(), "{:?}", report.problems);
        }
    }
}
