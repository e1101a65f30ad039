//! [`CounterStore`] for [`EmbeddedStore`]: failure counters in the
//! `counters` table, keyed by counter key, each with an entry in
//! `counter_expiry` at its expiry so purge finds forgotten ones without a
//! scan.
//!
//! Writes are ops of the one writer (`writer.rs`), as secret writes are:
//! redb's single write transaction makes the lock check and the counts of
//! a reserve one step, so racing reserves get exactly the allowance left,
//! and each is acknowledged after a durable commit (group commit shares
//! the fsync among the attempts of a burst). They change no session record,
//! so the read cache sees an empty change set. The tables are made by the
//! first write; a read of a file without them finds nothing, which is what
//! it means. A record past its expiry is treated as missing by every op and
//! removed by the next purge.

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition};
use sessiond_core::{
    CounterKey, CounterRecord, CounterRule, CounterStore, CounterStoreError, Reserved, StoreError, async_trait,
    check_counter_keys,
};
use time::OffsetDateTime;

use crate::EmbeddedStore;
use crate::codec::deadline_key;
use crate::error::engine;
use crate::ops::{Done, Op, Outcome};
use crate::tables::{Tables, open_optional};

/// Counter key → encoded [`CounterRecord`].
pub(crate) const COUNTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("counters");
/// (expiry in Unix ns, counter key) → (): one entry per record.
pub(crate) const COUNTER_EXPIRY: TableDefinition<(i128, &str), ()> = TableDefinition::new("counter_expiry");

/// The encoded length: a u32 count and three i128 times, big-endian.
const RECORD_LEN: usize = 4 + 3 * 16;

/// A record's bytes: its count, then last failure, lock end and expiry in
/// Unix nanoseconds (exact for every `OffsetDateTime` the store meets).
pub(crate) fn encode(record: &CounterRecord) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RECORD_LEN);
    bytes.extend_from_slice(&record.count.to_be_bytes());
    for at in [record.last, record.locked_until, record.expires_at] {
        bytes.extend_from_slice(&at.unix_timestamp_nanos().to_be_bytes());
    }
    bytes
}

/// A stored counter record of the wrong length.
#[derive(Debug, thiserror::Error)]
#[error("a stored counter record of {len} bytes, not {RECORD_LEN}")]
pub(crate) struct BadCounterRecord {
    len: usize,
}

/// Reads bytes written by [`encode`] back.
pub(crate) fn decode(bytes: &[u8]) -> Result<CounterRecord, StoreError> {
    if bytes.len() != RECORD_LEN {
        return Err(StoreError::Corrupt(Box::new(BadCounterRecord { len: bytes.len() })));
    }
    let mut count = [0u8; 4];
    count.copy_from_slice(&bytes[..4]);
    let at = |n: usize| {
        let mut nanos = [0u8; 16];
        nanos.copy_from_slice(&bytes[4 + 16 * n..4 + 16 * (n + 1)]);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from_be_bytes(nanos))
            .map_err(|e| StoreError::Corrupt(Box::new(e)))
    };
    Ok(CounterRecord {
        count: u32::from_be_bytes(count),
        last: at(0)?,
        locked_until: at(1)?,
        expires_at: at(2)?,
    })
}

type Records<'txn> = Table<'txn, &'static str, &'static [u8]>;
type Expiry<'txn> = Table<'txn, (i128, &'static str), ()>;

/// The record stored under `key`, live or not.
fn stored(records: &Records<'_>, key: &CounterKey) -> Result<Option<CounterRecord>, StoreError> {
    match records.get(key.as_str()).map_err(engine)? {
        Some(bytes) => Ok(Some(decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// Writes `record` over `old`, moving its expiry entry with it.
fn put(
    records: &mut Records<'_>,
    expiry: &mut Expiry<'_>,
    key: &CounterKey,
    record: &CounterRecord,
    old: Option<&CounterRecord>,
) -> Result<(), StoreError> {
    if let Some(old) = old {
        expiry
            .remove((deadline_key(old.expires_at), key.as_str()))
            .map_err(engine)?;
    }
    records
        .insert(key.as_str(), encode(record).as_slice())
        .map_err(engine)?;
    expiry
        .insert((deadline_key(record.expires_at), key.as_str()), ())
        .map_err(engine)?;
    Ok(())
}

/// Reserve, inside the writer's transaction: every lock is checked before
/// anything is written, so a refusal leaves the transaction untouched.
pub(crate) fn reserve(
    t: &mut Tables<'_>,
    keys: &[(CounterKey, CounterRule)],
    now: OffsetDateTime,
) -> Result<Outcome, StoreError> {
    let mut records = t.txn.open_table(COUNTERS).map_err(engine)?;
    let mut expiry = t.txn.open_table(COUNTER_EXPIRY).map_err(engine)?;
    let mut olds = Vec::with_capacity(keys.len());
    for (key, _) in keys {
        olds.push(stored(&records, key)?);
    }
    let locks: Vec<Option<OffsetDateTime>> = olds.iter().map(|o| o.and_then(|r| r.locked_at(now))).collect();
    if locks.iter().any(Option::is_some) {
        return Ok(Ok(Done::Reserved(Reserved::Locked(locks))));
    }
    let mut counts = Vec::with_capacity(keys.len());
    for ((key, rule), old) in keys.iter().zip(&olds) {
        let record = CounterRecord::counted(old.as_ref(), rule, now);
        put(&mut records, &mut expiry, key, &record, old.as_ref())?;
        counts.push(record.count);
    }
    Ok(Ok(Done::Reserved(Reserved::Counted(counts))))
}

/// Release, inside the writer's transaction.
pub(crate) fn release(
    t: &mut Tables<'_>,
    keys: &[(CounterKey, CounterRule)],
    now: OffsetDateTime,
) -> Result<Outcome, StoreError> {
    let mut records = t.txn.open_table(COUNTERS).map_err(engine)?;
    let mut expiry = t.txn.open_table(COUNTER_EXPIRY).map_err(engine)?;
    for (key, rule) in keys {
        if let Some(old) = stored(&records, key)?.filter(|r| r.is_live(now)) {
            put(&mut records, &mut expiry, key, &old.released(rule), Some(&old))?;
        }
    }
    Ok(Ok(Done::CountersWritten))
}

/// Clear, inside the writer's transaction.
pub(crate) fn clear(t: &mut Tables<'_>, key: &CounterKey) -> Result<Outcome, StoreError> {
    let mut records = t.txn.open_table(COUNTERS).map_err(engine)?;
    let mut expiry = t.txn.open_table(COUNTER_EXPIRY).map_err(engine)?;
    if let Some(old) = stored(&records, key)? {
        records.remove(key.as_str()).map_err(engine)?;
        expiry
            .remove((deadline_key(old.expires_at), key.as_str()))
            .map_err(engine)?;
    }
    Ok(Ok(Done::CountersWritten))
}

/// Removes up to `limit` records whose expiry is before `now`, walking the
/// expiry index from its start. Called by the session purge.
pub(crate) fn purge(t: &mut Tables<'_>, now: OffsetDateTime, limit: usize) -> Result<(), StoreError> {
    let mut records = t.txn.open_table(COUNTERS).map_err(engine)?;
    let mut expiry = t.txn.open_table(COUNTER_EXPIRY).map_err(engine)?;
    // A record is live while now <= expires_at: due are those strictly before.
    let end: (i128, &str) = (deadline_key(now), "");
    let mut due: Vec<(i128, String)> = Vec::new();
    for entry in expiry.range(..end).map_err(engine)?.take(limit) {
        let (key, _) = entry.map_err(engine)?;
        let (at, name) = key.value();
        due.push((at, name.to_owned()));
    }
    for (at, name) in due {
        expiry.remove((at, name.as_str())).map_err(engine)?;
        records.remove(name.as_str()).map_err(engine)?;
    }
    Ok(())
}

impl EmbeddedStore {
    async fn write_counters(&self, op: Op) -> Result<Done, CounterStoreError> {
        self.write(op).await.map_err(CounterStoreError::from)
    }
}

fn unexpected(done: &Done) -> CounterStoreError {
    CounterStoreError::Backend(format!("writer answered a counter write with {done:?}").into())
}

#[async_trait]
impl CounterStore for EmbeddedStore {
    async fn reserve(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        let op = Op::ReserveCounters {
            keys: keys.to_vec(),
            now,
        };
        match self.write_counters(op).await? {
            Done::Reserved(reserved) => Ok(reserved),
            other => Err(unexpected(&other)),
        }
    }

    async fn release(&self, keys: &[(CounterKey, CounterRule)], now: OffsetDateTime) -> Result<(), CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        let op = Op::ReleaseCounters {
            keys: keys.to_vec(),
            now,
        };
        match self.write_counters(op).await? {
            Done::CountersWritten => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn clear(&self, key: &CounterKey) -> Result<(), CounterStoreError> {
        match self.write_counters(Op::ClearCounter(key.clone())).await? {
            Done::CountersWritten => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn counter(&self, key: &CounterKey, now: OffsetDateTime) -> Result<Option<CounterRecord>, CounterStoreError> {
        let txn = self
            .database()
            .begin_read()
            .map_err(|e| CounterStoreError::from(engine(e)))?;
        let Some(table) = open_optional(&txn, COUNTERS).map_err(CounterStoreError::from)? else {
            return Ok(None);
        };
        match table
            .get(key.as_str())
            .map_err(|e| CounterStoreError::from(engine(e)))?
        {
            Some(bytes) => Ok(Some(decode(bytes.value())?).filter(|r| r.is_live(now))),
            None => Ok(None),
        }
    }
}
