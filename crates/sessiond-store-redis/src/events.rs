//! [`EventStore`] for [`RedisStore`]: each tenant's audit events in one
//! sorted set, every member `<event id> <event JSON>` with score 0, and a
//! set of the tenants that have any, all under the tag `{events}` (layout
//! in `keys.rs`).
//!
//! With equal scores a sorted set orders its members by bytes; event ids
//! are fixed width, sort in time order, and the space after them sorts
//! below every id byte, so the set is in id order and the lex range
//! commands do the rest: a query is `ZREVRANGEBYLEX` from `(<before>`
//! down, a prune by age `ZREMRANGEBYLEX` below the cut, a prune by count
//! `ZREMRANGEBYRANK` from the oldest. Append and the prune of one tenant
//! are one script each (`lua/event_*.lua`, each stating its guarantee); a
//! query reads pages with a plain command, which needs no script: each
//! page starts below the previous one, so pages never overlap.
//!
//! The JSON is written and read by Rust only. Events have no TTL: they go
//! only by pruning. Durability is the server's, as for sessions (see the
//! crate docs).

use sessiond_core::{
    EVENT_ID_LEN, Event, EventFilter, EventId, EventStore, EventStoreError, Retention, StoredEvent, Tenant, async_trait,
};

use crate::error::{Unexpected, from_redis};
use crate::scripts::{SCRIPTS, int, status};
use crate::store::RedisStore;

/// Members read per round trip when filters may skip some.
const PAGE: usize = 256;

fn corrupt(what: String) -> EventStoreError {
    EventStoreError::Corrupt(Box::new(Unexpected(what)))
}

/// The sorted set member of an event: `<id> <json>`.
pub(crate) fn member(stored: &StoredEvent) -> Result<String, serde_json::Error> {
    Ok(format!("{} {}", stored.id, serde_json::to_string(&stored.event)?))
}

fn encode(stored: &StoredEvent) -> Result<String, EventStoreError> {
    member(stored).map_err(|e| EventStoreError::Backend(Box::new(e)))
}

fn decode(member: &str) -> Result<StoredEvent, EventStoreError> {
    let (Some(id), Some(json)) = (member.get(..EVENT_ID_LEN), member.get(EVENT_ID_LEN + 1..)) else {
        return Err(corrupt(format!("an event member of {} bytes", member.len())));
    };
    let id = EventId::parse(id).map_err(|e| EventStoreError::Corrupt(Box::new(e)))?;
    let event: Event = serde_json::from_str(json).map_err(|e| EventStoreError::Corrupt(Box::new(e)))?;
    Ok(StoredEvent { id, event })
}

/// A script's `{'ok', n}`.
fn counted(reply: redis::Value, what: &str) -> Result<u64, EventStoreError> {
    let (word, rest) = status(reply)?;
    match (word.as_str(), rest.first()) {
        ("ok", Some(n)) => Ok(u64::try_from(int(n)?).unwrap_or(0)),
        (other, _) => Err(corrupt(format!("{what} answered {other}"))),
    }
}

impl RedisStore {
    /// Prunes one shard's events of `tenant` by age, keeping at most `keep`.
    async fn prune_shard(
        &self,
        shard: u8,
        tenant: &Tenant,
        keep: usize,
        retention: Retention,
    ) -> Result<u64, EventStoreError> {
        let mut call = SCRIPTS.event_prune.prepare_invoke();
        call.key(self.keys().event_tenants(shard))
            .key(self.keys().events(shard, tenant));
        call.arg(tenant.as_str())
            .arg(keep.to_string())
            .arg(EventId::first_at(retention.older_than).as_str());
        counted(self.run(&call).await?, "event prune")
    }

    /// Prunes `tenant`'s events in every shard: by age, and to the
    /// `max_events` newest of all shards together.
    async fn prune_tenant(&self, tenant: &Tenant, retention: Retention) -> Result<u64, EventStoreError> {
        let count = self.keys().shard_count();
        let max = retention.max_events;
        let mut keep = vec![max; usize::from(count)];
        if count > 1 {
            let mut connection = self.connection().await?;
            let mut total = 0usize;
            for shard in 0..count {
                let n: usize = redis::cmd("ZCARD")
                    .arg(self.keys().events(shard, tenant))
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| EventStoreError::from(from_redis(e)))?;
                total = total.saturating_add(n);
            }
            if total > max {
                // Each shard keeps its part of the newest `max` of all.
                let newest = self.newest(tenant, &EventFilter::default(), max).await?;
                let mut parts = vec![0usize; usize::from(count)];
                for (shard, _) in newest {
                    parts[usize::from(shard)] += 1;
                }
                keep = parts;
            }
        }
        let mut removed = 0;
        for shard in 0..count {
            removed += self
                .prune_shard(shard, tenant, keep[usize::from(shard)], retention)
                .await?;
        }
        Ok(removed)
    }

    /// Up to `limit` of `tenant`'s events that `filter` takes (its own
    /// limit aside), newest first, with their shards: each shard's newest,
    /// merged.
    async fn newest(
        &self,
        tenant: &Tenant,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<Vec<(u8, StoredEvent)>, EventStoreError> {
        let start = filter
            .before
            .as_ref()
            .map_or_else(|| "+".to_owned(), |id| format!("({id}"));
        // Without filters every member read is returned: read just enough.
        let unfiltered = filter.subject.is_none() && filter.session_id.is_none() && filter.kind.is_none();
        let page = if unfiltered { limit } else { PAGE.max(limit) };
        let mut found = Vec::new();
        let mut connection = self.connection().await?;
        for shard in 0..self.keys().shard_count() {
            let key = self.keys().events(shard, tenant);
            let mut taken = 0;
            let mut below = start.clone();
            while taken < limit {
                let members: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
                    .arg(&key)
                    .arg(&below)
                    .arg("-")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(page)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| EventStoreError::from(from_redis(e)))?;
                let Some(last) = members.last() else { break };
                let last = decode(last)?.id;
                let exhausted = members.len() < page;
                for member in members {
                    let stored = decode(&member)?;
                    if filter.matches(&stored.event) && taken < limit {
                        found.push((shard, stored));
                        taken += 1;
                    }
                }
                if exhausted {
                    break;
                }
                below = format!("({last}");
            }
        }
        // Ids order events in time (`EventId`): newest first across shards.
        found.sort_by(|a, b| b.1.id.cmp(&a.1.id));
        found.truncate(limit);
        Ok(found)
    }
}

#[async_trait]
impl EventStore for RedisStore {
    async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError> {
        if events.is_empty() {
            return Ok(());
        }
        // Events no session write stores: on a Cluster, in the first shard
        // (a script's keys must share a slot; readers merge the shards).
        let mut call = SCRIPTS.event_append.prepare_invoke();
        call.key(self.keys().event_tenants(0));
        for stored in events {
            call.key(self.keys().events(0, &stored.event.tenant));
            call.arg(stored.event.tenant.as_str()).arg(encode(stored)?);
        }
        counted(self.run(&call).await?, "event append")?;
        Ok(())
    }

    async fn query_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError> {
        let found = self.newest(tenant, filter, filter.limit).await?;
        Ok(found.into_iter().map(|(_, stored)| stored).collect())
    }

    async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError> {
        if let Some(tenant) = tenant {
            return self.prune_tenant(tenant, retention).await;
        }
        let mut connection = self.connection().await?;
        let mut tenants = std::collections::BTreeSet::new();
        for shard in 0..self.keys().shard_count() {
            let names: Vec<String> = redis::cmd("SMEMBERS")
                .arg(self.keys().event_tenants(shard))
                .query_async(&mut connection)
                .await
                .map_err(|e| EventStoreError::from(from_redis(e)))?;
            tenants.extend(names);
        }
        let mut removed = 0;
        for name in tenants {
            let tenant = Tenant::new(name.as_str()).map_err(|e| EventStoreError::Corrupt(Box::new(e)))?;
            removed += self.prune_tenant(&tenant, retention).await?;
        }
        Ok(removed)
    }
}
