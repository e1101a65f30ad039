//! [`EventStore`] for [`EmbeddedStore`]: audit events in the `events`
//! table, keyed by (tenant, event id), each stored as its JSON; and each
//! tenant's count in `event_counts`.
//!
//! Keys sort by tenant, then id, and ids sort in time order (see
//! [`EventId`]), so a tenant's events are one contiguous range: a query
//! walks it backwards from `before` (newest first), pruning by age removes
//! from its front, pruning by count removes the first `count - max` of it.
//! The count table makes a prune cost what it removes, and lists the
//! tenants for a prune of all of them.
//!
//! Writes are ops of the one writer (`writer.rs`), as key and user writes
//! are: they share its group commit, are acknowledged only after a durable
//! commit, and a batch is one op, so it is in one transaction whole. They
//! change no session record, so the read cache sees an empty change set.
//! The tables are made by the first append: a read of a file without them
//! finds no event, which is what it means.
//!
//! JSON, the form `events.jsonl` had: events are read by people through
//! `/v1/events`, never on the verify path.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use sessiond_core::{
    Event, EventFilter, EventId, EventStore, EventStoreError, Retention, StoreError, StoredEvent, Tenant, async_trait,
};

use crate::EmbeddedStore;
use crate::error::engine;
use crate::ops::{Done, Op, Outcome};
use crate::tables::{Tables, open_optional};

pub(crate) const EVENTS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("events");
pub(crate) const EVENT_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("event_counts");

/// Above every event id (ids are digits, hex letters and `-`): the end of
/// a tenant's range when a query has no `before`.
const ABOVE_ALL_IDS: &str = "~";

pub(crate) fn decode(id: &str, bytes: &[u8]) -> Result<StoredEvent, StoreError> {
    let id = EventId::parse(id).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    let event: Event = serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    Ok(StoredEvent { id, event })
}

/// Append, inside the writer's transaction: ids already stored are
/// skipped, each tenant's count follows what was written.
pub(crate) fn append(t: &mut Tables<'_>, events: &[StoredEvent]) -> Result<Outcome, StoreError> {
    write(t, events)?;
    Ok(Ok(Done::EventsAppended))
}

/// [`append`]'s writes, for session writes that store their events in
/// their own transaction (see `ops.rs`).
pub(crate) fn write(t: &mut Tables<'_>, events: &[StoredEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut table = t.txn.open_table(EVENTS).map_err(engine)?;
    let mut counts = t.txn.open_table(EVENT_COUNTS).map_err(engine)?;
    for stored in events {
        let key = (stored.event.tenant.as_str(), stored.id.as_str());
        if table.get(key).map_err(engine)?.is_some() {
            continue;
        }
        let bytes = serde_json::to_vec(&stored.event).map_err(|e| StoreError::Backend(Box::new(e)))?;
        table.insert(key, bytes.as_slice()).map_err(engine)?;
        let count = counts.get(key.0).map_err(engine)?.map_or(0, |c| c.value());
        counts.insert(key.0, count + 1).map_err(engine)?;
    }
    Ok(())
}

/// Prune, inside the writer's transaction: for each tenant named (or
/// every tenant with events), the ids below the age cut, then the oldest
/// beyond the count.
pub(crate) fn prune(t: &mut Tables<'_>, tenant: Option<&Tenant>, retention: Retention) -> Result<Outcome, StoreError> {
    let mut table = t.txn.open_table(EVENTS).map_err(engine)?;
    let mut counts = t.txn.open_table(EVENT_COUNTS).map_err(engine)?;
    let tenants: Vec<(String, u64)> = match tenant {
        Some(tenant) => {
            let count = counts.get(tenant.as_str()).map_err(engine)?.map_or(0, |c| c.value());
            vec![(tenant.as_str().to_owned(), count)]
        }
        None => {
            let mut all = Vec::new();
            for entry in counts.iter().map_err(engine)? {
                let (name, count) = entry.map_err(engine)?;
                all.push((name.value().to_owned(), count.value()));
            }
            all
        }
    };
    let cut = EventId::first_at(retention.older_than);
    let max = retention.max_events as u64;
    let mut removed = 0;
    for (tenant, count) in tenants {
        // Walk from the oldest; stop at the first event both young enough
        // and within the newest `max`.
        let mut doomed = Vec::new();
        let mut left = count;
        for entry in table
            .range((tenant.as_str(), "")..(tenant.as_str(), ABOVE_ALL_IDS))
            .map_err(engine)?
        {
            let (key, _) = entry.map_err(engine)?;
            let id = key.value().1;
            if left <= max && id >= cut.as_str() {
                break;
            }
            doomed.push(id.to_owned());
            // Saturating: a count behind its table (it is kept in the same
            // transaction, so only by damage) must not stop the prune.
            left = left.saturating_sub(1);
        }
        for id in &doomed {
            table.remove((tenant.as_str(), id.as_str())).map_err(engine)?;
        }
        if left == 0 {
            counts.remove(tenant.as_str()).map_err(engine)?;
        } else if left != count {
            counts.insert(tenant.as_str(), left).map_err(engine)?;
        }
        removed += doomed.len() as u64;
    }
    Ok(Ok(Done::EventsPruned(removed)))
}

impl EmbeddedStore {
    fn read_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        let txn = self.database().begin_read().map_err(engine)?;
        let Some(table) = open_optional(&txn, EVENTS)? else {
            return Ok(Vec::new());
        };
        let end = filter.before.as_ref().map_or(ABOVE_ALL_IDS, EventId::as_str);
        let mut found = Vec::new();
        if filter.limit == 0 {
            return Ok(found);
        }
        for entry in table
            .range((tenant.as_str(), "")..(tenant.as_str(), end))
            .map_err(engine)?
            .rev()
        {
            let (key, value) = entry.map_err(engine)?;
            let stored = decode(key.value().1, value.value())?;
            if filter.matches(&stored.event) {
                found.push(stored);
                if found.len() == filter.limit {
                    break;
                }
            }
        }
        Ok(found)
    }
}

fn unexpected(done: &Done) -> EventStoreError {
    EventStoreError::Backend(format!("writer answered an event write with {done:?}").into())
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError> {
        if events.is_empty() {
            return Ok(());
        }
        match self.write(Op::AppendEvents(events.to_vec())).await? {
            Done::EventsAppended => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn query_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError> {
        Ok(self.read_events(tenant, filter)?)
    }

    async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError> {
        let op = Op::PruneEvents {
            tenant: tenant.cloned(),
            retention,
        };
        match self.write(op).await? {
            Done::EventsPruned(removed) => Ok(removed),
            other => Err(unexpected(&other)),
        }
    }
}
