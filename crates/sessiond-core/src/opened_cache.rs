//! [`OpenedCache`]: the opened form of records an engine keeps in memory,
//! so a verify that finds the same record again does not open it again.
//!
//! An engine with a cache of its own (the embedded store) answers repeated
//! lookups of an unchanged record with the same `Arc`, and a new `Arc`
//! once the record changes. Entries are keyed by that `Arc`'s address and
//! hold a clone of it: while an entry exists its allocation cannot be
//! freed, so the address cannot be reused by another record, and an equal
//! address means the very same stored record. A changed record is a new
//! allocation, hence a miss; nothing needs invalidating.
//!
//! Only records shared with the engine are kept (a `strong_count` above
//! one): an engine that decodes every read afresh (Redis, PostgreSQL)
//! would only fill the cache with records never seen again.
//!
//! Why: opening a record costs about 4.5 µs (`benches/sealing.rs`: two
//! opens and a JSON parse), a tenth of the 45 µs of server CPU a verify
//! took before sealing (`scripts/load`, embedded store, 100,000 sessions,
//! `TOUCH_INTERVAL=20m`, median of 3 rounds). With sealing and this cache
//! the same run measured 41 µs and 29,278 verifies/s (79 % of the floor's
//! 37,134), against 45 µs and 25,348/s (66 % of 38,215) before sealing;
//! rounds varied by ±20 % on this shared machine. The cost is memory: up
//! to 131,072 records kept opened (RSS after the verify run 301 MiB,
//! against 162 MiB before).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::session::Session;

const SHARDS: usize = 64;

/// Entries per shard; a full shard is emptied (at most `SHARDS` times this
/// many records are held twice, stored and opened).
const SHARD_CAPACITY: usize = 2048;

type Shard = RwLock<HashMap<usize, (Arc<Session>, Arc<Session>)>>;

/// Opened records by the address of the stored record they came from.
#[derive(Debug)]
pub(crate) struct OpenedCache {
    shards: Box<[Shard]>,
}

impl Default for OpenedCache {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }
}

impl OpenedCache {
    fn shard(&self, address: usize) -> &Shard {
        // Allocations are aligned: skip the low bits that are always zero.
        &self.shards[(address >> 4) % SHARDS]
    }

    /// The opened form of `stored`, if this very record was opened before.
    pub(crate) fn get(&self, stored: &Arc<Session>) -> Option<Arc<Session>> {
        let address = Arc::as_ptr(stored) as usize;
        let shard = self.shard(address).read().unwrap_or_else(|p| p.into_inner());
        shard
            .get(&address)
            .filter(|(kept, _)| Arc::ptr_eq(kept, stored))
            .map(|(_, opened)| Arc::clone(opened))
    }

    /// Remembers `opened` as the opened form of `stored`, when the engine
    /// keeps `stored` itself.
    pub(crate) fn put(&self, stored: &Arc<Session>, opened: &Arc<Session>) {
        if Arc::strong_count(stored) < 2 {
            return;
        }
        let address = Arc::as_ptr(stored) as usize;
        let mut shard = self.shard(address).write().unwrap_or_else(|p| p.into_inner());
        if shard.len() >= SHARD_CAPACITY {
            shard.clear();
        }
        shard.insert(address, (Arc::clone(stored), Arc::clone(opened)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{SessionId, Subject, Tenant};
    use crate::token::TokenHash;
    use time::OffsetDateTime;

    fn session() -> Session {
        let now = OffsetDateTime::UNIX_EPOCH;
        Session {
            id: SessionId::generate().unwrap_or_else(|e| panic!("{e}")),
            tenant: Tenant::default_tenant(),
            subject: Subject::new("s").unwrap_or_else(|e| panic!("{e}")),
            token_hash: TokenHash::from_bytes([1; 32]),
            previous_token: None,
            created_at: now,
            last_seen_at: now,
            authenticated_at: now,
            idle_expires_at: now,
            absolute_expires_at: now,
            remember_me: false,
            aal: crate::session::Aal::AAL1,
            data: serde_json::Map::new(),
            created_client: crate::ClientInfo::default(),
            client: crate::session::ClientInfo::default(),
            version: 0,
            revoked: None,
            origin: crate::origin::SessionOrigin::Api,
        }
    }

    #[test]
    fn hits_only_the_very_same_shared_record() {
        let cache = OpenedCache::default();
        let stored = Arc::new(session());
        let opened = Arc::new(session());

        // Not shared with an engine: not kept.
        cache.put(&stored, &opened);
        assert!(cache.get(&stored).is_none());

        let engine_copy = Arc::clone(&stored);
        cache.put(&stored, &opened);
        let hit = cache.get(&stored).unwrap_or_else(|| panic!("a miss"));
        assert!(Arc::ptr_eq(&hit, &opened));

        // An equal record in another allocation is another record.
        let changed = Arc::new(Session::clone(&stored));
        let _engine_holds = Arc::clone(&changed);
        assert!(cache.get(&changed).is_none());
        drop(engine_copy);
    }
}
