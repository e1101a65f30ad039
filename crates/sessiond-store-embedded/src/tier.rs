//! One level of the read cache ([`crate::cache`]): a map by token hash,
//! bounded in estimated heap bytes, evicting by CLOCK. It knows nothing of
//! commits; the cache decides what goes in and out, under its lock.

use std::collections::{HashMap, VecDeque};
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, Ordering};

use sessiond_core::{TokenHash, TokenHashBuildHasher};

/// A cached value's heap, estimated: what the budget counts besides the
/// tier's own slots.
pub(crate) trait HeapBytes {
    /// The bytes the value's allocations take from the allocator.
    fn heap_bytes(&self) -> usize;
}

/// The heap one allocation of `len` bytes takes from glibc's malloc: an
/// 8-byte header, 16-byte steps, 32 bytes at least.
pub(crate) fn chunk(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 8).next_multiple_of(16).max(32)
    }
}

/// A value and its CLOCK bit: set by a hit (under the cache's read lock,
/// hence atomic), cleared when eviction passes over it once.
#[derive(Debug)]
struct Slot<V> {
    value: V,
    used: AtomicBool,
}

/// A byte-bounded map by token hash; see the module docs.
#[derive(Debug)]
pub(crate) struct Tier<V> {
    map: HashMap<TokenHash, Slot<V>, TokenHashBuildHasher>,
    /// Eviction order (CLOCK): hashes in the order they were inserted or
    /// given a second chance. It may also hold hashes no longer in `map`
    /// (removed by a commit) and repeats; those are skipped, and the queue
    /// is rebuilt from `map` when they outnumber the entries.
    queue: VecDeque<TokenHash>,
    /// The estimated bytes of every entry ([`Tier::entry_bytes`]).
    bytes: usize,
    /// The budget in estimated bytes; 0: the tier holds nothing.
    capacity: usize,
}

impl<V: HeapBytes + Clone> Tier<V> {
    /// An empty tier of at most `capacity` estimated bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::default(),
            queue: VecDeque::new(),
            bytes: 0,
            capacity,
        }
    }

    /// What an entry holding `value` costs: the map's bucket and control
    /// byte, 2.5 times (with entries coming and going, the table rehashes
    /// into up to about 2.3 buckets per entry), the key again in the queue,
    /// twice (it doubles when full), and the value's heap.
    pub(crate) fn entry_bytes(value: &V) -> usize {
        (size_of::<TokenHash>() + size_of::<Slot<V>>() + 1) * 5 / 2 + 2 * size_of::<TokenHash>() + value.heap_bytes()
    }

    /// The value under `hash`, marked used.
    pub(crate) fn get(&self, hash: &TokenHash) -> Option<V> {
        let slot = self.map.get(hash)?;
        // Read before writing, so a hot entry's line is not written on
        // every hit.
        if !slot.used.load(Ordering::Relaxed) {
            slot.used.store(true, Ordering::Relaxed);
        }
        Some(slot.value.clone())
    }

    pub(crate) fn remove(&mut self, hash: &TokenHash) {
        if let Some(old) = self.map.remove(hash) {
            self.bytes = self.bytes.saturating_sub(Self::entry_bytes(&old.value));
        }
    }

    /// Inserts, first evicting until it fits. A value larger than the
    /// whole budget is not kept, and a tier turned off (no budget) does not
    /// even estimate it: a decoded record's estimate walks its data.
    ///
    /// Eviction is CLOCK: the oldest entry goes unless a hit used it since
    /// eviction last passed, in which case it goes to the back once. So a
    /// hot session stays while a stream of one-off reads passes through,
    /// at O(1) amortized per insert. (The first version took the map's
    /// first key, which scans the table from its start: with the table
    /// full, that scan was 22 % of a uniform verify run over 1 M sessions
    /// in `examples/scale.rs`, under the write lock.)
    pub(crate) fn insert(&mut self, hash: TokenHash, value: V) {
        if self.capacity == 0 {
            return;
        }
        self.remove(&hash);
        let size = Self::entry_bytes(&value);
        if size > self.capacity {
            return;
        }
        while self.bytes + size > self.capacity {
            let Some(oldest) = self.queue.pop_front() else {
                break;
            };
            match self.map.get(&oldest) {
                Some(slot) if slot.used.swap(false, Ordering::Relaxed) => self.queue.push_back(oldest),
                Some(_) => self.remove(&oldest),
                None => {}
            }
        }
        self.bytes += size;
        let used = AtomicBool::new(false);
        self.map.insert(hash, Slot { value, used });
        self.queue.push_back(hash);
        if self.queue.len() > 2 * self.map.len() + 64 {
            self.queue = self.map.keys().copied().collect();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[cfg(test)]
    pub(crate) fn queue_len(&self) -> usize {
        self.queue.len()
    }
}
