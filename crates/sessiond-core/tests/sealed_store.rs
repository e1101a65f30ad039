//! SealedSessions and SealedEvents over MemoryStore: the shared suites
//! (sealing must not change what a store does), and what lies in the
//! store underneath (sealed, bound to its record).

use std::sync::Arc;

use sessiond_core::sealing::{DATA_KEY_LEN, Keyring, OpenError};
use sessiond_core::{
    Audit, ClientInfo, EventFilter, EventIds, EventKind, EventStore, MemoryStore, Revocation, RevokeReason,
    SEALED_DATA_MEMBER, SealedEvents, SealedSessions, Sealer, Session, SessionStore, StoreError, StoredEvent,
    SubjectLimit, Tenant,
};
use sessiond_testkit::conformance::{NOW, sample};

fn keyring(keys: &[u8]) -> Arc<Keyring> {
    Arc::new(Keyring::new(keys.iter().map(|&k| [k; DATA_KEY_LEN])).unwrap())
}

fn sealed(inner: &Arc<MemoryStore>, keys: &[u8]) -> SealedSessions {
    let inner = Arc::clone(inner) as Arc<dyn SessionStore>;
    SealedSessions::new(inner, Sealer::new(keyring(keys)))
}

mod conformance {
    use super::*;

    // What a store does; the engine's own keeping of a sealed client is
    // the engines' to show (the wrapper seals what it is given).
    sessiond_testkit::store_conformance!(@behaviour || async {
        Some(Arc::new(sealed(&Arc::new(MemoryStore::new()), &[1])) as Arc<dyn SessionStore>)
    });
    sessiond_testkit::event_store_conformance!(|| async {
        let inner = Arc::new(MemoryStore::new()) as Arc<dyn EventStore>;
        Some(Arc::new(SealedEvents::new(inner, Sealer::new(keyring(&[1])))) as Arc<dyn EventStore>)
    });
    sessiond_testkit::audit_conformance!(|| async {
        let store = Arc::new(MemoryStore::new());
        let sealer = Sealer::new(keyring(&[1]));
        Some((
            Arc::new(SealedSessions::new(
                Arc::clone(&store) as Arc<dyn SessionStore>,
                sealer.clone(),
            )) as Arc<dyn SessionStore>,
            Arc::new(SealedEvents::new(store as Arc<dyn EventStore>, sealer)) as Arc<dyn EventStore>,
        ))
    });
}

const MARKER: &str = "marker-4f1d9c";
const IP: &str = "198.51.100.77";
const AGENT: &str = "Agent/seal-test";
const CREATED_IP: &str = "192.0.2.181";
const CREATED_AGENT: &str = "Agent/created-seal-test";

fn marked(subject: &str) -> Session {
    let mut session = sample("default", subject, NOW);
    session.data.insert("cart".into(), MARKER.into());
    session.client = ClientInfo {
        ip: Some(IP.into()),
        user_agent: Some(AGENT.into()),
        sealed: None,
    };
    session.created_client = ClientInfo {
        ip: Some(CREATED_IP.into()),
        user_agent: Some(CREATED_AGENT.into()),
        sealed: None,
    };
    session
}

async fn insert(store: &dyn SessionStore, session: &Session) {
    let revocation = Revocation {
        at: NOW,
        reason: RevokeReason::Limit,
    };
    store
        .insert(session, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
        .await
        .unwrap();
}

fn shows_nothing(raw: &Session) {
    let text = serde_json::to_string(raw).unwrap();
    for secret in [MARKER, IP, AGENT, CREATED_IP, CREATED_AGENT] {
        assert!(!text.contains(secret), "{secret} in clear in {text}");
    }
    assert_eq!(raw.data.keys().collect::<Vec<_>>(), [SEALED_DATA_MEMBER]);
    for client in [&raw.client, &raw.created_client] {
        assert_eq!((&client.ip, &client.user_agent), (&None, &None));
        assert!(client.sealed.is_some());
    }
    assert_ne!(raw.client.sealed, raw.created_client.sealed);
}

#[tokio::test]
async fn the_store_underneath_holds_no_data_ip_or_user_agent() {
    let raw = Arc::new(MemoryStore::new());
    let store = sealed(&raw, &[1]);
    let session = marked("alice");
    insert(&store, &session).await;
    shows_nothing(&raw.get_by_id(&session.id).await.unwrap().unwrap());
    assert_eq!(*store.get_by_id(&session.id).await.unwrap().unwrap(), session);
    assert_eq!(
        *store.get_by_token(&session.token_hash).await.unwrap().unwrap(),
        session
    );

    let created_before = sealed_created_client(&raw, &session).await;
    assert!(created_before.is_some());

    // A touch seals the new client too.
    let later = NOW + time::Duration::minutes(1);
    let moved = ClientInfo {
        ip: Some("203.0.113.200".into()),
        user_agent: Some(AGENT.into()),
        sealed: None,
    };
    assert!(
        store
            .touch(&session.id, later, later + time::Duration::hours(1), &moved)
            .await
            .unwrap()
    );
    let raw_after = raw.get_by_id(&session.id).await.unwrap().unwrap();
    shows_nothing(&raw_after);
    assert!(!serde_json::to_string(&*raw_after).unwrap().contains("203.0.113.200"));
    // The touch wrote the last-seen client only: the one at creation is
    // the very value sealed at insert.
    assert_eq!(raw_after.created_client.sealed, created_before);
    let read = store.get_by_id(&session.id).await.unwrap().unwrap();
    assert_eq!((&read.client, &read.created_client), (&moved, &session.created_client));
}

/// A session still used from the client that created it (the common case)
/// keeps that client sealed once; it reads back as both, and a touch from
/// elsewhere seals the new client on its own.
#[tokio::test]
async fn a_client_unchanged_since_creation_is_sealed_once() {
    let raw = Arc::new(MemoryStore::new());
    let store = sealed(&raw, &[1]);
    let mut session = marked("carol");
    session.client = session.created_client.clone();
    insert(&store, &session).await;
    let stored = raw.get_by_id(&session.id).await.unwrap().unwrap();
    let text = serde_json::to_string(&*stored).unwrap();
    for secret in [MARKER, CREATED_IP, CREATED_AGENT] {
        assert!(!text.contains(secret), "{secret} in clear in {text}");
    }
    assert_eq!(stored.client.sealed.as_deref(), Some("=created"));
    assert!(
        stored
            .created_client
            .sealed
            .as_deref()
            .is_some_and(|s| s.starts_with("v1."))
    );
    assert_eq!(*store.get_by_id(&session.id).await.unwrap().unwrap(), session);
    let key = Sealer::sealed_by(&stored).unwrap();
    assert!(Sealer::sealed_only_by(&stored, key), "a reseal leaves it alone");

    let later = NOW + time::Duration::minutes(1);
    let moved = ClientInfo {
        ip: Some("203.0.113.201".into()),
        user_agent: Some(CREATED_AGENT.into()),
        sealed: None,
    };
    assert!(
        store
            .touch(&session.id, later, later + time::Duration::hours(1), &moved)
            .await
            .unwrap()
    );
    let stored = raw.get_by_id(&session.id).await.unwrap().unwrap();
    assert!(stored.client.sealed.as_deref().is_some_and(|s| s.starts_with("v1.")));
    let read = store.get_by_id(&session.id).await.unwrap().unwrap();
    assert_eq!((&read.client, &read.created_client), (&moved, &session.created_client));
}

#[tokio::test]
async fn empty_data_is_kept_as_it_is_and_counts_as_sealed() {
    use sessiond_core::Resealed;
    let raw = Arc::new(MemoryStore::new());
    let store = sealed(&raw, &[1]);
    let mut session = marked("erin");
    session.data.clear();
    insert(&store, &session).await;
    let stored = raw.get_by_id(&session.id).await.unwrap().unwrap();
    assert!(stored.data.is_empty(), "{:?}", stored.data);
    assert_eq!(Sealer::sealed_by(&stored), None);
    let key = keyring(&[1]).sealing_key();
    assert!(Sealer::sealed_only_by(&stored, key), "nothing to seal in it");
    assert!(
        !Sealer::sealed_only_by(&stored, keyring(&[2]).sealing_key()),
        "its clients name key 1"
    );
    assert_eq!(store.reseal(&session.id).await.unwrap(), Resealed::Current);
    assert_eq!(*store.get_by_id(&session.id).await.unwrap().unwrap(), session);

    // Data written later is sealed; emptied again, it is `{}` again.
    let mut changed = session.clone();
    changed.data.insert("cart".into(), MARKER.into());
    store.update(&changed, session.version, &Audit::NONE).await.unwrap();
    let stored = raw.get_by_id(&session.id).await.unwrap().unwrap();
    assert_eq!(stored.data.keys().collect::<Vec<_>>(), [SEALED_DATA_MEMBER]);
    assert!(!serde_json::to_string(&*stored).unwrap().contains(MARKER));
    let read = store.get_by_id(&session.id).await.unwrap().unwrap();
    assert_eq!(read.data, changed.data);
    let mut emptied = (*read).clone();
    emptied.data.clear();
    store.update(&emptied, read.version, &Audit::NONE).await.unwrap();
    assert!(raw.get_by_id(&session.id).await.unwrap().unwrap().data.is_empty());
}

/// The sealed created client of `session` as `raw` keeps it.
async fn sealed_created_client(raw: &MemoryStore, session: &Session) -> Option<String> {
    raw.get_by_id(&session.id)
        .await
        .unwrap()
        .unwrap()
        .created_client
        .sealed
        .clone()
}

#[tokio::test]
async fn the_two_clients_of_a_record_cannot_be_swapped() {
    let raw = Arc::new(MemoryStore::new());
    let store = sealed(&raw, &[1]);
    let session = marked("alice");
    insert(&store, &session).await;
    let stored = Session::clone(&raw.get_by_id(&session.id).await.unwrap().unwrap());

    // Someone with write access to the store swaps the sealed values, to
    // make the last-seen client pass for the one at creation.
    for (client, created_client) in [
        (stored.created_client.clone(), stored.client.clone()),
        (stored.client.clone(), stored.client.clone()),
        (stored.created_client.clone(), stored.created_client.clone()),
    ] {
        let mut swapped = stored.clone();
        swapped.client = client;
        swapped.created_client = created_client;
        swapped.version = stored.version + 1;
        raw.update(&swapped, stored.version, &Audit::NONE).await.unwrap();
        let error = store.get_by_id(&session.id).await.unwrap_err();
        let StoreError::Corrupt(cause) = error else {
            panic!("expected a corrupt record, got {error:?}")
        };
        assert_eq!(cause.downcast_ref::<OpenError>(), Some(&OpenError::Forged));
        // Put it back for the next swap.
        raw.update(&stored, swapped.version, &Audit::NONE).await.unwrap();
        assert_eq!(*store.get_by_id(&session.id).await.unwrap().unwrap(), session);
    }
}

#[tokio::test]
async fn a_record_copied_onto_another_id_does_not_open() {
    let raw = Arc::new(MemoryStore::new());
    let store = sealed(&raw, &[1]);
    let original = marked("alice");
    insert(&store, &original).await;
    let stored = raw.get_by_id(&original.id).await.unwrap().unwrap();

    // The attacker writes the sealed fields onto a record of their own.
    let mut theirs = sample("default", "mallory", NOW);
    theirs.data = stored.data.clone();
    theirs.client = stored.client.clone();
    insert(raw.as_ref(), &theirs).await;
    let error = store.get_by_id(&theirs.id).await.unwrap_err();
    let StoreError::Corrupt(cause) = error else {
        panic!("expected a corrupt record, got {error:?}")
    };
    assert_eq!(cause.downcast_ref::<OpenError>(), Some(&OpenError::Forged));

    // Only the client moved: still refused, not shown as someone else's.
    let mut half = sample("default", "mallory", NOW);
    half.client = stored.client.clone();
    insert(&store, &{
        let mut clean = half.clone();
        clean.client = ClientInfo::default();
        clean
    })
    .await;
    raw.touch(
        &half.id,
        NOW + time::Duration::seconds(1),
        NOW + time::Duration::hours(1),
        &stored.client,
    )
    .await
    .unwrap();
    assert!(matches!(store.get_by_id(&half.id).await, Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn keys_rotate_and_a_retired_key_is_named() {
    let raw = Arc::new(MemoryStore::new());
    let session = marked("alice");
    insert(&sealed(&raw, &[1]), &session).await;
    let old = keyring(&[1]).sealing_key();
    assert_eq!(
        Sealer::sealed_by(&raw.get_by_id(&session.id).await.unwrap().unwrap()),
        Some(old)
    );

    let rotated = sealed(&raw, &[2, 1]);
    assert_eq!(*rotated.get_by_id(&session.id).await.unwrap().unwrap(), session);
    let retired = sealed(&raw, &[2]);
    let error = retired.get_by_id(&session.id).await.unwrap_err();
    let StoreError::Corrupt(cause) = error else {
        panic!("expected a corrupt record, got {error:?}")
    };
    assert_eq!(cause.downcast_ref::<OpenError>(), Some(&OpenError::UnknownKey(old)));
}

#[tokio::test]
async fn clear_records_read_and_sealed_ones_need_a_key() {
    let raw = Arc::new(MemoryStore::new());
    let clear = marked("alice");
    insert(raw.as_ref(), &clear).await;
    // Written before encryption was turned on: read as it is.
    assert_eq!(*sealed(&raw, &[1]).get_by_id(&clear.id).await.unwrap().unwrap(), clear);

    let secret = marked("bob");
    insert(&sealed(&raw, &[1]), &secret).await;
    let off = SealedSessions::new(Arc::clone(&raw) as Arc<dyn SessionStore>, Sealer::off());
    assert_eq!(*off.get_by_id(&clear.id).await.unwrap().unwrap(), clear);
    let error = off.get_by_id(&secret.id).await.unwrap_err();
    let StoreError::Corrupt(cause) = error else {
        panic!("expected a corrupt record, got {error:?}")
    };
    assert_eq!(cause.downcast_ref::<OpenError>(), Some(&OpenError::NoKeyring));
}

#[tokio::test]
async fn event_clients_are_sealed_and_bound_to_their_event() {
    let raw = Arc::new(MemoryStore::new());
    let events = SealedEvents::new(Arc::clone(&raw) as Arc<dyn EventStore>, Sealer::new(keyring(&[1])));
    let ids = EventIds::new().unwrap();
    let tenant = Tenant::new("default").unwrap();
    let session = marked("alice");
    let event = sessiond_core::Event {
        at: NOW,
        kind: EventKind::Created,
        tenant: tenant.clone(),
        session_id: Some(session.id.clone()),
        subject: Some(session.subject.clone()),
        client: Some(session.client.clone()),
        count: 1,
    };
    let stored = StoredEvent {
        id: ids.next_id(NOW),
        event,
    };
    events.append_events(std::slice::from_ref(&stored)).await.unwrap();
    let filter = EventFilter {
        limit: 10,
        ..EventFilter::default()
    };
    let raw_events = raw.query_events(&tenant, &filter).await.unwrap();
    let text = format!("{raw_events:?}");
    assert!(!text.contains(IP) && !text.contains(AGENT), "{text}");
    assert_eq!(
        events.query_events(&tenant, &filter).await.unwrap(),
        std::slice::from_ref(&stored)
    );

    // The sealed client under another event's id does not open.
    let mut moved = raw_events[0].clone();
    moved.id = ids.next_id(NOW);
    raw.append_events(&[moved]).await.unwrap();
    assert!(matches!(
        events.query_events(&tenant, &filter).await,
        Err(sessiond_core::EventStoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn reseal_moves_records_to_the_sealing_key_and_keeps_their_version() {
    use sessiond_core::{ResealError, Resealed};
    let raw = Arc::new(MemoryStore::new());
    let old = marked("alice");
    insert(&sealed(&raw, &[1]), &old).await;
    let clear = marked("bob");
    insert(raw.as_ref(), &clear).await;

    let rotated = sealed(&raw, &[2, 1]);
    let new_key = keyring(&[2]).sealing_key();
    for session in [&old, &clear] {
        assert_eq!(rotated.reseal(&session.id).await.unwrap(), Resealed::Rewritten);
        let stored = raw.get_by_id(&session.id).await.unwrap().unwrap();
        assert_eq!(Sealer::sealed_by(&stored), Some(new_key));
        assert_eq!(stored.version, session.version, "a reseal is not a change");
        shows_nothing(&stored);
        assert_eq!(rotated.reseal(&session.id).await.unwrap(), Resealed::Current);
        // The retired key can go.
        assert_eq!(
            *sealed(&raw, &[2]).get_by_id(&session.id).await.unwrap().unwrap(),
            *session
        );
    }

    let gone = sample("default", "carol", NOW);
    assert_eq!(rotated.reseal(&gone.id).await.unwrap(), Resealed::Gone);
    let stranded = marked("dave");
    insert(&sealed(&raw, &[3]), &stranded).await;
    let error = rotated.reseal(&stranded.id).await.unwrap_err();
    assert!(
        matches!(&error, ResealError::Unopenable { id, source: OpenError::UnknownKey(_) } if *id == stranded.id),
        "{error:?}"
    );
    let off = SealedSessions::new(Arc::clone(&raw) as Arc<dyn SessionStore>, Sealer::off());
    assert!(matches!(off.reseal(&old.id).await, Err(ResealError::NoKeyring)));
}

#[tokio::test]
async fn reseal_rewrites_a_record_whose_created_client_alone_is_under_a_retired_key() {
    use sessiond_core::Resealed;
    let raw = Arc::new(MemoryStore::new());
    let session = marked("alice");
    insert(&sealed(&raw, &[2]), &session).await;
    // The same record sealed by the old key elsewhere: its created client,
    // bound to the same id, opens here.
    let elsewhere = Arc::new(MemoryStore::new());
    insert(&sealed(&elsewhere, &[1]), &session).await;
    let old_created = elsewhere
        .get_by_id(&session.id)
        .await
        .unwrap()
        .unwrap()
        .created_client
        .clone();
    let mut mixed = Session::clone(&raw.get_by_id(&session.id).await.unwrap().unwrap());
    mixed.created_client = old_created;
    raw.update(&mixed, session.version, &Audit::NONE).await.unwrap();

    let (old_key, new_key) = (keyring(&[1]).sealing_key(), keyring(&[2]).sealing_key());
    let stored = raw.get_by_id(&session.id).await.unwrap().unwrap();
    assert_eq!(Sealer::sealed_by(&stored), Some(new_key));
    assert!(!Sealer::sealed_only_by(&stored, new_key));
    let created_by = stored
        .created_client
        .sealed
        .as_deref()
        .and_then(sessiond_core::sealing::sealed_by);
    assert_eq!(created_by, Some(old_key));
    // Without the old key the record does not open: its created client is
    // what holds it back.
    assert!(sealed(&raw, &[2]).get_by_id(&session.id).await.is_err());

    let rotated = sealed(&raw, &[2, 1]);
    assert_eq!(rotated.reseal(&session.id).await.unwrap(), Resealed::Rewritten);
    let stored = raw.get_by_id(&session.id).await.unwrap().unwrap();
    assert!(Sealer::sealed_only_by(&stored, new_key));
    shows_nothing(&stored);
    assert_eq!(rotated.reseal(&session.id).await.unwrap(), Resealed::Current);
    assert_eq!(
        *sealed(&raw, &[2]).get_by_id(&session.id).await.unwrap().unwrap(),
        session
    );
}

#[tokio::test]
async fn a_written_record_whose_clients_do_not_open_comes_back_without_them() {
    let raw = Arc::new(MemoryStore::new());
    let session = marked("alice");
    insert(&sealed(&raw, &[1]), &session).await;
    // Only the created client is under a key the reader lacks.
    let elsewhere = Arc::new(MemoryStore::new());
    insert(&sealed(&elsewhere, &[3]), &session).await;
    let mut mixed = Session::clone(&raw.get_by_id(&session.id).await.unwrap().unwrap());
    mixed.created_client = elsewhere
        .get_by_id(&session.id)
        .await
        .unwrap()
        .unwrap()
        .created_client
        .clone();
    raw.update(&mixed, session.version, &Audit::NONE).await.unwrap();

    let how = Revocation {
        at: NOW,
        reason: RevokeReason::Admin,
    };
    let revoked = sealed(&raw, &[1])
        .revoke(&session.id, how, &Audit::NONE)
        .await
        .unwrap()
        .unwrap();
    // The revocation is done and reported; nothing sealed is shown sealed.
    assert_eq!(revoked.revoked, Some(how));
    assert_eq!(revoked.data, serde_json::Map::new());
    assert_eq!(revoked.client, ClientInfo::default());
    assert_eq!(revoked.created_client, ClientInfo::default());
    assert_eq!(raw.get_by_id(&session.id).await.unwrap().unwrap().revoked, Some(how));
}
