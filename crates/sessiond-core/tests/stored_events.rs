//! A manager built with `store_events` has the store write each session
//! write's events with it: they are in the event store whatever the sink
//! does, the sink only hears of them, and what has no write of its own
//! (a refused verify, a touch) still goes to the sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond_core::{
    CreateOptions, Event, EventFilter, EventIds, EventSink, EventStore, LimitAction, MemoryStore, Policy, RevokeReason,
    Rotation, SessionManager, SessionStore, StoredEvent, Tenant,
};
use sessiond_testkit::FakeClock;

use crate::lifecycle::alice;

/// Keeps what it is given and what it hears of apart.
#[derive(Debug, Default)]
struct Ears {
    emitted: Mutex<Vec<Event>>,
    heard: Mutex<Vec<Event>>,
}

impl EventSink for Ears {
    fn emit(&self, event: Event) {
        self.emitted.lock().unwrap().push(event);
    }
    fn stored(&self, event: &Event) {
        self.heard.lock().unwrap().push(event.clone());
    }
}

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{}{}",
                e.kind.name(),
                e.kind.reason().map(|r| format!(":{r}")).unwrap_or_default()
            )
        })
        .collect()
}

async fn stored(store: &MemoryStore) -> Vec<StoredEvent> {
    let filter = EventFilter {
        limit: 1000,
        ..EventFilter::default()
    };
    let mut events = store.query_events(&Tenant::default_tenant(), &filter).await.unwrap();
    events.reverse();
    events
}

#[tokio::test]
async fn every_session_write_stores_its_events_itself() {
    let store = Arc::new(MemoryStore::new());
    let ears = Arc::new(Ears::default());
    let clock = FakeClock::default();
    let policy = Policy {
        max_sessions_per_subject: 2,
        on_session_limit: LimitAction::EvictOldest,
        ..Policy::default()
    };
    let manager = SessionManager::builder(Arc::clone(&store) as Arc<dyn SessionStore>)
        .policy(policy)
        .clock(Arc::new(clock.clone()))
        .events(ears.clone())
        .store_events(Arc::new(EventIds::with_node(1)))
        .build()
        .unwrap();

    let (first, _) = manager.create(&alice(), CreateOptions::default()).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let (second, _) = manager.create(&alice(), CreateOptions::default()).await.unwrap();
    clock.advance(Duration::from_secs(1));
    // The third login evicts the first session.
    let (_third, _) = manager.create(&alice(), CreateOptions::default()).await.unwrap();
    assert!(manager.verify(first.expose_secret(), None).await.is_err());
    let (second, session) = manager.rotate(second.expose_secret(), Rotation::Plain).await.unwrap();
    manager
        .update_data(&session.id, serde_json::Map::new(), None)
        .await
        .unwrap();
    manager
        .revoke_token(second.expose_secret(), RevokeReason::Logout)
        .await
        .unwrap();
    manager
        .revoke_subject(&alice(), None, RevokeReason::Admin)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(24 * 3600));
    // Both remaining records are tombstones now: purge records nothing.
    assert_eq!(manager.purge_expired(100).await.unwrap(), 3);
    let live = manager.create(&alice(), CreateOptions::default()).await.unwrap().1;
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(manager.purge_expired(100).await.unwrap(), 1);

    let expected = [
        "created",
        "created",
        "revoked:limit",
        "created",
        "rotated",
        "data_updated",
        "revoked:logout",
        "revoked:admin",
        "created",
        "expired_purged",
    ];
    let in_store: Vec<Event> = stored(&store).await.into_iter().map(|s| s.event).collect();
    assert_eq!(kinds(&in_store), expected);
    assert_eq!(in_store.last().unwrap().session_id, Some(live.id));
    // The sink heard of each, and was given only the refused verify.
    assert_eq!(*ears.heard.lock().unwrap(), in_store);
    assert_eq!(kinds(&ears.emitted.lock().unwrap()), ["verify_failed:revoked"]);
}

#[tokio::test]
async fn without_store_events_the_sink_gets_everything_and_the_store_nothing() {
    let store = Arc::new(MemoryStore::new());
    let ears = Arc::new(Ears::default());
    let manager = SessionManager::builder(Arc::clone(&store) as Arc<dyn SessionStore>)
        .events(ears.clone())
        .build()
        .unwrap();
    let (token, _) = manager.create(&alice(), CreateOptions::default()).await.unwrap();
    manager
        .revoke_token(token.expose_secret(), RevokeReason::Logout)
        .await
        .unwrap();
    assert!(stored(&store).await.is_empty());
    assert!(ears.heard.lock().unwrap().is_empty());
    assert_eq!(kinds(&ears.emitted.lock().unwrap()), ["created", "revoked:logout"]);
}
