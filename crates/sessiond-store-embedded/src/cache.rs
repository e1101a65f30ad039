//! The read cache: records by token hash, kept coherent by the writer, so
//! that verify (the hot path) usually costs one hash-map lookup instead of
//! a read transaction, two B-tree lookups and a decode.
//!
//! It has two levels ([`Tier`]s), each bounded in estimated heap bytes:
//!
//! - **records**, decoded ([`Options::cache_bytes`](crate::Options)): a
//!   hit is a reference count;
//! - **packed**, the encoded bytes as stored
//!   ([`Options::packed_cache_bytes`](crate::Options)): a hit costs a
//!   decode (about 0.8 µs with a small cart here) but the entry under a
//!   third of the memory (a browser session with a small cart: about 2,600
//!   bytes decoded, 730 packed), so a node can keep millions of sessions in
//!   memory and answer a verify that misses the records level without a
//!   read transaction.
//!
//! Both levels change together, under one lock, so what follows holds for
//! each.
//!
//! # Why it is never stale
//!
//! This process is the only writer: the file is locked, and every write
//! goes through the writer thread, which updates the cache around each
//! commit in three steps, under the lock each time:
//!
//! 1. before the commit: bump `epoch` to odd ("a commit is in flight") and
//!    remove every hash the batch changes (old and new);
//! 2. commit;
//! 3. after the commit: insert the records as committed and bump `epoch`
//!    back to even; only then are the callers answered.
//!
//! So an entry exists only while it equals the latest committed state of
//! its record: it is inserted after the commit that wrote it, and removed
//! before any commit that changes it. While an entry is absent, readers go
//! to the database, which orders reads and commits itself.
//!
//! Readers may also fill the cache after a miss, with a ticket: the epoch
//! they saw (even, so no commit in flight) before opening their snapshot.
//! The fill is refused if the epoch moved, i.e. if any commit began since;
//! otherwise no commit happened between their snapshot and the fill, so
//! what they read is still the latest state.
//!
//! The lock is held only to update the maps (steps 1 and 3, a few hash-map
//! operations per written record), never across the commit or its fsync,
//! so a reader waits at most for that, never behind the disk.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sessiond_core::{Session, TokenHash};

use crate::tables::token_hashes;
use crate::tier::{HeapBytes, Tier, chunk};

#[derive(Debug)]
struct Inner {
    records: Tier<Arc<Session>>,
    packed: Tier<Arc<[u8]>>,
    /// Odd while a commit is in flight; see the module docs.
    epoch: u64,
}

impl Inner {
    fn remove(&mut self, hash: &TokenHash) {
        self.records.remove(hash);
        self.packed.remove(hash);
    }

    fn insert(&mut self, hash: TokenHash, record: &Record) {
        self.records.insert(hash, Arc::clone(&record.session));
        self.packed.insert(hash, Arc::clone(&record.packed));
    }
}

/// A decoded record's heap, from what it holds: the record, every string,
/// and its data walked value by value, each allocation rounded as glibc's
/// malloc rounds it. An estimate, not an allocator's count, but
/// `tests/cache_memory.rs` checks it against the bytes really allocated,
/// so the budget bounds the cache's memory whatever the sessions carry (a
/// session with a large cart costs several small ones).
impl HeapBytes for Arc<Session> {
    fn heap_bytes(&self) -> usize {
        record_bytes(self)
    }
}

/// An encoded record: one allocation, with the `Arc`'s counts.
impl HeapBytes for Arc<[u8]> {
    fn heap_bytes(&self) -> usize {
        chunk(2 * std::mem::size_of::<usize>() + self.len())
    }
}

fn record_bytes(session: &Session) -> usize {
    use std::mem::size_of;
    let shared_str = |s: &str| chunk(2 * size_of::<usize>() + s.len());
    let client = |c: &sessiond_core::ClientInfo| {
        [&c.ip, &c.user_agent, &c.sealed]
            .iter()
            .map(|part| part.as_ref().map_or(0, |text| chunk(text.len())))
            .sum::<usize>()
    };
    chunk(2 * size_of::<usize>() + size_of::<Session>())
        + shared_str(session.id.as_str())
        + shared_str(session.tenant.as_str())
        + shared_str(session.subject.as_str())
        + client(&session.client)
        + client(&session.created_client)
        + map_bytes(&session.data)
}

fn map_bytes(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    use std::mem::size_of;
    // serde_json's map is a B-tree whose nodes have room for 11 members and
    // are allocated whole: one member costs a 640-byte node. Past one node,
    // nodes are about two-thirds full, with an inner node per 8 of them.
    const LEAF: usize = 11 * (size_of::<String>() + size_of::<serde_json::Value>()) + 16;
    const INNER: usize = LEAF + 12 * size_of::<usize>();
    let nodes = match map.len() {
        0 => 0,
        1..=11 => chunk(LEAF),
        n => {
            let leaves = n.div_ceil(8);
            leaves * chunk(LEAF) + leaves.div_ceil(8) * chunk(INNER)
        }
    };
    nodes + map.iter().map(|(k, v)| chunk(k.len()) + value_bytes(v)).sum::<usize>()
}

fn value_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => chunk(s.capacity()),
        Value::Array(items) => {
            chunk(items.capacity() * std::mem::size_of::<Value>()) + items.iter().map(value_bytes).sum::<usize>()
        }
        Value::Object(map) => map_bytes(map),
    }
}

/// A record as committed or read: decoded, and encoded as stored.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) session: Arc<Session>,
    pub(crate) packed: Arc<[u8]>,
}

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Cached {
    /// The decoded record.
    Record(Arc<Session>),
    /// The record's stored bytes, to decode.
    Packed(Arc<[u8]>),
    Missing,
}

/// The cache; shared by the store handle (reads) and the writer thread.
#[derive(Debug)]
pub(crate) struct Cache {
    inner: RwLock<Inner>,
    /// Whether either level may hold anything.
    enabled: bool,
}

/// What a batch did to one token hash, in the order it happened.
#[derive(Debug, Default)]
pub(crate) struct Changes(HashMap<TokenHash, Option<Record>>);

impl Changes {
    /// `session`, stored as `packed`, was written, replacing `old`.
    pub(crate) fn put(&mut self, session: &Session, packed: &[u8], old: Option<&Session>) {
        for hash in old.into_iter().flat_map(token_hashes) {
            self.0.insert(hash, None);
        }
        let record = Record {
            session: Arc::new(session.clone()),
            packed: Arc::from(packed),
        };
        for hash in token_hashes(session) {
            self.0.insert(hash, Some(record.clone()));
        }
    }

    /// `session` was deleted.
    pub(crate) fn delete(&mut self, session: &Session) {
        for hash in token_hashes(session) {
            self.0.insert(hash, None);
        }
    }
}

/// Permission to fill after a miss; see [`Cache::ticket`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl Cache {
    /// A cache of at most `records` estimated bytes of decoded records and
    /// `packed` of encoded ones (0 turns a level off).
    pub(crate) fn new(records: usize, packed: usize) -> Self {
        Self {
            inner: RwLock::new(Inner {
                records: Tier::new(records),
                packed: Tier::new(packed),
                epoch: 0,
            }),
            enabled: records > 0 || packed > 0,
        }
    }

    // The lock is never held across an await or a call that can panic
    // half-way through an update, so a poisoned lock is taken over.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The record under `hash`, decoded if the records level has it.
    pub(crate) fn get(&self, hash: &TokenHash) -> Cached {
        if !self.enabled {
            return Cached::Missing;
        }
        let inner = self.read();
        if let Some(session) = inner.records.get(hash) {
            return Cached::Record(session);
        }
        // A packed hit is not promoted: that would take the write lock on
        // every such verify. The records level gets the session back at its
        // next write (a touch) or miss.
        match inner.packed.get(hash) {
            Some(packed) => Cached::Packed(packed),
            None => Cached::Missing,
        }
    }

    /// Taken *before* a read transaction begins; `None` while a commit is
    /// in flight (the read might then be overtaken before it could fill).
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        let epoch = self.read().epoch;
        (self.enabled && epoch.is_multiple_of(2)).then_some(Ticket(epoch))
    }

    /// Caches a record read under `ticket`, unless a commit began since.
    pub(crate) fn fill(&self, ticket: Ticket, record: &Record) {
        let mut inner = self.write();
        if inner.epoch != ticket.0 {
            return;
        }
        for hash in token_hashes(&record.session) {
            inner.insert(hash, record);
        }
    }

    /// Step 1: a commit of `changes` is about to happen.
    pub(crate) fn before_commit(&self, changes: &Changes) {
        let mut inner = self.write();
        inner.epoch = inner.epoch.wrapping_add(1) | 1;
        for hash in changes.0.keys() {
            inner.remove(hash);
        }
    }

    /// Step 3: the commit is over. `committed` tells whether it took effect
    /// (after a failed commit nothing is re-inserted; readers will fill).
    pub(crate) fn after_commit(&self, changes: Changes, committed: bool) {
        let mut inner = self.write();
        if committed && self.enabled {
            for (hash, record) in changes.0 {
                if let Some(record) = record {
                    inner.insert(hash, &record);
                }
            }
        }
        inner.epoch = inner.epoch.wrapping_add(1) & !1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_testkit::conformance::{NOW, sample};

    /// What `session` costs in the records level.
    fn entry_bytes(session: &Session) -> usize {
        Tier::entry_bytes(&Arc::new(session.clone()))
    }

    /// What `session` costs in the packed level.
    fn packed_bytes(session: &Session) -> usize {
        Tier::entry_bytes(&packed(session))
    }

    fn packed(session: &Session) -> Arc<[u8]> {
        Arc::from(crate::codec::encode(session).unwrap())
    }

    fn put(changes: &mut Changes, session: &Session, old: Option<&Session>) {
        changes.put(session, &packed(session), old);
    }

    fn commit(cache: &Cache, sessions: &[&Session]) {
        let mut changes = Changes::default();
        for session in sessions {
            put(&mut changes, session, None);
        }
        cache.before_commit(&changes);
        cache.after_commit(changes, true);
    }

    fn decoded(cache: &Cache, hash: &TokenHash) -> Option<Arc<Session>> {
        match cache.get(hash) {
            Cached::Record(session) => Some(session),
            _ => None,
        }
    }

    #[test]
    fn the_budget_is_in_bytes_so_a_large_record_takes_the_room_of_several() {
        let small = sample("t", "s", NOW);
        let mut large = sample("t", "s", NOW);
        large
            .data
            .insert("cart".into(), serde_json::json!(["x".repeat(16_000)]));
        let (one, big) = (entry_bytes(&small), entry_bytes(&large));
        assert!(big > 16_000 && big > 4 * one, "{big} vs {one}");
        let cache = Cache::new(big + one, 0);
        let others: Vec<Session> = (0..3).map(|_| sample("t", "s", NOW)).collect();
        commit(&cache, &[&large, &others[0], &others[1], &others[2]]);
        let inner = cache.read();
        assert!(
            inner.records.bytes() <= big + one,
            "{} over {}",
            inner.records.bytes(),
            big + one
        );
        assert!(inner.records.len() <= 4);
        assert_eq!(inner.packed.len(), 0, "the packed level is off");
        // A record larger than the whole budget is not kept at all.
        drop(inner);
        let tight = Cache::new(one, 0);
        commit(&tight, &[&large]);
        assert!(matches!(tight.get(&large.token_hash), Cached::Missing));
    }

    #[test]
    fn a_packed_entry_is_under_a_third_of_a_decoded_one() {
        let mut browser = sample("t", "s", NOW);
        browser.client.user_agent =
            Some("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0".into());
        browser.created_client = browser.client.clone();
        let (decoded, packed) = (entry_bytes(&browser), packed_bytes(&browser));
        assert!(3 * packed <= decoded, "{packed} packed against {decoded} decoded");
    }

    #[test]
    fn eviction_keeps_an_entry_that_hits_use_while_one_off_records_pass() {
        let hot = sample("t", "hot", NOW);
        let cache = Cache::new(4 * entry_bytes(&hot), 0);
        commit(&cache, &[&hot]);
        for round in 0..200 {
            assert!(decoded(&cache, &hot.token_hash).is_some(), "evicted in round {round}");
            commit(&cache, &[&sample("t", "once", NOW)]);
        }
        let inner = cache.read();
        assert!(inner.records.len() <= 4);
        // Hashes of evicted entries do not pile up in the queue.
        let (queue, len) = (inner.records.queue_len(), inner.records.len());
        assert!(queue <= 2 * len + 64, "{queue} queued for {len} entries");
        drop(inner);
        // Unused, it ages out like any other.
        for _ in 0..8 {
            commit(&cache, &[&sample("t", "once", NOW)]);
        }
        assert!(matches!(cache.get(&hot.token_hash), Cached::Missing));
    }

    #[test]
    fn what_leaves_the_records_level_is_still_answered_packed() {
        let first = sample("t", "s", NOW);
        let cache = Cache::new(entry_bytes(&first), 16 * packed_bytes(&first));
        let second = sample("t", "s", NOW);
        commit(&cache, &[&first]);
        commit(&cache, &[&second]);
        assert!(decoded(&cache, &second.token_hash).is_some());
        match cache.get(&first.token_hash) {
            Cached::Packed(bytes) => assert_eq!(crate::codec::decode(&bytes).unwrap(), first),
            other => panic!("{other:?}"),
        }
        // A change removes it from both levels before its commit.
        let mut revoked = first.clone();
        revoked.version += 1;
        let mut changes = Changes::default();
        put(&mut changes, &revoked, Some(&first));
        cache.before_commit(&changes);
        assert!(matches!(cache.get(&first.token_hash), Cached::Missing));
        cache.after_commit(changes, true);
        assert_eq!(
            decoded(&cache, &first.token_hash).map(|s| s.version),
            Some(revoked.version)
        );
    }

    #[test]
    fn a_fill_is_refused_once_a_commit_began() {
        let cache = Cache::new(8 << 10, 8 << 10);
        let s = sample("t", "s", NOW);
        let record = Record {
            session: Arc::new(s.clone()),
            packed: packed(&s),
        };
        let ticket = cache.ticket().unwrap();
        let mut changes = Changes::default();
        put(&mut changes, &s, None);
        cache.before_commit(&changes);
        assert!(cache.ticket().is_none(), "no tickets while a commit is in flight");
        cache.after_commit(Changes::default(), true);
        cache.fill(ticket, &record);
        assert!(matches!(cache.get(&s.token_hash), Cached::Missing));
        let ticket = cache.ticket().unwrap();
        cache.fill(ticket, &record);
        assert_eq!(decoded(&cache, &s.token_hash).as_deref(), Some(&s));
    }

    #[test]
    fn commits_replace_and_remove_entries_and_capacity_holds() {
        let one = entry_bytes(&sample("t", "s", NOW));
        let cache = Cache::new(2 * one, 0);
        let a = sample("t", "s", NOW);
        let mut revoked = a.clone();
        revoked.version += 1;
        let mut changes = Changes::default();
        put(&mut changes, &a, None);
        put(&mut changes, &revoked, Some(&a));
        cache.before_commit(&changes);
        cache.after_commit(changes, true);
        assert_eq!(decoded(&cache, &a.token_hash).map(|s| s.version), Some(revoked.version));
        let mut gone = Changes::default();
        gone.delete(&revoked);
        cache.before_commit(&gone);
        cache.after_commit(gone, true);
        assert!(matches!(cache.get(&a.token_hash), Cached::Missing));
        for _ in 0..5 {
            commit(&cache, &[&sample("t", "s", NOW)]);
        }
        assert_eq!(cache.read().records.len(), 2);
        assert!(cache.read().records.bytes() <= 2 * one);
        assert!(Cache::new(0, 0).ticket().is_none());
    }
}
