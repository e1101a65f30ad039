//! The throttle's failure records, bounded in bytes rather than in count.
//!
//! A bound on the number of records did not bound memory: 1,200 failed
//! logins with 1 MB user names grew the process from 19 MB to 1.28 GB. So
//! every record is accounted as its key's heap bytes plus a fixed overhead,
//! and the table never holds more than [`MAX_BYTES`] of them. When a new
//! record would pass the budget, records that are forgotten anyway go
//! first, then the least recently failed, down to three quarters of the
//! budget, so the cost of one eviction pass is spread over many inserts.
//!
//! Eviction forgets failures, which helps whoever made them; that is the
//! price of a bound. Filling 16 MiB takes tens of thousands of distinct
//! names, each attempt costing an Argon2 check and counting against its IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;

/// Most bytes the records may take, as accounted per record (its key's
/// bytes and a fixed overhead: `Key::cost`).
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// What eviction brings the table down to (plus the record being added).
const AFTER_EVICTION: usize = MAX_BYTES / 4 * 3;

/// What a record costs besides its key's heap bytes. A hash table is
/// between half and seven eighths full after it grows, so each record is
/// charged two slots (key, record and control byte); the 16 bytes are the
/// allocator's header of the key's string.
const RECORD_OVERHEAD: usize = 2 * (size_of::<Key>() + size_of::<Record>() + 1) + 16;

/// Whose failures a record counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// An account name, normalised (see `throttle::account_name`).
    Account(String),
    /// A client address.
    Ip(IpAddr),
    /// One browser's device cookie for one account: the normalised account
    /// name and the cookie's nonce.
    Device(String, super::DeviceNonce),
}

impl Key {
    /// The bytes this key's record is accounted as.
    fn cost(&self) -> usize {
        let heap = match self {
            Key::Account(name) | Key::Device(name, _) => name.capacity(),
            Key::Ip(_) => 0,
        };
        RECORD_OVERHEAD + heap
    }
}

/// The failures of one key.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// Failures counted (reset once forgotten).
    pub failures: u32,
    /// When the last one was counted.
    pub last_failure: OffsetDateTime,
    /// Attempts before this are refused.
    pub locked_until: OffsetDateTime,
}

/// Failure records within [`MAX_BYTES`].
#[derive(Debug, Default)]
pub struct Table {
    records: HashMap<Key, Record>,
    /// The sum of the records' [`Key::cost`].
    bytes: usize,
}

impl Table {
    /// The record of `key`, if it has one.
    pub fn get(&self, key: &Key) -> Option<&Record> {
        self.records.get(key)
    }

    /// The record of `key` to change, if it has one.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Record> {
        self.records.get_mut(key)
    }

    /// Forgets `key`'s record.
    pub fn remove(&mut self, key: &Key) {
        if self.records.remove(key).is_some() {
            self.bytes = self.bytes.saturating_sub(key.cost());
        }
    }

    /// The record of `key`, a fresh one (no failures, at `now`) if it had
    /// none, after making room for it. Records with no failure in
    /// `forget_after` are the first to make room.
    pub fn entry(&mut self, key: Key, now: OffsetDateTime, forget_after: Duration) -> &mut Record {
        if !self.records.contains_key(&key) {
            let cost = key.cost();
            if self.bytes + cost > MAX_BYTES {
                self.evict(cost, now, forget_after);
            }
            self.bytes += cost;
        }
        self.records.entry(key).or_insert(Record {
            failures: 0,
            last_failure: now,
            locked_until: now,
        })
    }

    /// Drops forgotten records, then the least recently failed, until
    /// `room` more bytes fit under [`AFTER_EVICTION`].
    fn evict(&mut self, room: usize, now: OffsetDateTime, forget_after: Duration) {
        let bytes = &mut self.bytes;
        self.records.retain(|key, record| {
            let keep = now - record.last_failure <= forget_after;
            if !keep {
                *bytes = bytes.saturating_sub(key.cost());
            }
            keep
        });
        let Some(excess) = (self.bytes + room).checked_sub(AFTER_EVICTION) else {
            return;
        };
        // The oldest failure time that must go to free enough: every record
        // older goes, and of those failed at that very time, enough of them.
        let mut by_age: Vec<(OffsetDateTime, usize)> = self
            .records
            .iter()
            .map(|(key, record)| (record.last_failure, key.cost()))
            .collect();
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
            let go = record.last_failure < cutoff || (record.last_failure == cutoff && freed < excess);
            if go {
                freed += key.cost();
                *bytes = bytes.saturating_sub(key.cost());
            }
            !go
        });
    }

    /// The bytes the records are accounted as.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many records there are.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
    const HOUR: Duration = Duration::from_secs(3600);

    fn fail(table: &mut Table, key: Key, at: OffsetDateTime) {
        let record = table.entry(key, at, HOUR);
        record.failures += 1;
        record.last_failure = at;
    }

    /// Many long distinct names (the attack of finding 5) keep the table
    /// under its budget, and the newest records survive the eviction of
    /// older ones.
    #[test]
    fn long_names_stay_within_the_byte_budget() {
        let mut table = Table::default();
        let long = "x".repeat(sessiond_core::MAX_SUBJECT_LEN - 8);
        let names = 3 * MAX_BYTES / (long.len() + RECORD_OVERHEAD);
        for n in 0..names {
            let at = T0 + time::Duration::milliseconds(i64::try_from(n).unwrap());
            fail(&mut table, Key::Account(format!("{n:08}{long}")), at);
            assert!(table.bytes() <= MAX_BYTES, "{} bytes after {n} names", table.bytes());
        }
        let last = Key::Account(format!("{:08}{long}", names - 1));
        assert!(table.get(&last).is_some(), "the newest record was evicted");
        assert!(table.get(&Key::Account(format!("{:08}{long}", 0))).is_none());
        assert!(table.len() < names / 2, "{} records kept", table.len());
        // Once the flood is an hour old, it is forgotten before a recent
        // record is touched.
        let recent = Key::Account("alice".into());
        let at = T0 + time::Duration::hours(2);
        fail(&mut table, recent.clone(), at);
        for n in 0..names / 8 {
            fail(
                &mut table,
                Key::Account(format!("new{n:08}{long}")),
                at + time::Duration::seconds(1),
            );
        }
        assert!(table.get(&recent).is_some(), "the recent record was evicted");
        assert!(table.bytes() <= MAX_BYTES);
    }

    #[test]
    fn forgotten_records_go_first_and_removal_is_accounted() {
        let mut table = Table::default();
        let ip = Key::Ip("192.0.2.7".parse().unwrap());
        fail(&mut table, ip.clone(), T0);
        assert_eq!(table.bytes(), RECORD_OVERHEAD);
        fail(&mut table, ip.clone(), T0);
        assert_eq!(table.bytes(), RECORD_OVERHEAD, "an existing record costs nothing more");
        table.remove(&ip);
        table.remove(&ip);
        assert_eq!((table.len(), table.bytes()), (0, 0));

        fail(&mut table, Key::Account("old".into()), T0);
        table.evict(0, T0 + HOUR * 2, HOUR);
        assert_eq!((table.len(), table.bytes()), (0, 0));
    }
}
