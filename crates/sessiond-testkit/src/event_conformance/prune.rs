//! The pruning cases of the event-store suite: count and age bounds, and
//! prunes racing each other (see [`super`] for the rules of the suite).

use std::sync::Arc;

use sessiond_core::{EventIds, EventStore, Retention, StoredEvent};
use tokio::sync::Barrier;

use super::{all, at, ids_of, sample_event, stored, tenant};

/// Count pruning keeps each tenant's newest, one tenant or all at once,
/// and a second prune finds nothing to do.
pub async fn event_prune_keeps_each_tenants_newest(store: Arc<dyn EventStore>) {
    let mut ids = EventIds::with_node(6);
    let mut batch = Vec::new();
    for n in 0..10 {
        batch.push(stored(&mut ids, sample_event("acme", n)));
    }
    for n in 0..3 {
        batch.push(stored(&mut ids, sample_event("shop", n)));
    }
    store.append_events(&batch).await.expect("append");
    let keep = |max_events| Retention {
        max_events,
        older_than: at(-1_000),
    };
    let acme_newest = ids_of(&store, "acme", &all()).await;
    let shop_all = ids_of(&store, "shop", &all()).await;
    assert_eq!(
        store.prune_events(Some(&tenant("acme")), keep(4)).await.expect("prune"),
        6
    );
    assert_eq!(ids_of(&store, "acme", &all()).await, acme_newest[..4]);
    assert_eq!(
        ids_of(&store, "shop", &all()).await,
        shop_all,
        "another tenant was pruned"
    );
    assert_eq!(
        store.prune_events(Some(&tenant("acme")), keep(4)).await.expect("again"),
        0
    );
    assert_eq!(store.prune_events(None, keep(2)).await.expect("prune all"), 3);
    assert_eq!(ids_of(&store, "acme", &all()).await, acme_newest[..2]);
    assert_eq!(ids_of(&store, "shop", &all()).await, shop_all[..2]);
    assert_eq!(store.prune_events(None, keep(2)).await.expect("again"), 0);
    assert_eq!(store.prune_events(None, keep(0)).await.expect("prune to none"), 4);
    assert!(ids_of(&store, "acme", &all()).await.is_empty());
}

/// Age pruning removes what is older than the cutoff and keeps an event at
/// the cutoff exactly.
pub async fn event_prune_removes_events_older_than_the_cutoff(store: Arc<dyn EventStore>) {
    let mut ids = EventIds::with_node(7);
    let mut batch = Vec::new();
    for n in 0..8 {
        batch.push(stored(&mut ids, sample_event("acme", n)));
        batch.push(stored(&mut ids, sample_event("shop", n)));
    }
    store.append_events(&batch).await.expect("append");
    let before_five = Retention {
        max_events: 1_000,
        older_than: at(5),
    };
    assert_eq!(
        store
            .prune_events(Some(&tenant("acme")), before_five)
            .await
            .expect("prune"),
        5
    );
    let times = |found: Vec<StoredEvent>| found.into_iter().map(|s| s.event.at).collect::<Vec<_>>();
    let acme = store.query_events(&tenant("acme"), &all()).await.expect("query");
    assert_eq!(times(acme), [at(7), at(6), at(5)]);
    assert_eq!(store.prune_events(None, before_five).await.expect("prune all"), 5);
    let shop = store.query_events(&tenant("shop"), &all()).await.expect("query");
    assert_eq!(times(shop), [at(7), at(6), at(5)]);
    assert_eq!(store.prune_events(None, before_five).await.expect("again"), 0);
}

/// Eight writers append at once while nothing prunes: every event is
/// there. Then four prunes race: together they remove exactly the excess.
pub async fn event_racing_appends_and_prunes_lose_nothing_and_keep_the_bound(store: Arc<dyn EventStore>) {
    let writers = 8u32;
    let barrier = Arc::new(Barrier::new(writers as usize));
    let mut tasks = Vec::new();
    for node in 0..writers {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let mut ids = EventIds::with_node(node);
            barrier.wait().await;
            for batch in 0..5 {
                let events: Vec<StoredEvent> = (0..4)
                    .map(|n| stored(&mut ids, sample_event("acme", batch * 4 + n)))
                    .collect();
                store.append_events(&events).await.expect("append");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    assert_eq!(ids_of(&store, "acme", &all()).await.len(), 160);
    let barrier = Arc::new(Barrier::new(4));
    let mut prunes = Vec::new();
    for _ in 0..4 {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        prunes.push(tokio::spawn(async move {
            barrier.wait().await;
            let retention = Retention {
                max_events: 50,
                older_than: at(-1),
            };
            store.prune_events(None, retention).await.expect("prune")
        }));
    }
    let mut removed = 0;
    for prune in prunes {
        removed += prune.await.expect("prune task");
    }
    assert_eq!(removed, 110);
    assert_eq!(ids_of(&store, "acme", &all()).await.len(), 50);
}
