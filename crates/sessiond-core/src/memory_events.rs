//! [`EventStore`] for [`MemoryStore`]: each tenant's events in an ordered
//! map by id, behind one mutex.

use std::collections::{BTreeMap, HashMap};
use std::sync::MutexGuard;

use async_trait::async_trait;

use crate::event_id::EventId;
use crate::event_store::{EventFilter, EventStore, EventStoreError, Retention, StoredEvent};
use crate::events::Event;
use crate::ids::Tenant;
use crate::memory::MemoryStore;

/// Every tenant's events, each map ordered by id (oldest first).
pub(crate) type Events = HashMap<Tenant, BTreeMap<EventId, Event>>;

impl MemoryStore {
    // Every method changes whole entries under the lock, so a panic
    // elsewhere cannot leave one half-written; take the map over rather
    // than fail.
    fn event_map(&self) -> MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Prunes one tenant's map; returns how many went.
fn prune(events: &mut BTreeMap<EventId, Event>, retention: Retention) -> u64 {
    let before = events.len();
    // `split_off` keeps the ids at or above the cut: the young ones.
    *events = events.split_off(&EventId::first_at(retention.older_than));
    let excess = events.len().saturating_sub(retention.max_events);
    if excess > 0 {
        let keep_from = events.keys().nth(excess).cloned();
        *events = match keep_from {
            Some(id) => events.split_off(&id),
            None => BTreeMap::new(),
        };
    }
    (before - events.len()) as u64
}

impl MemoryStore {
    /// Stores a batch under one lock (that is its atomicity). Session writes
    /// call it while they hold the session lock, so a reader never sees a
    /// change without its events.
    pub(crate) fn record_events(&self, events: &[StoredEvent]) {
        if events.is_empty() {
            return;
        }
        let mut map = self.event_map();
        for stored in events {
            map.entry(stored.event.tenant.clone())
                .or_default()
                .entry(stored.id.clone())
                .or_insert_with(|| stored.event.clone());
        }
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError> {
        self.record_events(events);
        Ok(())
    }

    async fn query_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError> {
        let map = self.event_map();
        let Some(events) = map.get(tenant) else {
            return Ok(Vec::new());
        };
        // The ids below the cursor are one range of the ordered map.
        let below = match &filter.before {
            Some(before) => events.range(..before),
            None => events.range(..),
        };
        Ok(below
            .rev()
            .filter(|(_, event)| filter.matches(event))
            .take(filter.limit)
            .map(|(id, event)| StoredEvent {
                id: id.clone(),
                event: event.clone(),
            })
            .collect())
    }

    async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError> {
        let mut map = self.event_map();
        let mut removed = 0;
        match tenant {
            Some(tenant) => {
                if let Some(events) = map.get_mut(tenant) {
                    removed = prune(events, retention);
                }
            }
            None => {
                for events in map.values_mut() {
                    removed += prune(events, retention);
                }
            }
        }
        map.retain(|_, events| !events.is_empty());
        Ok(removed)
    }
}
