//! A node's view of the API keys in the store: the check on every request
//! never reads the store.
//!
//! The ring holds every key by the hash of the key, and polls the store's
//! key version every [`POLL_EVERY`]; when it changed (a key was made or
//! deleted on any node) the ring lists the keys again. So a key deleted
//! through one node stops working on every node within a poll and a store
//! round trip, well inside the second the API promises. If the store cannot
//! be reached the ring keeps the keys it has: an outage of the store must
//! not lock every backend out of the nodes that still run.
//!
//! A use is recorded in memory (one atomic store per request, and only when
//! the second changed) and written to the store by the same task at most
//! every [`FLUSH_USES_EVERY`], so `last_used_at` costs the hot path no
//! store write either.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sessiond_core::{Clock, KeyId, KeyRecord, KeyRole, KeyStore, KeyStoreError, Tenant};
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use crate::keys::{KEY_PREFIX, hash_hex};

/// How often the ring asks the store whether keys changed.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How often recorded uses are written to the store.
pub const FLUSH_USES_EVERY: Duration = Duration::from_secs(60);

/// Who presented a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    /// The key's id.
    pub id: KeyId,
    /// The tenant it acts in.
    pub tenant: Tenant,
    /// What it may do.
    pub role: KeyRole,
}

/// One active key, as the ring holds it.
#[derive(Debug)]
struct Entry {
    holder: KeyHolder,
    expires_at: Option<OffsetDateTime>,
    /// Unix second of the latest use seen here, and of the latest written.
    used_at: AtomicI64,
    flushed_at: AtomicI64,
}

#[derive(Debug, Default)]
struct RingState {
    version: u64,
    by_hash: HashMap<String, Arc<Entry>>,
    /// Keys already found in `by_hash`, by a keyed (per-process random)
    /// hash of the key: a presented key found here skips the SHA-256. Only
    /// active keys get in, and a reload starts it empty, so a deleted key
    /// drops out with the state that held it. The match is confirmed with a
    /// constant-time comparison of the whole key. In memory only.
    ///
    /// Why: `scripts/load` (embedded store, 64 connections, 8 interleaved
    /// rounds in two runs, 2026-11-29) measured verify with a SHA-256 and a
    /// map lookup per request instead at a median of 26,816 req/s against
    /// 29,518 (−9.2 %), and 42 µs of server CPU per request against 37–41.
    verified: HashMap<u64, (Box<[u8]>, Arc<Entry>)>,
}

/// The keys of the store, held in memory and kept fresh.
#[derive(Debug)]
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    state: RwLock<RingState>,
    /// Keys the index of [`RingState::verified`].
    index: RandomState,
}

impl KeyRing {
    /// Loads the store's keys.
    pub async fn load(store: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Result<Arc<Self>, KeyStoreError> {
        let ring = Arc::new(Self {
            store,
            clock,
            state: RwLock::new(RingState::default()),
            index: RandomState::new(),
        });
        ring.reload().await?;
        Ok(ring)
    }

    /// The store behind the ring.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// The clock keys expire by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Number of keys held (expired ones included).
    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.by_hash.len()).unwrap_or(0)
    }

    /// True when the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lists the keys again, now, whatever the version says.
    pub async fn reload(&self) -> Result<(), KeyStoreError> {
        // The version first: a change between the two reads is then seen
        // again at the next poll, never missed.
        let version = self.store.keys_version().await?;
        let keys = self.store.list_keys().await?;
        self.replace(version, keys);
        Ok(())
    }

    /// Lists the keys again if the store's version moved; true if it did.
    pub async fn refresh(&self) -> Result<bool, KeyStoreError> {
        let version = self.store.keys_version().await?;
        let held = self.state.read().map(|s| s.version).unwrap_or(u64::MAX);
        if version == held {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    fn replace(&self, version: u64, keys: Vec<KeyRecord>) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let by_hash = keys
            .into_iter()
            .map(|key| {
                // Uses seen here but not yet written survive the reload.
                let (used, flushed) = state
                    .by_hash
                    .get(&key.sha256)
                    .filter(|old| old.holder.id == key.id)
                    .map_or((0, 0), |old| {
                        (
                            old.used_at.load(Ordering::Relaxed),
                            old.flushed_at.load(Ordering::Relaxed),
                        )
                    });
                let entry = Entry {
                    holder: KeyHolder {
                        id: key.id,
                        tenant: key.tenant,
                        role: key.role,
                    },
                    expires_at: key.expires_at,
                    used_at: AtomicI64::new(used),
                    flushed_at: AtomicI64::new(flushed),
                };
                (key.sha256, Arc::new(entry))
            })
            .collect();
        *state = RingState {
            version,
            by_hash,
            verified: HashMap::new(),
        };
    }

    /// Writes the uses seen since the last flush to the store.
    pub async fn flush_uses(&self) {
        let pending: Vec<(KeyId, i64, Arc<Entry>)> = match self.state.read() {
            Ok(state) => state
                .by_hash
                .values()
                .filter_map(|entry| {
                    let used = entry.used_at.load(Ordering::Relaxed);
                    (used > entry.flushed_at.load(Ordering::Relaxed))
                        .then(|| (entry.holder.id.clone(), used, Arc::clone(entry)))
                })
                .collect(),
            Err(_) => return,
        };
        for (id, used, entry) in pending {
            let Ok(at) = OffsetDateTime::from_unix_timestamp(used) else {
                continue;
            };
            match self.store.touch_key(&id, at).await {
                Ok(()) => entry.flushed_at.store(used, Ordering::Relaxed),
                Err(error) => tracing::warn!(%error, key = %id, "could not record an API key's last use"),
            }
        }
    }

    /// Polls for changes every [`POLL_EVERY`] and flushes uses every
    /// [`FLUSH_USES_EVERY`], until the ring is dropped.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let ring = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(POLL_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_flush = tokio::time::Instant::now();
            let mut failing = false;
            loop {
                every.tick().await;
                let Some(ring) = ring.upgrade() else { break };
                match ring.refresh().await {
                    Ok(_) if failing => {
                        tracing::info!("API keys are read from the store again");
                        failing = false;
                    }
                    Ok(_) => {}
                    // Keep serving with the keys we had; say so once per outage.
                    Err(error) if !failing => {
                        tracing::error!(%error, "cannot read API keys from the store; keeping the ones held");
                        failing = true;
                    }
                    Err(_) => {}
                }
                if last_flush.elapsed() >= FLUSH_USES_EVERY {
                    ring.flush_uses().await;
                    last_flush = tokio::time::Instant::now();
                }
            }
        })
    }

    fn lookup(&self, hash: &str) -> Option<Arc<Entry>> {
        self.state.read().ok()?.by_hash.get(hash).cloned()
    }

    /// The entry of a key seen before, without hashing it again.
    fn lookup_verified(&self, index: u64, presented: &str) -> Option<Arc<Entry>> {
        let state = self.state.read().ok()?;
        let (key, entry) = state.verified.get(&index)?;
        bool::from(key.as_ref().ct_eq(presented.as_bytes())).then(|| Arc::clone(entry))
    }

    /// Remembers a held key, if the state that holds it is still current.
    fn remember(&self, index: u64, presented: &str, hash: &str, entry: &Arc<Entry>) {
        let Ok(mut state) = self.state.write() else {
            return;
        };
        let current = state.by_hash.get(hash).is_some_and(|e| Arc::ptr_eq(e, entry));
        if current && !state.verified.contains_key(&index) {
            state
                .verified
                .insert(index, (presented.as_bytes().into(), Arc::clone(entry)));
        }
    }

    /// Who holds `presented`, if it is a key of the store that has not
    /// expired.
    pub fn authenticate(&self, presented: &str) -> Option<KeyHolder> {
        if !presented.starts_with(KEY_PREFIX) || presented.len() > 128 {
            return None;
        }
        let index = self.index.hash_one(presented);
        let entry = match self.lookup_verified(index, presented) {
            Some(entry) => entry,
            None => {
                let hash = hash_hex(presented);
                let entry = self.lookup(&hash)?;
                self.remember(index, presented, &hash, &entry);
                entry
            }
        };
        let now = self.clock.now();
        if entry.expires_at.is_some_and(|at| now >= at) {
            return None;
        }
        let second = now.unix_timestamp();
        // A load and, once a second, a store: no write to a shared line per request.
        if entry.used_at.load(Ordering::Relaxed) < second {
            entry.used_at.store(second, Ordering::Relaxed);
        }
        Some(entry.holder.clone())
    }
}

#[cfg(test)]
mod tests {
    use sessiond_core::MemoryStore;
    use sessiond_testkit::FakeClock;

    use super::*;
    use crate::keys::{KeySpec, create};

    fn spec(expires_at: Option<OffsetDateTime>) -> KeySpec {
        KeySpec {
            tenant: Tenant::new("acme").unwrap(),
            role: KeyRole::Admin,
            name: String::new(),
            expires_at,
        }
    }

    #[tokio::test]
    async fn a_key_works_until_deleted_and_the_ring_refreshes() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(FakeClock::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
        ));
        let ring = KeyRing::load(store.clone(), clock.clone()).await.unwrap();
        let (record, key) = create(store.as_ref(), spec(None), clock.now()).await.unwrap();
        // Not before the ring looks again: the request path never reads the store.
        assert_eq!(ring.authenticate(&key), None);
        assert!(ring.refresh().await.unwrap());
        assert!(!ring.refresh().await.unwrap(), "nothing changed");
        let holder = ring.authenticate(&key).unwrap();
        assert_eq!((holder.id, holder.role), (record.id.clone(), KeyRole::Admin));
        // The second time from the memory of verified keys.
        assert!(ring.authenticate(&key).is_some());
        let mut near = key.clone();
        near.pop();
        near.push(if key.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(ring.authenticate(&near), None);
        assert_eq!(ring.authenticate("sdk_wrong"), None);
        assert_eq!(ring.authenticate(""), None);
        assert!(store.delete_key(&record.id).await.unwrap());
        assert!(ring.refresh().await.unwrap());
        assert_eq!(ring.authenticate(&key), None);
    }

    #[tokio::test]
    async fn an_expired_key_stops_working_at_its_instant() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(FakeClock::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
        ));
        let expires = clock.now() + time::Duration::minutes(5);
        let (_, key) = create(store.as_ref(), spec(Some(expires)), clock.now()).await.unwrap();
        let ring = KeyRing::load(store.clone(), clock.clone()).await.unwrap();
        assert!(ring.authenticate(&key).is_some());
        clock.advance(Duration::from_secs(299));
        assert!(ring.authenticate(&key).is_some());
        clock.advance(Duration::from_secs(1));
        assert_eq!(ring.authenticate(&key), None);
    }

    #[tokio::test]
    async fn uses_reach_the_store_at_the_flush_and_survive_a_reload() {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(FakeClock::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
        ));
        let (record, key) = create(store.as_ref(), spec(None), clock.now()).await.unwrap();
        let ring = KeyRing::load(store.clone(), clock.clone()).await.unwrap();
        clock.advance(Duration::from_secs(10));
        let used = clock.now().unix_timestamp();
        assert!(ring.authenticate(&key).is_some());
        assert_eq!(
            store.list_keys().await.unwrap()[0].last_used_at,
            None,
            "written per request"
        );
        // Another key made elsewhere makes the ring reload before the flush.
        create(store.as_ref(), spec(None), clock.now()).await.unwrap();
        assert!(ring.refresh().await.unwrap());
        ring.flush_uses().await;
        let stored = store.list_keys().await.unwrap();
        let ours = stored.iter().find(|k| k.id == record.id).unwrap();
        assert_eq!(ours.last_used_at.map(|at| at.unix_timestamp()), Some(used));
        let other = stored.iter().find(|k| k.id != record.id).unwrap();
        assert_eq!(other.last_used_at, None, "an unused key was touched");
    }
}
