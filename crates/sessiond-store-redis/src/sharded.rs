//! The parts of the store that span shards or buckets (see `keys.rs`):
//! purge in deadline order over every shard's expiry index (on a Redis
//! Cluster), and the walk over every record's id. With one shard (one
//! server or a Sentinel set) purge is `purge_shard` of shard 0.

use sessiond_core::{Audit, IdPage, Session, SessionId, StoreError};
use time::OffsetDateTime;

use crate::audit::audit_arg;
use crate::error::{corrupt, from_redis};
use crate::record::{self, micros};
use crate::scripts::{SCRIPTS, array, int};
use crate::store::{PURGE_BATCH, RedisStore};

/// Id buckets a page of [`RedisStore::scan_buckets`] reads at most, so
/// that a page of a sparse store costs a bounded number of round trips.
const BUCKETS_PER_PAGE: usize = 64;

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
        // due entries of all of them, in purge's order (deadline, then id),
        // and each run of one shard's entries in that order purged by one
        // call, so records come back, and their events are numbered, in
        // deadline order.
        let mut due: Vec<(i64, String, u8)> = Vec::new();
        for shard in 0..keys.shard_count() {
            let mut call = SCRIPTS.due.prepare_invoke();
            call.key(keys.due_index(shard))
                .arg(micros(now))
                .arg(limit)
                .arg(keys.base(shard));
            let entries = array(self.run(&call).await?)?;
            for pair in entries.chunks(2) {
                let text = |i: usize| match pair.get(i) {
                    Some(redis::Value::BulkString(b)) => std::str::from_utf8(b).ok(),
                    _ => None,
                };
                let (Some(id), Some(score)) = (text(0), text(1).and_then(|s| s.parse::<f64>().ok())) else {
                    return Err(corrupt("due answered something other than ids and deadlines".into()));
                };
                // Scores are whole microseconds below 2^53: exact as doubles.
                due.push((score as i64, id.to_owned(), shard));
            }
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
            call.key(keys.due_index(shard))
                .arg(micros(now))
                .arg(batch)
                .arg(keys.base(shard))
                // Each batch numbers its picked events after the earlier ones.
                .arg(audit_arg(keys, shard, audit, picked)?);
            let mut reply = array(self.run(&call).await?)?;
            if reply.is_empty() {
                return Err(corrupt("purge answered an empty array".into()));
            }
            let taken = int(&reply.remove(0))?;
            let batch_purged = record::decode_all(&reply)?;
            picked += batch_purged.iter().filter(|s| s.revoked.is_none()).count();
            purged.extend(batch_purged);
            // Fewer due entries than asked for: nothing more is due.
            if usize::try_from(taken).unwrap_or(0) < batch {
                break;
            }
        }
        Ok(purged)
    }

    /// [`SessionStore::scan_ids`](sessiond_core::SessionStore::scan_ids):
    /// shard by shard, bucket by bucket, `HSCAN` of the id buckets, which
    /// hold every record's id. (A `SCAN` would walk the whole keyspace.)
    /// `HSCAN` returns a small bucket whole, so ids beyond `limit` ride in
    /// the cursor: `<shard>.<bucket>.<HSCAN cursor>[.<id>,<id>…]` (ids
    /// are base64url, without `.` or `,`).
    pub(crate) async fn scan_buckets(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        let keys = self.keys();
        let limit = limit.max(1);
        let bad = || corrupt(format!("{cursor:?} is not a cursor of this store's walk"));
        let (mut shard, mut index, mut from, mut ids) = match cursor {
            None => (0, 0, "0".to_owned(), Vec::new()),
            Some(cursor) => {
                let mut parts = cursor.splitn(4, '.');
                let shard = parts
                    .next()
                    .and_then(|s| s.parse::<u8>().ok())
                    .filter(|s| *s < keys.shard_count())
                    .ok_or_else(bad)?;
                let index = parts
                    .next()
                    .and_then(|s| s.parse::<usize>().ok())
                    .filter(|i| *i <= keys.buckets_per_shard())
                    .ok_or_else(bad)?;
                let from = parts
                    .next()
                    .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(bad)?;
                let ids = match parts.next() {
                    None => Vec::new(),
                    Some(list) => list
                        .split(',')
                        .map(|id| SessionId::parse(id).ok_or_else(bad))
                        .collect::<Result<Vec<_>, _>>()?,
                };
                (shard, index, from.to_owned(), ids)
            }
        };
        let mut visited = 0;
        let mut done = false;
        while ids.len() < limit && visited < BUCKETS_PER_PAGE {
            let Some(bucket) = keys.bucket(shard, index) else {
                if shard + 1 >= keys.shard_count() {
                    done = true;
                    break;
                }
                (shard, index, from) = (shard + 1, 0, "0".to_owned());
                continue;
            };
            let mut connection = self.connection().await?;
            let (next, found): (String, Vec<Vec<u8>>) = redis::cmd("HSCAN")
                .arg(keys.ids_bucket(shard, &bucket))
                .arg(&from)
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut connection)
                .await
                .map_err(from_redis)?;
            visited += 1;
            // Fields (ids) and values (raw token hashes) alternate.
            for id in found.iter().step_by(2) {
                let parsed = std::str::from_utf8(id).ok().and_then(SessionId::parse);
                ids.push(parsed.ok_or_else(|| corrupt(format!("{:?} in an id bucket", String::from_utf8_lossy(id))))?);
            }
            if next == "0" {
                (index, from) = (index + 1, "0".to_owned());
            } else {
                from = next;
            }
        }
        let rest = ids.split_off(limit.min(ids.len()));
        let next = if !rest.is_empty() {
            let rest: Vec<&str> = rest.iter().map(SessionId::as_str).collect();
            Some(format!("{shard}.{index}.{from}.{}", rest.join(",")))
        } else {
            (!done).then(|| format!("{shard}.{index}.{from}"))
        };
        Ok(IdPage { ids, next })
    }
}
