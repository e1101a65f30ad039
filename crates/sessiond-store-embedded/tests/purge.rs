//! Core's background purger over the embedded store: it reclaims expired
//! records in bounded batches, leaves live ones, and stops on request.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, CreateOptions, Policy, SessionManager, Subject, spawn_purger};
use sessiond_store_embedded::EmbeddedStore;
use sessiond_testkit::FakeClock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purger_reclaims_expired_sessions_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let clock = FakeClock::default();
    let manager = SessionManager::builder(store.clone())
        .clock(Arc::new(clock.clone()))
        .policy(Policy::default())
        .build()
        .unwrap();
    let subject = Subject::new("user").unwrap();
    for _ in 0..50 {
        manager.create(&subject, CreateOptions::default()).await.unwrap();
    }
    clock.advance(Policy::default().idle_timeout + Duration::from_secs(1));
    let (token, live) = manager.create(&subject, CreateOptions::default()).await.unwrap();

    let purger = spawn_purger(manager.clone(), Duration::from_millis(10), 7);
    // Wait (not a timing assertion: the bound only keeps a bug from hanging).
    for _ in 0..1000 {
        if store.check().unwrap().sessions == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    purger.shutdown().await;

    let report = store.check().unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.sessions, 1);
    assert_eq!(report.expiry_entries, 1);
    assert_eq!(manager.verify(token.expose_secret(), None).await.unwrap().id, live.id);
}

/// Forgotten failure counters go with the session purge, in batches, with
/// their expiry index; live ones stay.
#[tokio::test]
async fn purge_removes_forgotten_counters_and_keeps_live_ones() {
    use sessiond_core::{CounterKey, CounterStore, SessionStore};
    use sessiond_testkit::counter_conformance::{RULE, T0};

    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for n in 0..5 {
        let key = CounterKey::new(format!("acct:{n}")).unwrap();
        store.reserve(&[(key, RULE)], T0).await.unwrap();
    }
    let later = T0 + RULE.forget_after + Duration::from_secs(1);
    let live = CounterKey::new("acct:live").unwrap();
    store.reserve(&[(live.clone(), RULE)], later).await.unwrap();

    store.purge_expired(later, 3, &Audit::NONE).await.unwrap();
    let report = store.check().unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.counters, 3, "a batch of three went");
    store.purge_expired(later, 100, &Audit::NONE).await.unwrap();
    let report = store.check().unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.counters, 1);
    assert_eq!(store.counter(&live, later).await.unwrap().map(|r| r.count), Some(1));
}
