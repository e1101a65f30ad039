//! A bounded in-memory cache of decoded records by token hash, kept
//! coherent by the writer, so that verify (the hot path) usually costs one
//! hash-map lookup instead of a read transaction, two B-tree lookups and a
//! decode.
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
//! The lock is held only to update the map (steps 1 and 3, a few hash-map
//! operations per written record), never across the commit or its fsync,
//! so a reader waits at most for that, never behind the disk.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sessiond_core::{Session, TokenHash, TokenHashBuildHasher};

use crate::tables::token_hashes;

/// A cached record and its CLOCK bit: set by a hit (under the read lock,
/// hence atomic), cleared when eviction passes over it once.
#[derive(Debug)]
struct Entry {
    session: Arc<Session>,
    used: AtomicBool,
}

type Map = HashMap<TokenHash, Entry, TokenHashBuildHasher>;

#[derive(Debug, Default)]
struct Inner {
    map: Map,
    /// Eviction order (CLOCK): hashes in the order they were inserted or
    /// given a second chance. It may also hold hashes no longer in `map`
    /// (removed by a commit) and repeats; those are skipped, and the queue
    /// is rebuilt from `map` when they outnumber the entries.
    queue: VecDeque<TokenHash>,
    /// The estimated bytes of every entry ([`entry_bytes`]).
    bytes: usize,
    /// Odd while a commit is in flight; see the module docs.
    epoch: u64,
}

impl Inner {
    fn remove(&mut self, hash: &TokenHash) {
        if let Some(old) = self.map.remove(hash) {
            self.bytes = self.bytes.saturating_sub(entry_bytes(&old.session));
        }
    }

    /// Inserts, first evicting until it fits in `capacity` bytes. An entry
    /// larger than the whole cache is not kept.
    ///
    /// Eviction is CLOCK: the oldest entry goes unless a hit used it since
    /// eviction last passed, in which case it goes to the back once. So a
    /// hot session stays while a stream of one-off reads passes through,
    /// at O(1) amortized per insert. (The first version took the map's
    /// first key, which scans the table from its start: with the table
    /// full, that scan was 22 % of a uniform verify run over 1 M sessions
    /// in `examples/scale.rs`, under the write lock.)
    fn insert_bounded(&mut self, capacity: usize, hash: TokenHash, session: Arc<Session>) {
        self.remove(&hash);
        let size = entry_bytes(&session);
        if size > capacity {
            return;
        }
        while self.bytes + size > capacity {
            let Some(oldest) = self.queue.pop_front() else {
                break;
            };
            match self.map.get(&oldest) {
                Some(entry) if entry.used.swap(false, Ordering::Relaxed) => self.queue.push_back(oldest),
                Some(_) => self.remove(&oldest),
                None => {}
            }
        }
        self.bytes += size;
        self.map.insert(
            hash,
            Entry {
                session,
                used: AtomicBool::new(false),
            },
        );
        self.queue.push_back(hash);
        if self.queue.len() > 2 * self.map.len() + 64 {
            self.queue = self.map.keys().copied().collect();
        }
    }
}

/// What an entry costs in memory, from what it holds: its map and queue
/// slots, the record, every string, and its data walked value by value,
/// each heap allocation rounded as glibc's malloc rounds it. An estimate,
/// not an allocator's count, but `tests/cache_memory.rs` checks it against
/// the bytes really allocated, so the budget bounds the cache's memory
/// whatever the sessions carry (a session with a large cart costs several
/// small ones).
pub(crate) fn entry_bytes(session: &Session) -> usize {
    use std::mem::size_of;
    // The map's bucket and control byte, and the key again in the queue;
    // both tables double when full, so they are two-thirds full on average.
    const SLOTS: usize = (size_of::<TokenHash>() + size_of::<Entry>() + 1 + size_of::<TokenHash>()) * 3 / 2;
    let shared_str = |s: &str| chunk(2 * size_of::<usize>() + s.len());
    let client = |c: &sessiond_core::ClientInfo| {
        [&c.ip, &c.user_agent, &c.sealed]
            .iter()
            .map(|part| part.as_ref().map_or(0, |text| chunk(text.len())))
            .sum::<usize>()
    };
    SLOTS
        + chunk(2 * size_of::<usize>() + size_of::<Session>())
        + shared_str(session.id.as_str())
        + shared_str(session.tenant.as_str())
        + shared_str(session.subject.as_str())
        + client(&session.client)
        + client(&session.created_client)
        + map_bytes(&session.data)
}

/// The heap one allocation of `len` bytes takes from glibc's malloc: an
/// 8-byte header, 16-byte steps, 32 bytes at least.
fn chunk(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 8).next_multiple_of(16).max(32)
    }
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

/// The cache; shared by the store handle (reads) and the writer thread.
#[derive(Debug)]
pub(crate) struct Cache {
    inner: RwLock<Inner>,
    /// The budget in estimated bytes ([`entry_bytes`]); 0: no cache.
    capacity: usize,
}

/// What a batch did to one token hash, in the order it happened.
#[derive(Debug, Default)]
pub(crate) struct Changes(HashMap<TokenHash, Option<Arc<Session>>>);

impl Changes {
    /// `session` was written, replacing `old`.
    pub(crate) fn put(&mut self, session: &Session, old: Option<&Session>) {
        for hash in old.into_iter().flat_map(token_hashes) {
            self.0.insert(hash, None);
        }
        let session = Arc::new(session.clone());
        for hash in token_hashes(&session) {
            self.0.insert(hash, Some(Arc::clone(&session)));
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
    /// A cache of at most `capacity` estimated bytes (0 disables it).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: RwLock::new(Inner::default()),
            capacity,
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

    pub(crate) fn get(&self, hash: &TokenHash) -> Option<Arc<Session>> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.read();
        let entry = inner.map.get(hash)?;
        // Read before writing, so a hot entry's line is not written on
        // every hit.
        if !entry.used.load(Ordering::Relaxed) {
            entry.used.store(true, Ordering::Relaxed);
        }
        Some(Arc::clone(&entry.session))
    }

    /// Taken *before* a read transaction begins; `None` while a commit is
    /// in flight (the read might then be overtaken before it could fill).
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        let epoch = self.read().epoch;
        (self.capacity > 0 && epoch.is_multiple_of(2)).then_some(Ticket(epoch))
    }

    /// Caches a record read under `ticket`, unless a commit began since.
    pub(crate) fn fill(&self, ticket: Ticket, session: &Arc<Session>) {
        let mut inner = self.write();
        if inner.epoch != ticket.0 {
            return;
        }
        for hash in token_hashes(session) {
            inner.insert_bounded(self.capacity, hash, Arc::clone(session));
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
        if committed && self.capacity > 0 {
            for (hash, session) in changes.0 {
                if let Some(session) = session {
                    inner.insert_bounded(self.capacity, hash, session);
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

    #[test]
    fn the_budget_is_in_bytes_so_a_large_record_takes_the_room_of_several() {
        let small = sample("t", "s", NOW);
        let mut large = sample("t", "s", NOW);
        large
            .data
            .insert("cart".into(), serde_json::json!(["x".repeat(16_000)]));
        let (one, big) = (entry_bytes(&small), entry_bytes(&large));
        assert!(big > 16_000 && big > 4 * one, "{big} vs {one}");
        let cache = Cache::new(big + one);
        let mut changes = Changes::default();
        changes.put(&large, None);
        for _ in 0..3 {
            changes.put(&sample("t", "s", NOW), None);
        }
        cache.before_commit(&changes);
        cache.after_commit(changes, true);
        let inner = cache.read();
        assert!(inner.bytes <= big + one, "{} over {}", inner.bytes, big + one);
        assert!(inner.map.len() <= 4);
        // A record larger than the whole budget is not kept at all.
        drop(inner);
        let tight = Cache::new(one);
        let mut changes = Changes::default();
        changes.put(&large, None);
        tight.before_commit(&changes);
        tight.after_commit(changes, true);
        assert!(tight.get(&large.token_hash).is_none());
    }

    fn commit(cache: &Cache, sessions: &[&Session]) {
        let mut changes = Changes::default();
        for session in sessions {
            changes.put(session, None);
        }
        cache.before_commit(&changes);
        cache.after_commit(changes, true);
    }

    #[test]
    fn eviction_keeps_an_entry_that_hits_use_while_one_off_records_pass() {
        let hot = sample("t", "hot", NOW);
        let cache = Cache::new(4 * entry_bytes(&hot));
        commit(&cache, &[&hot]);
        for round in 0..200 {
            assert!(cache.get(&hot.token_hash).is_some(), "evicted in round {round}");
            commit(&cache, &[&sample("t", "once", NOW)]);
        }
        let inner = cache.read();
        assert!(inner.map.len() <= 4);
        // Hashes of evicted entries do not pile up in the queue.
        assert!(inner.queue.len() <= 2 * inner.map.len() + 64, "{}", inner.queue.len());
        drop(inner);
        // Unused, it ages out like any other.
        for _ in 0..8 {
            commit(&cache, &[&sample("t", "once", NOW)]);
        }
        assert!(cache.get(&hot.token_hash).is_none());
    }

    #[test]
    fn a_fill_is_refused_once_a_commit_began() {
        let cache = Cache::new(8 << 10);
        let s = Arc::new(sample("t", "s", NOW));
        let ticket = cache.ticket().unwrap();
        let mut changes = Changes::default();
        changes.put(&s, None);
        cache.before_commit(&changes);
        assert!(cache.ticket().is_none(), "no tickets while a commit is in flight");
        cache.after_commit(Changes::default(), true);
        cache.fill(ticket, &s);
        assert!(cache.get(&s.token_hash).is_none());
        let ticket = cache.ticket().unwrap();
        cache.fill(ticket, &s);
        assert_eq!(cache.get(&s.token_hash).as_deref(), Some(&*s));
    }

    #[test]
    fn commits_replace_and_remove_entries_and_capacity_holds() {
        let one = entry_bytes(&sample("t", "s", NOW));
        let cache = Cache::new(2 * one);
        let a = sample("t", "s", NOW);
        let mut revoked = a.clone();
        revoked.version += 1;
        let mut changes = Changes::default();
        changes.put(&a, None);
        changes.put(&revoked, Some(&a));
        cache.before_commit(&changes);
        cache.after_commit(changes, true);
        assert_eq!(cache.get(&a.token_hash).map(|s| s.version), Some(revoked.version));
        let mut gone = Changes::default();
        gone.delete(&revoked);
        cache.before_commit(&gone);
        cache.after_commit(gone, true);
        assert!(cache.get(&a.token_hash).is_none());
        for _ in 0..5 {
            let mut more = Changes::default();
            more.put(&sample("t", "s", NOW), None);
            cache.before_commit(&more);
            cache.after_commit(more, true);
        }
        assert_eq!(cache.read().map.len(), 2);
        assert!(cache.read().bytes <= 2 * one);
        assert!(Cache::new(0).ticket().is_none());
    }
}
