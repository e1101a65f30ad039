//! [`CounterStore`] for [`MemoryStore`]: failure records behind a mutex,
//! bounded in bytes rather than in count.
//!
//! A bound on the number of records did not bound memory (1,200 failed
//! logins with 1 MB user names once grew a process from 19 MB to 1.28 GB),
//! so every record is accounted as its key's bytes plus a fixed overhead,
//! and the table never holds more than [`MAX_COUNTER_BYTES`]. When a new
//! record would pass the budget, records that are forgotten anyway go
//! first, then the least recently failed, down to three quarters of the
//! budget, so the cost of one eviction pass is spread over many inserts.
//!
//! Eviction forgets failures, which helps whoever made them; that is the
//! price of a bound in one process. The shared engines have no such bound
//! and need none: their records expire by themselves.

use std::collections::HashMap;
use std::sync::MutexGuard;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::counters::{
    CounterKey, CounterRecord, CounterRule, CounterStore, CounterStoreError, Reserved, check_counter_keys,
};
use crate::memory::MemoryStore;

/// Most bytes the records may take, as accounted per record (its key's
/// bytes and a fixed overhead).
pub const MAX_COUNTER_BYTES: usize = 16 * 1024 * 1024;

/// What eviction brings the table down to (plus the record being added).
const AFTER_EVICTION: usize = MAX_COUNTER_BYTES / 4 * 3;

/// What a record costs besides its key's bytes. A hash table is between
/// half and seven eighths full after it grows, so each record is charged
/// two slots (key, record and control byte); the 32 bytes are the
/// allocator's header and the counts of the key's shared string.
const RECORD_OVERHEAD: usize = 2 * (size_of::<CounterKey>() + size_of::<CounterRecord>() + 1) + 32;

fn cost(key: &CounterKey) -> usize {
    RECORD_OVERHEAD + key.as_str().len()
}

/// Failure records within [`MAX_COUNTER_BYTES`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    records: HashMap<CounterKey, CounterRecord>,
    /// The sum of the records' [`cost`].
    bytes: usize,
}

impl Counters {
    fn live(&self, key: &CounterKey, now: OffsetDateTime) -> Option<&CounterRecord> {
        self.records.get(key).filter(|r| r.is_live(now))
    }

    fn remove(&mut self, key: &CounterKey) {
        if self.records.remove(key).is_some() {
            self.bytes = self.bytes.saturating_sub(cost(key));
        }
    }

    /// Stores `record` under `key`, making room for a new key first.
    fn put(&mut self, key: &CounterKey, record: CounterRecord, now: OffsetDateTime) {
        if !self.records.contains_key(key) {
            let cost = cost(key);
            if self.bytes + cost > MAX_COUNTER_BYTES {
                self.evict(cost, now);
            }
            self.bytes += cost;
        }
        self.records.insert(key.clone(), record);
    }

    /// Drops forgotten records, then the least recently failed, until
    /// `room` more bytes fit under [`AFTER_EVICTION`].
    fn evict(&mut self, room: usize, now: OffsetDateTime) {
        let bytes = &mut self.bytes;
        self.records.retain(|key, record| {
            let keep = record.is_live(now);
            if !keep {
                *bytes = bytes.saturating_sub(cost(key));
            }
            keep
        });
        let Some(excess) = (self.bytes + room).checked_sub(AFTER_EVICTION) else {
            return;
        };
        // The newest failure time that must go to free enough: every record
        // older goes, and of those failed at that very time, enough of them.
        let mut by_age: Vec<(OffsetDateTime, usize)> = self.records.iter().map(|(k, r)| (r.last, cost(k))).collect();
        by_age.sort_unstable_by_key(|(at, _)| *at);
        let mut freed = 0;
        let mut cutoff = None;
        for (at, cost) in by_age {
            if freed >= excess {
                break;
            }
            freed += cost;
            cutoff = Some(at);
        }
        let Some(cutoff) = cutoff else {
            return;
        };
        let mut freed = 0;
        let bytes = &mut self.bytes;
        self.records.retain(|key, record| {
            let go = record.last < cutoff || (record.last == cutoff && freed < excess);
            if go {
                freed += cost(key);
                *bytes = bytes.saturating_sub(cost(key));
            }
            !go
        });
    }
}

impl MemoryStore {
    // Every method replaces whole records under the lock, so a panic
    // elsewhere cannot leave one half-written; take the table over.
    fn counter_table(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bytes the counter records are accounted as (for tests of the bound).
    pub fn counter_bytes(&self) -> usize {
        self.counter_table().bytes
    }
}

#[async_trait]
impl CounterStore for MemoryStore {
    async fn reserve(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        // Check and count under one lock: that is the whole atomicity.
        let mut table = self.counter_table();
        let locks: Vec<Option<OffsetDateTime>> = keys
            .iter()
            .map(|(key, _)| table.live(key, now).and_then(|r| r.locked_at(now)))
            .collect();
        if locks.iter().any(Option::is_some) {
            return Ok(Reserved::Locked(locks));
        }
        let mut counts = Vec::with_capacity(keys.len());
        for (key, rule) in keys {
            let record = CounterRecord::counted(table.records.get(key), rule, now);
            counts.push(record.count);
            table.put(key, record, now);
        }
        Ok(Reserved::Counted(counts))
    }

    async fn release(&self, keys: &[(CounterKey, CounterRule)], now: OffsetDateTime) -> Result<(), CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        let mut table = self.counter_table();
        for (key, rule) in keys {
            if let Some(record) = table.live(key, now).map(|r| r.released(rule)) {
                table.records.insert(key.clone(), record);
            }
        }
        Ok(())
    }

    async fn clear(&self, key: &CounterKey) -> Result<(), CounterStoreError> {
        self.counter_table().remove(key);
        Ok(())
    }

    async fn counter(&self, key: &CounterKey, now: OffsetDateTime) -> Result<Option<CounterRecord>, CounterStoreError> {
        Ok(self.counter_table().live(key, now).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
    const RULE: CounterRule = CounterRule {
        free: 5,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(900),
        forget_after: Duration::from_secs(3600),
    };

    fn key(s: &str) -> CounterKey {
        CounterKey::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Many long distinct keys keep the table under its budget; the newest
    /// records survive the eviction of older ones, and once the flood is
    /// forgotten it goes before a recent record is touched.
    #[tokio::test]
    async fn long_keys_stay_within_the_byte_budget() {
        let store = MemoryStore::new();
        let long = "x".repeat(crate::counters::MAX_COUNTER_KEY_LEN - 11);
        let names = 3 * MAX_COUNTER_BYTES / (long.len() + RECORD_OVERHEAD);
        let at = |n: usize| T0 + time::Duration::milliseconds(i64::try_from(n).unwrap_or(i64::MAX));
        for n in 0..names {
            store
                .reserve(&[(key(&format!("{n:08}{long}")), RULE)], at(n))
                .await
                .unwrap();
            assert!(store.counter_bytes() <= MAX_COUNTER_BYTES, "after {n} keys");
        }
        let newest = key(&format!("{:08}{long}", names - 1));
        assert!(store.counter(&newest, at(names)).await.unwrap().is_some());
        assert!(
            store
                .counter(&key(&format!("{:08}{long}", 0)), at(names))
                .await
                .unwrap()
                .is_none()
        );

        let recent = key("recent");
        let later = T0 + time::Duration::hours(2);
        store.reserve(&[(recent.clone(), RULE)], later).await.unwrap();
        for n in 0..names / 8 {
            store
                .reserve(&[(key(&format!("new{n:08}{long}")), RULE)], later)
                .await
                .unwrap();
        }
        assert!(
            store.counter(&recent, later).await.unwrap().is_some(),
            "the recent record was evicted"
        );
        store.clear(&recent).await.unwrap();
        store.clear(&recent).await.unwrap();
        assert!(store.counter_bytes() <= MAX_COUNTER_BYTES);
    }
}
