//! The parts of the store that span shards (a Redis Cluster; see
//! `keys.rs`): purge in deadline order over every shard's expiry index,
//! and the walk over every record's id. With one shard (one server or a
//! Sentinel set) purge is `purge_shard` of shard 0.

use sessiond_core::{Audit, IdPage, Session, SessionId, StoreError};
use time::OffsetDateTime;

use crate::audit::audit_arg;
use crate::error::{corrupt, from_redis};
use crate::record::{self, micros};
use crate::scripts::{SCRIPTS, array, int};
use crate::store::{PURGE_BATCH, RedisStore};

impl RedisStore {
    /// [`SessionStore::purge_expired`](sessiond_core::SessionStore::purge_expired)
    /// over several shards.
    pub(crate) async fn purge_shards(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        let keys = self.keys();
        // Earliest deadline first across the shards: the `limit` earliest
        // due entries of all of them, in the order each index keeps (score,
        // then id), and each run of one shard's entries in that order
        // purged by one call, so records come back, and their events are
        // numbered, in deadline order.
        let mut due: Vec<(i64, String, u8)> = Vec::new();
        let mut connection = self.connection().await?;
        for shard in 0..keys.shard_count() {
            let entries: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
                .arg(keys.expiry(shard))
                .arg("-inf")
                .arg(micros(now))
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut connection)
                .await
                .map_err(from_redis)?;
            // Scores are whole microseconds below 2^53: exact as doubles.
            due.extend(entries.into_iter().map(|(id, score)| (score as i64, id, shard)));
        }
        due.sort();
        due.truncate(limit);
        let mut purged = Vec::new();
        let mut picked = 0;
        for run in due.chunk_by(|a, b| a.2 == b.2) {
            let batch = self.purge_shard(run[0].2, now, run.len(), audit, picked).await?;
            picked += batch.iter().filter(|s| s.revoked.is_none()).count();
            purged.extend(batch);
        }
        Ok(purged)
    }

    /// Purges up to `limit` records due at `now` from one shard, earliest
    /// first, numbering picked events from `picked`.
    pub(crate) async fn purge_shard(
        &self,
        shard: u8,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
        mut picked: usize,
    ) -> Result<Vec<Session>, StoreError> {
        let keys = self.keys();
        let mut purged: Vec<Session> = Vec::new();
        while purged.len() < limit {
            let batch = (limit - purged.len()).min(PURGE_BATCH);
            let mut call = SCRIPTS.purge.prepare_invoke();
            call.key(keys.expiry(shard))
                .arg(micros(now))
                .arg(batch)
                .arg(keys.token_prefix(shard))
                .arg(keys.id_prefix(shard))
                // Each batch numbers its picked events after the earlier ones.
                .arg(audit_arg(keys, shard, audit, picked)?);
            let mut reply = array(self.run(&call).await?)?;
            if reply.is_empty() {
                return Err(corrupt("purge answered an empty array".into()));
            }
            let scanned = int(&reply.remove(0))?;
            let batch_purged = record::decode_all(&reply)?;
            picked += batch_purged.iter().filter(|s| s.revoked.is_none()).count();
            purged.extend(batch_purged);
            // Fewer due entries than asked for: nothing more is due.
            if usize::try_from(scanned).unwrap_or(0) < batch {
                break;
            }
        }
        Ok(purged)
    }

    /// [`SessionStore::scan_ids`] on a Cluster: shard by shard, `ZSCAN` of
    /// the shard's expiry index, which holds every record's id. (A `SCAN`
    /// per shard would walk a node's whole keyspace once per shard it
    /// holds.) `ZSCAN` returns a small index whole, so ids beyond `limit`
    /// ride in the cursor: `<shard>.<ZSCAN cursor>[.<id>,<id>…]` (ids are
    /// base64url, without `.` or `,`).
    pub(crate) async fn scan_shards(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        let keys = self.keys();
        let bad = || corrupt(format!("{cursor:?} is not a cursor of this store's walk"));
        let (shard, mut from, mut ids) = match cursor {
            None => (0, "0".to_owned(), Vec::new()),
            Some(cursor) => {
                let mut parts = cursor.splitn(3, '.');
                let shard = parts
                    .next()
                    .and_then(|s| s.parse::<u8>().ok())
                    .filter(|s| *s < keys.shard_count())
                    .ok_or_else(bad)?;
                let from = parts
                    .next()
                    .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(bad)?;
                let ids = match parts.next() {
                    None => Vec::new(),
                    Some(list) => list
                        .split(',')
                        .map(|id| SessionId::parse(id).ok_or_else(bad))
                        .collect::<Result<Vec<_>, _>>()?,
                };
                (shard, from.to_owned(), ids)
            }
        };
        if ids.is_empty() {
            let mut connection = self.connection().await?;
            let (next, found): (String, Vec<String>) = redis::cmd("ZSCAN")
                .arg(keys.expiry(shard))
                .arg(&from)
                .arg("COUNT")
                .arg(limit.max(1))
                .query_async(&mut connection)
                .await
                .map_err(from_redis)?;
            // Members and scores alternate.
            ids = found
                .iter()
                .step_by(2)
                .map(|id| SessionId::parse(id).ok_or_else(|| corrupt(format!("{id:?} in an expiry index"))))
                .collect::<Result<Vec<_>, _>>()?;
            from = next;
        }
        let rest = ids.split_off(limit.max(1).min(ids.len()));
        let next = if !rest.is_empty() {
            let rest: Vec<&str> = rest.iter().map(SessionId::as_str).collect();
            Some(format!("{shard}.{from}.{}", rest.join(",")))
        } else if from != "0" {
            Some(format!("{shard}.{from}"))
        } else {
            (shard + 1 < keys.shard_count()).then(|| format!("{}.0", shard + 1))
        };
        Ok(IdPage { ids, next })
    }
}
