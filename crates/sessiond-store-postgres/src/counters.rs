//! [`CounterStore`] for [`PostgresStore`]: failure counters in `counters`
//! (migration 6), one row per key.
//!
//! A reserve is one transaction: a placeholder row is claimed for every
//! missing key (`INSERT … ON CONFLICT DO NOTHING`, in key order, a row that
//! reads as forgotten), every row is then locked (`SELECT … FOR UPDATE`,
//! in key order, so two reserves never wait on each other crosswise), the
//! locks are checked, and only then are the counts written. A locked key
//! rolls the transaction back, placeholders included, so a refusal writes
//! nothing. Racing reserves queue on the row locks and each sees the
//! counts of the one before: exactly the allowance left gets through. The
//! arithmetic is [`CounterRecord`]'s, in Rust, as on the embedded store.
//! A release locks and rewrites the live rows the same way; a clear is one
//! `DELETE`. Forgotten rows are ignored by every statement and removed by
//! the session purge (`ops.rs`).

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use sessiond_core::{
    CounterKey, CounterRecord, CounterRule, CounterStore, CounterStoreError, Reserved, StoreError, check_counter_keys,
};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::error::{corrupt, store_error};
use crate::row::get;
use crate::store::PostgresStore;

const COLUMNS: &str = "key, count, last_at, locked_until, expires_at";

/// A row selected as [`COLUMNS`]: its key and record.
fn decode(row: &Row) -> Result<(String, CounterRecord), StoreError> {
    let count: i64 = get(row, 1, "count")?;
    let record = CounterRecord {
        count: u32::try_from(count).map_err(|e| corrupt("count", e))?,
        last: get(row, 2, "last_at")?,
        locked_until: get(row, 3, "locked_until")?,
        expires_at: get(row, 4, "expires_at")?,
    };
    Ok((get(row, 0, "key")?, record))
}

/// The keys in the order rows are claimed and locked.
fn sorted(keys: &[(CounterKey, CounterRule)]) -> Vec<&str> {
    let mut names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names
}

/// Locks the rows of `names` (which are sorted) and returns their records.
async fn lock(tx: &Transaction<'_>, names: &[&str]) -> Result<Vec<(String, CounterRecord)>, StoreError> {
    let select = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM counters WHERE key = ANY($1) ORDER BY key FOR UPDATE"
        ))
        .await
        .map_err(store_error)?;
    let rows = tx.query(&select, &[&names]).await.map_err(store_error)?;
    rows.iter().map(decode).collect()
}

async fn write(tx: &Transaction<'_>, key: &CounterKey, record: &CounterRecord) -> Result<(), StoreError> {
    let update = tx
        // An upsert: a row a concurrent clear deleted after this reserve
        // claimed it (and before it locked it) is written again, not lost.
        .prepare_cached(
            "INSERT INTO counters (key, count, last_at, locked_until, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key) DO UPDATE SET count = $2, last_at = $3, locked_until = $4, expires_at = $5",
        )
        .await
        .map_err(store_error)?;
    tx.execute(
        &update,
        &[
            &key.as_str(),
            &i64::from(record.count),
            &record.last,
            &record.locked_until,
            &record.expires_at,
        ],
    )
    .await
    .map_err(store_error)?;
    Ok(())
}

/// The live record of `key` among locked rows.
fn live<'a>(rows: &'a [(String, CounterRecord)], key: &CounterKey, now: OffsetDateTime) -> Option<&'a CounterRecord> {
    rows.iter()
        .find(|(name, _)| name == key.as_str())
        .map(|(_, record)| record)
        .filter(|record| record.is_live(now))
}

impl PostgresStore {
    async fn reserve_counters(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(store_error)?;
        // A placeholder expired since the epoch reads as missing.
        let claim = tx
            .prepare_cached(
                "INSERT INTO counters (key, count, last_at, locked_until, expires_at) \
                 VALUES ($1, 0, 'epoch', 'epoch', 'epoch') ON CONFLICT (key) DO NOTHING",
            )
            .await
            .map_err(store_error)?;
        let names = sorted(keys);
        for name in &names {
            tx.execute(&claim, &[name]).await.map_err(store_error)?;
        }
        let rows = lock(&tx, &names).await?;
        let locks: Vec<Option<OffsetDateTime>> = keys
            .iter()
            .map(|(key, _)| live(&rows, key, now).and_then(|r| r.locked_at(now)))
            .collect();
        if locks.iter().any(Option::is_some) {
            tx.rollback().await.map_err(store_error)?;
            return Ok(Reserved::Locked(locks));
        }
        let mut counts = Vec::with_capacity(keys.len());
        for (key, rule) in keys {
            let record = CounterRecord::counted(live(&rows, key, now), rule, now);
            write(&tx, key, &record).await?;
            counts.push(record.count);
        }
        tx.commit().await.map_err(store_error)?;
        Ok(Reserved::Counted(counts))
    }

    async fn release_counters(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(store_error)?;
        let rows = lock(&tx, &sorted(keys)).await?;
        for (key, rule) in keys {
            if let Some(record) = live(&rows, key, now) {
                write(&tx, key, &record.released(rule)).await?;
            }
        }
        tx.commit().await.map_err(store_error)
    }

    async fn clear_counter(&self, key: &CounterKey) -> Result<(), StoreError> {
        let client = self.client().await?;
        let delete = client
            .prepare_cached("DELETE FROM counters WHERE key = $1")
            .await
            .map_err(store_error)?;
        client.execute(&delete, &[&key.as_str()]).await.map_err(store_error)?;
        Ok(())
    }

    async fn stored_counter(&self, key: &CounterKey) -> Result<Option<CounterRecord>, StoreError> {
        let client = self.client().await?;
        let select = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM counters WHERE key = $1"))
            .await
            .map_err(store_error)?;
        let row = client.query_opt(&select, &[&key.as_str()]).await.map_err(store_error)?;
        Ok(row.as_ref().map(decode).transpose()?.map(|(_, record)| record))
    }

    /// Removes up to `limit` forgotten counters (`expires_at < now`); rows
    /// another call holds are left for the next round. Called by the
    /// session purge.
    pub(crate) async fn purge_counters(&self, now: OffsetDateTime, limit: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        let purge = client
            .prepare_cached(
                "DELETE FROM counters WHERE key IN ( \
                     SELECT key FROM counters WHERE expires_at < $1 \
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
            )
            .await
            .map_err(store_error)?;
        client.execute(&purge, &[&now, &limit]).await.map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl CounterStore for PostgresStore {
    async fn reserve(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        Ok(self.bounded(self.reserve_counters(keys, now)).await?)
    }

    async fn release(&self, keys: &[(CounterKey, CounterRule)], now: OffsetDateTime) -> Result<(), CounterStoreError> {
        check_counter_keys(keys.iter().map(|(k, _)| k))?;
        Ok(self.bounded(self.release_counters(keys, now)).await?)
    }

    async fn clear(&self, key: &CounterKey) -> Result<(), CounterStoreError> {
        Ok(self.bounded(self.clear_counter(key)).await?)
    }

    async fn counter(&self, key: &CounterKey, now: OffsetDateTime) -> Result<Option<CounterRecord>, CounterStoreError> {
        let stored = self.bounded(self.stored_counter(key)).await?;
        Ok(stored.filter(|record| record.is_live(now)))
    }
}
