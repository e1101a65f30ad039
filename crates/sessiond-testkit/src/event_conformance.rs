//! The event-store conformance suite: the written semantics of
//! [`EventStore`], checked.
//!
//! Every backend runs all of it, unchanged, with one line:
//!
//! ```ignore
//! sessiond_testkit::event_store_conformance!(|| async { Some(Arc::new(MyStore::open().await) as Arc<dyn EventStore>) });
//! ```
//!
//! The factory follows the rules of
//! [`user_store_conformance!`](crate::user_store_conformance): a fresh,
//! empty store per case, or `None` (after the factory said why) when its
//! engine is missing; never another store instead. Case names start with
//! `event_`, so the suites can share a module.

use std::sync::Arc;

use sessiond_core::{
    Aal, ClientInfo, Event, EventFilter, EventId, EventIds, EventKind, EventStore, Rejection, Retention, RevokeReason,
    SessionId, StoredEvent, Subject, Tenant,
};
use time::{Duration, OffsetDateTime};

mod prune;
pub use prune::{
    event_prune_keeps_each_tenants_newest, event_prune_removes_events_older_than_the_cutoff,
    event_racing_appends_and_prunes_lose_nothing_and_keep_the_bound,
};

/// Generates one `#[tokio::test]` per conformance case, each on a fresh store
/// from `$factory` (an expression callable as `$factory().await` that gives
/// an `Option` of the store; `None` skips the case).
#[macro_export]
macro_rules! event_store_conformance {
    ($factory:expr) => {
        $crate::event_store_conformance!(@cases $factory;
            event_an_empty_store_has_nothing_to_show_or_prune,
            event_append_stores_every_field_as_given,
            event_query_is_newest_first_by_id_whatever_the_append_order,
            event_tenants_never_see_each_others_events,
            event_filters_combine_subject_session_and_kind,
            event_before_pages_walk_every_event_once,
            event_an_id_already_stored_is_skipped_not_overwritten,
            event_prune_keeps_each_tenants_newest,
            event_prune_removes_events_older_than_the_cutoff,
            event_racing_appends_and_prunes_lose_nothing_and_keep_the_bound,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: ::std::option::Option<::std::sync::Arc<dyn ::sessiond_core::EventStore>> = ($factory)().await;
                let ::std::option::Option::Some(store) = store else {
                    // The factory said why (see `sessiond_testkit::env::required`).
                    ::std::eprintln!("SKIPPED conformance case {}: no store", ::std::stringify!($case));
                    return;
                };
                $crate::event_conformance::$case(store).await;
            }
        )+
    };
}

/// A fixed instant, whole seconds, so every engine stores it exactly.
pub fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_780_000_000 + seconds)
}

/// A `created` event of `tenant` at `at(seconds)`, with no session.
pub fn sample_event(tenant: &str, seconds: i64) -> Event {
    Event {
        at: at(seconds),
        kind: EventKind::Created,
        tenant: Tenant::new(tenant).expect("valid tenant"),
        session_id: None,
        subject: None,
        client: None,
        count: 1,
    }
}

/// `event` with the id writer `ids` gives it.
pub fn stored(ids: &mut EventIds, event: Event) -> StoredEvent {
    StoredEvent {
        id: ids.next_id(event.at),
        event,
    }
}

pub(crate) fn tenant(name: &str) -> Tenant {
    Tenant::new(name).expect("valid tenant")
}

pub(crate) fn all() -> EventFilter {
    EventFilter {
        limit: 10_000,
        ..EventFilter::default()
    }
}

pub(crate) async fn ids_of(store: &Arc<dyn EventStore>, tenant_name: &str, filter: &EventFilter) -> Vec<EventId> {
    let found = store.query_events(&tenant(tenant_name), filter).await.expect("query");
    found.into_iter().map(|s| s.id).collect()
}

/// Sorted newest first, as a query answers.
fn newest_first(mut events: Vec<StoredEvent>) -> Vec<StoredEvent> {
    events.sort_by(|a, b| b.id.cmp(&a.id));
    events
}

/// Nothing to show in a new store; pruning it and appending nothing work.
pub async fn event_an_empty_store_has_nothing_to_show_or_prune(store: Arc<dyn EventStore>) {
    assert!(
        store
            .query_events(&tenant("acme"), &all())
            .await
            .expect("query")
            .is_empty()
    );
    store.append_events(&[]).await.expect("append nothing");
    let retention = Retention {
        max_events: 0,
        older_than: at(1_000),
    };
    assert_eq!(store.prune_events(None, retention).await.expect("prune"), 0);
    assert_eq!(
        store
            .prune_events(Some(&tenant("acme")), retention)
            .await
            .expect("prune"),
        0
    );
    assert!(
        store
            .query_events(&tenant("acme"), &all())
            .await
            .expect("query")
            .is_empty()
    );
}

/// Every field, optional ones set and unset, reads back as written.
pub async fn event_append_stores_every_field_as_given(store: Arc<dyn EventStore>) {
    let mut ids = EventIds::with_node(1);
    let plain = stored(&mut ids, sample_event("acme", 1));
    let mut full = sample_event("acme", 2);
    full.kind = EventKind::Elevated { aal: Aal::AAL2 };
    full.session_id = Some(SessionId::generate().expect("id"));
    full.subject = Some(Subject::new("user-42@ünïcode.example").expect("subject"));
    full.client = Some(ClientInfo {
        ip: Some("2001:db8::1".to_owned()),
        user_agent: Some("Mozilla/5.0 \"quoted\"".to_owned()),
        sealed: None,
    });
    let full = stored(&mut ids, full);
    let mut counted = sample_event("acme", 3);
    counted.kind = EventKind::VerifyFailed(Rejection::Unknown);
    counted.count = 1_199;
    counted.at += Duration::microseconds(123_456);
    let counted = stored(&mut ids, counted);
    let batch = vec![plain, full, counted];
    store.append_events(&batch).await.expect("append");
    let found = store.query_events(&tenant("acme"), &all()).await.expect("query");
    assert_eq!(found, newest_first(batch));
}

/// Order is by id, newest first, not by the order of appends; ids of one
/// microsecond keep their writer's sequence.
pub async fn event_query_is_newest_first_by_id_whatever_the_append_order(store: Arc<dyn EventStore>) {
    let mut a = EventIds::with_node(0xa);
    let mut b = EventIds::with_node(0xb);
    let mut events = Vec::new();
    for seconds in [5, 1, 9, 3] {
        events.push(stored(&mut a, sample_event("acme", seconds)));
    }
    // Three of one instant from one writer, and one from another writer.
    for _ in 0..3 {
        events.push(stored(&mut a, sample_event("acme", 7)));
    }
    events.push(stored(&mut b, sample_event("acme", 7)));
    for chunk in [&events[4..], &events[..2], &events[2..4]] {
        store.append_events(chunk).await.expect("append");
    }
    let found = store.query_events(&tenant("acme"), &all()).await.expect("query");
    assert_eq!(found, newest_first(events.clone()));
    let at_seven: Vec<_> = found.iter().filter(|s| s.event.at == at(7)).map(|s| &s.id).collect();
    assert_eq!(at_seven.len(), 4);
    assert!(at_seven.windows(2).all(|w| w[0] > w[1]));
    let limited = EventFilter { limit: 2, ..all() };
    assert_eq!(
        ids_of(&store, "acme", &limited).await,
        [found[0].id.clone(), found[1].id.clone()]
    );
    let none = EventFilter { limit: 0, ..all() };
    assert!(ids_of(&store, "acme", &none).await.is_empty());
}

/// A batch may mix tenants; each tenant reads only its own.
pub async fn event_tenants_never_see_each_others_events(store: Arc<dyn EventStore>) {
    let mut ids = EventIds::with_node(2);
    let batch: Vec<StoredEvent> = (0..6)
        .map(|n| stored(&mut ids, sample_event(["acme", "shop", "acme-2"][n % 3], n as i64)))
        .collect();
    store.append_events(&batch).await.expect("append");
    for name in ["acme", "shop", "acme-2"] {
        let found = store.query_events(&tenant(name), &all()).await.expect("query");
        let mine: Vec<StoredEvent> = batch
            .iter()
            .filter(|s| s.event.tenant.as_str() == name)
            .cloned()
            .collect();
        assert_eq!(found, newest_first(mine), "{name}");
    }
    assert!(ids_of(&store, "acm", &all()).await.is_empty());
}

/// Subject, session and kind filter alone and together.
pub async fn event_filters_combine_subject_session_and_kind(store: Arc<dyn EventStore>) {
    let mut ids = EventIds::with_node(3);
    let alice = Subject::new("alice").expect("subject");
    let session = SessionId::generate().expect("id");
    let mut events = Vec::new();
    for (n, (subject, with_session, kind)) in [
        (Some(&alice), true, EventKind::Created),
        (Some(&alice), true, EventKind::Revoked(RevokeReason::Logout)),
        (Some(&alice), false, EventKind::Revoked(RevokeReason::Admin)),
        (None, false, EventKind::VerifyFailed(Rejection::Malformed)),
        (Some(&alice), true, EventKind::Touched),
    ]
    .into_iter()
    .enumerate()
    {
        let mut event = sample_event("acme", n as i64);
        event.subject = subject.cloned();
        event.session_id = with_session.then(|| session.clone());
        event.kind = kind;
        events.push(stored(&mut ids, event));
    }
    store.append_events(&events).await.expect("append");
    let pick = |indexes: &[usize]| -> Vec<EventId> { indexes.iter().rev().map(|&i| events[i].id.clone()).collect() };
    let by_subject = EventFilter {
        subject: Some(alice.clone()),
        ..all()
    };
    assert_eq!(ids_of(&store, "acme", &by_subject).await, pick(&[0, 1, 2, 4]));
    let by_session = EventFilter {
        session_id: Some(session.clone()),
        ..all()
    };
    assert_eq!(ids_of(&store, "acme", &by_session).await, pick(&[0, 1, 4]));
    let by_kind = EventFilter {
        kind: Some("revoked"),
        ..all()
    };
    assert_eq!(ids_of(&store, "acme", &by_kind).await, pick(&[1, 2]));
    let together = EventFilter {
        subject: Some(alice),
        session_id: Some(session),
        kind: Some("revoked"),
        limit: 10,
        before: None,
    };
    assert_eq!(ids_of(&store, "acme", &together).await, pick(&[1]));
    let nobody = EventFilter {
        subject: Some(Subject::new("bob").expect("subject")),
        ..all()
    };
    assert!(ids_of(&store, "acme", &nobody).await.is_empty());
}

/// Pages chained by `before` give every event once, in order, even when
/// newer events arrive mid-walk; `before` combines with the filters.
pub async fn event_before_pages_walk_every_event_once(store: Arc<dyn EventStore>) {
    let mut ids = EventIds::with_node(4);
    let mut events = Vec::new();
    for n in 0..23 {
        let mut event = sample_event("acme", n / 2);
        if n % 3 == 0 {
            event.kind = EventKind::Rotated;
        }
        events.push(stored(&mut ids, event));
    }
    store.append_events(&events).await.expect("append");
    let expected: Vec<EventId> = newest_first(events).into_iter().map(|s| s.id).collect();
    let mut walked = Vec::new();
    let mut before = None;
    loop {
        let page = ids_of(
            &store,
            "acme",
            &EventFilter {
                before,
                limit: 5,
                ..all()
            },
        )
        .await;
        if walked.is_empty() {
            // A newer event mid-walk stays out of it.
            let late = stored(&mut ids, sample_event("acme", 100));
            store.append_events(&[late]).await.expect("append");
        }
        let Some(last) = page.last().cloned() else { break };
        assert!(page.len() <= 5);
        walked.extend(page);
        before = Some(last);
    }
    assert_eq!(walked, expected);
    let rotated: Vec<EventId> = {
        let first = EventFilter {
            kind: Some("rotated"),
            limit: 3,
            ..all()
        };
        let page = ids_of(&store, "acme", &first).await;
        let next = EventFilter {
            kind: Some("rotated"),
            before: page.last().cloned(),
            ..all()
        };
        page.into_iter().chain(ids_of(&store, "acme", &next).await).collect()
    };
    assert_eq!(rotated.len(), 8, "{rotated:?}");
    assert!(rotated.windows(2).all(|w| w[0] > w[1]));
}

/// Appending an id that is stored keeps the stored event; the rest of the
/// batch is written.
pub async fn event_an_id_already_stored_is_skipped_not_overwritten(store: Arc<dyn EventStore>) {
    let mut ids = EventIds::with_node(5);
    let first = stored(&mut ids, sample_event("acme", 1));
    store.append_events(std::slice::from_ref(&first)).await.expect("append");
    let mut imposter = first.clone();
    imposter.event.kind = EventKind::Touched;
    let fresh = stored(&mut ids, sample_event("acme", 2));
    store
        .append_events(&[imposter, fresh.clone(), first.clone()])
        .await
        .expect("append again");
    let found = store.query_events(&tenant("acme"), &all()).await.expect("query");
    assert_eq!(found, vec![fresh, first]);
}
