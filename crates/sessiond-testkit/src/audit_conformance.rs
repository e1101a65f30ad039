//! The audit conformance suite: each session write stores the events of
//! its [`Audit`] with the change, and only when it makes one (the rules on
//! [`SessionStore`]).
//!
//! The factory gives the same store twice, as the session store written to
//! and as the event store read back:
//!
//! ```ignore
//! sessiond_testkit::audit_conformance!(|| async {
//!     let store = Arc::new(MyStore::open().await);
//!     Some((Arc::clone(&store) as Arc<dyn SessionStore>, store as Arc<dyn EventStore>))
//! });
//! ```
//!
//! A store stores the events in the same atomic step as the change; no
//! test from outside can see the difference between that and "just after",
//! so the cases check what can be seen: the right events, exactly, for
//! every write that changes something, and none for any that does not.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    Audit, Event, EventFilter, EventIds, EventKind, EventStore, Picked, Revocation, RevokeReason, Session,
    SessionStore, StoreError, StoredEvent, Subject, SubjectLimit, Tenant,
};

use crate::conformance::{NOW, placed, sample_in};

/// Generates one `#[tokio::test]` per case, each on a fresh store from
/// `$factory` (callable as `$factory().await`, giving an `Option` of the
/// store as `(Arc<dyn SessionStore>, Arc<dyn EventStore>)`; `None` skips).
#[macro_export]
macro_rules! audit_conformance {
    ($factory:expr) => {
        $crate::audit_conformance!(@cases $factory;
            audit_insert_stores_its_event_and_one_per_eviction,
            audit_a_refused_insert_stores_nothing,
            audit_update_stores_its_event_only_when_it_writes,
            audit_revoke_stores_its_event_only_when_it_revokes,
            audit_revoke_subject_stores_one_event_per_revoked_session,
            audit_purge_stores_one_event_per_unrevoked_record,
            audit_none_stores_nothing,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let stores: ::std::option::Option<(
                    ::std::sync::Arc<dyn ::sessiond_core::SessionStore>,
                    ::std::sync::Arc<dyn ::sessiond_core::EventStore>,
                )> = ($factory)().await;
                let ::std::option::Option::Some((sessions, events)) = stores else {
                    ::std::eprintln!("SKIPPED conformance case {}: no store", ::std::stringify!($case));
                    return;
                };
                $crate::audit_conformance::$case(sessions, events).await;
            }
        )+
    };
}

/// A subject read from an old record, with characters an engine that
/// writes the event JSON itself must escape.
fn awkward_subject() -> Subject {
    Subject::from_record("ann \"o'/\\ \u{e9}\u{1f600}").expect("a stored subject")
}

fn acme() -> Tenant {
    Tenant::new("acme").expect("valid tenant")
}

fn revocation(reason: RevokeReason) -> Revocation {
    Revocation { at: NOW, reason }
}

fn event(kind: EventKind, session: &Session) -> Event {
    Event {
        at: NOW,
        kind,
        tenant: session.tenant.clone(),
        session_id: Some(session.id.clone()),
        subject: Some(session.subject.clone()),
        client: None,
        count: 1,
    }
}

/// An audit of `known` events, with a picked template when `picked` names
/// a kind.
fn audit(ids: &EventIds, known: Vec<Event>, picked: Option<EventKind>) -> Audit {
    Audit {
        picked: picked.map(|kind| Picked {
            at: NOW,
            kind,
            ids: ids.reserve(NOW),
        }),
        events: known
            .into_iter()
            .map(|event| StoredEvent {
                id: ids.next_id(event.at),
                event,
            })
            .collect(),
    }
}

async fn all(events: &Arc<dyn EventStore>, tenant: &Tenant) -> Vec<StoredEvent> {
    let filter = EventFilter {
        limit: 10_000,
        ..EventFilter::default()
    };
    let mut found = events.query_events(tenant, &filter).await.expect("query");
    found.reverse();
    found
}

async fn put(sessions: &Arc<dyn SessionStore>, session: &Session) {
    let revocation = revocation(RevokeReason::Limit);
    sessions
        .insert(session, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
        .await
        .expect("insert");
}

/// The picked events stored for `records`: each has the id of one slot of
/// the block (the engine chooses the order), and together they name
/// exactly the records, each with the picked event for it.
fn assert_picked(found: &[StoredEvent], audit: &Audit, records: &[Session]) {
    let picked = audit.picked.expect("a picked template");
    assert_eq!(found.len(), records.len(), "one event per picked record: {found:?}");
    let slots: BTreeSet<_> = (0..records.len()).map(|i| picked.ids.id(i)).collect();
    let ids: BTreeSet<_> = found.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ids, slots, "picked events take the first ids of the block");
    for record in records {
        let stored = found
            .iter()
            .find(|e| e.event.session_id.as_ref() == Some(&record.id))
            .unwrap_or_else(|| panic!("no event for {}", record.id));
        assert_eq!(stored.event, picked.event(0, record).event);
    }
}

/// An insert that evicts stores the caller's `created` event and one
/// `revoked` per evicted session, written by the engine.
pub async fn audit_insert_stores_its_event_and_one_per_eviction(
    sessions: Arc<dyn SessionStore>,
    events: Arc<dyn EventStore>,
) {
    let ids = EventIds::with_node(11);
    let mut first = sample_in(&sessions, "acme", "placeholder", NOW - Duration::from_secs(20));
    first.subject = awkward_subject();
    let first = placed(&sessions, first);
    let mut second = sample_in(&sessions, "acme", "placeholder", NOW - Duration::from_secs(10));
    second.subject = awkward_subject();
    let second = placed(&sessions, second);
    put(&sessions, &first).await;
    put(&sessions, &second).await;
    assert!(all(&events, &acme()).await.is_empty(), "Audit::NONE stores nothing");

    let mut third = sample_in(&sessions, "acme", "placeholder", NOW);
    third.subject = awkward_subject();
    let third = placed(&sessions, third);
    let created = event(EventKind::Created, &third);
    let audit = audit(&ids, vec![created], Some(EventKind::Revoked(RevokeReason::Limit)));
    let inserted = sessions
        .insert(
            &third,
            SubjectLimit::EvictOldest(2),
            NOW,
            revocation(RevokeReason::Limit),
            &audit,
        )
        .await
        .expect("insert");
    assert_eq!(inserted.evicted.len(), 1);
    assert_eq!(inserted.evicted[0].id, first.id);

    let found = all(&events, &acme()).await;
    let (known, picked): (Vec<_>, Vec<_>) = found.into_iter().partition(|e| e.id == audit.events[0].id);
    assert_eq!(known, audit.events, "the known event, exactly as given");
    assert_picked(&picked, &audit, &inserted.evicted);
}

/// A collision or a denied limit writes nothing: no event either.
pub async fn audit_a_refused_insert_stores_nothing(sessions: Arc<dyn SessionStore>, events: Arc<dyn EventStore>) {
    let ids = EventIds::with_node(12);
    let existing = sample_in(&sessions, "acme", "bob", NOW);
    put(&sessions, &existing).await;

    let mut twin = sample_in(&sessions, "acme", "bob", NOW);
    twin.id = existing.id.clone();
    let collides = audit(&ids, vec![event(EventKind::Created, &twin)], None);
    let refused = sessions
        .insert(
            &twin,
            SubjectLimit::Unlimited,
            NOW,
            revocation(RevokeReason::Limit),
            &collides,
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Collision)), "{refused:?}");

    let over = sample_in(&sessions, "acme", "bob", NOW);
    let denied = audit(
        &ids,
        vec![event(EventKind::Created, &over)],
        Some(EventKind::Revoked(RevokeReason::Limit)),
    );
    let refused = sessions
        .insert(
            &over,
            SubjectLimit::Deny(1),
            NOW,
            revocation(RevokeReason::Limit),
            &denied,
        )
        .await;
    assert!(matches!(refused, Err(StoreError::LimitReached)), "{refused:?}");

    assert!(all(&events, &acme()).await.is_empty());
}

/// A compare-and-set that loses stores nothing; one that writes stores its
/// event.
pub async fn audit_update_stores_its_event_only_when_it_writes(
    sessions: Arc<dyn SessionStore>,
    events: Arc<dyn EventStore>,
) {
    let ids = EventIds::with_node(13);
    let session = sample_in(&sessions, "acme", "carol", NOW);
    put(&sessions, &session).await;
    let mut next = session.clone();
    next.version = 2;
    next.data.insert("step".into(), serde_json::json!(2));

    let stale = audit(&ids, vec![event(EventKind::DataUpdated, &next)], None);
    let lost = sessions.update(&next, 7, &stale).await;
    assert!(
        matches!(lost, Err(StoreError::VersionConflict { current: 1 })),
        "{lost:?}"
    );
    assert!(all(&events, &acme()).await.is_empty());

    let written = audit(&ids, vec![event(EventKind::Rotated, &next)], None);
    sessions.update(&next, 1, &written).await.expect("update");
    assert_eq!(all(&events, &acme()).await, written.events);
}

/// The first revocation stores its event; a second one of the same session,
/// or one of an unknown id, changes nothing and stores nothing.
pub async fn audit_revoke_stores_its_event_only_when_it_revokes(
    sessions: Arc<dyn SessionStore>,
    events: Arc<dyn EventStore>,
) {
    let ids = EventIds::with_node(14);
    let mut session = sample_in(&sessions, "acme", "placeholder", NOW);
    session.subject = awkward_subject();
    let session = placed(&sessions, session);
    put(&sessions, &session).await;

    let first = audit(
        &ids,
        vec![event(EventKind::Revoked(RevokeReason::Logout), &session)],
        None,
    );
    let revoked = sessions
        .revoke(&session.id, revocation(RevokeReason::Logout), &first)
        .await
        .expect("revoke");
    assert!(revoked.is_some());
    let again = audit(
        &ids,
        vec![event(EventKind::Revoked(RevokeReason::Admin), &session)],
        None,
    );
    let revoked = sessions
        .revoke(&session.id, revocation(RevokeReason::Admin), &again)
        .await
        .expect("revoke");
    assert!(revoked.is_none());
    let unknown = sample_in(&sessions, "acme", "dave", NOW);
    let missing = audit(
        &ids,
        vec![event(EventKind::Revoked(RevokeReason::Admin), &unknown)],
        None,
    );
    let revoked = sessions
        .revoke(&unknown.id, revocation(RevokeReason::Admin), &missing)
        .await
        .expect("revoke");
    assert!(revoked.is_none());

    assert_eq!(all(&events, &acme()).await, first.events);
}

/// "Sign out everywhere else" stores one `revoked` per session it ends (not
/// the one it spares, not another subject's), and nothing when it ends none.
pub async fn audit_revoke_subject_stores_one_event_per_revoked_session(
    sessions: Arc<dyn SessionStore>,
    events: Arc<dyn EventStore>,
) {
    let ids = EventIds::with_node(15);
    let mut mine = Vec::new();
    for age in [30, 20, 10] {
        let mut session = sample_in(&sessions, "acme", "placeholder", NOW - Duration::from_secs(age));
        session.subject = awkward_subject();
        let session = placed(&sessions, session);
        put(&sessions, &session).await;
        mine.push(session);
    }
    let other = sample_in(&sessions, "acme", "erin", NOW);
    put(&sessions, &other).await;

    let reason = RevokeReason::PasswordChange;
    let everywhere = audit(&ids, Vec::new(), Some(EventKind::Revoked(reason)));
    let revoked = sessions
        .revoke_subject(
            &acme(),
            &awkward_subject(),
            Some(&mine[1].id),
            revocation(reason),
            NOW,
            &everywhere,
        )
        .await
        .expect("revoke subject");
    assert_eq!(revoked.len(), 2);
    assert_picked(&all(&events, &acme()).await, &everywhere, &revoked);

    let nothing_left = audit(&ids, Vec::new(), Some(EventKind::Revoked(reason)));
    let revoked = sessions
        .revoke_subject(
            &acme(),
            &awkward_subject(),
            Some(&mine[1].id),
            revocation(reason),
            NOW,
            &nothing_left,
        )
        .await
        .expect("revoke subject");
    assert!(revoked.is_empty());
    assert_eq!(all(&events, &acme()).await.len(), 2, "no event for a no-op");
}

/// A purge stores one `expired_purged` per removed record that was still
/// live when it expired, in the record's own tenant, and none for
/// tombstones (their end was recorded when they were revoked).
pub async fn audit_purge_stores_one_event_per_unrevoked_record(
    sessions: Arc<dyn SessionStore>,
    events: Arc<dyn EventStore>,
) {
    let ids = EventIds::with_node(16);
    // Idle for 30 minutes from NOW, so expired an hour later; every record
    // is inserted before its deadline, as engines with native expiry need.
    let later = NOW + Duration::from_secs(3600);
    let mut expired = sample_in(&sessions, "acme", "placeholder", NOW);
    expired.subject = awkward_subject();
    let expired = placed(&sessions, expired);
    let elsewhere = sample_in(&sessions, "globex", "frank", NOW);
    let tombstone = sample_in(&sessions, "acme", "grace", NOW);
    let mut live = sample_in(&sessions, "acme", "heidi", NOW);
    live.idle_expires_at = NOW + Duration::from_secs(2 * 3600);
    // A visitor's anonymous session: its event names nobody.
    let mut visitor = sample_in(&sessions, "acme", "placeholder", NOW);
    visitor.subject = Subject::anonymous();
    let visitor = placed(&sessions, visitor);
    for session in [&expired, &elsewhere, &tombstone, &live, &visitor] {
        put(&sessions, session).await;
    }
    sessions
        .revoke(&tombstone.id, revocation(RevokeReason::Logout), &Audit::NONE)
        .await
        .expect("revoke");

    let purge = audit(&ids, Vec::new(), Some(EventKind::ExpiredPurged));
    let purged = sessions.purge_expired(later, 100, &purge).await.expect("purge");
    assert_eq!(purged.len(), 4);
    let unrevoked: Vec<Session> = purged.into_iter().filter(|s| s.revoked.is_none()).collect();
    let mut found = all(&events, &acme()).await;
    found.extend(all(&events, &Tenant::new("globex").expect("valid tenant")).await);
    assert_picked(&found, &purge, &unrevoked);
    let anonymous = found
        .iter()
        .find(|e| e.event.session_id.as_ref() == Some(&visitor.id))
        .expect("the visitor's event");
    assert_eq!(anonymous.event.subject, None);
}

/// With [`Audit::NONE`] no write stores an event.
pub async fn audit_none_stores_nothing(sessions: Arc<dyn SessionStore>, events: Arc<dyn EventStore>) {
    let session = sample_in(&sessions, "acme", "ivan", NOW);
    let unrevoked = sample_in(&sessions, "acme", "judy", NOW);
    put(&sessions, &session).await;
    put(&sessions, &unrevoked).await;
    let mut next = session.clone();
    next.version = 2;
    sessions.update(&next, 1, &Audit::NONE).await.expect("update");
    let subject = session.subject.clone();
    let revocation = revocation(RevokeReason::Admin);
    sessions
        .revoke_subject(&acme(), &subject, None, revocation, NOW, &Audit::NONE)
        .await
        .expect("revoke subject");
    let later = NOW + Duration::from_secs(3600);
    let purged = sessions.purge_expired(later, 100, &Audit::NONE).await.expect("purge");
    assert_eq!(purged.len(), 2);
    assert!(all(&events, &acme()).await.is_empty());
}
