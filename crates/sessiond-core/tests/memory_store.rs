//! MemoryStore against the shared conformance suites (sessions, users,
//! secrets, counters, keys, events and the events of session writes) and the lifecycle model.

use std::sync::Arc;

use sessiond_core::{CounterStore, EventStore, KeyStore, MemoryStore, SecretStore, SessionStore, UserStore};

sessiond_testkit::store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>) });
sessiond_testkit::user_store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn UserStore>) });
sessiond_testkit::secret_store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn SecretStore>) });
sessiond_testkit::counter_store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn CounterStore>) });
sessiond_testkit::key_store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn KeyStore>) });
sessiond_testkit::event_store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn EventStore>) });
sessiond_testkit::audit_conformance!(|| async {
    let store = Arc::new(MemoryStore::new());
    Some((
        Arc::clone(&store) as Arc<dyn SessionStore>,
        store as Arc<dyn EventStore>,
    ))
});

#[test]
fn manager_over_memory_store_agrees_with_the_model() {
    sessiond_testkit::model::check_manager_against_model(2000, || Arc::new(MemoryStore::new()));
}

/// The same session and audit suites, and the model, over a MemoryStore
/// held to the placement a sharded store needs (64 shards): what the suites
/// and the manager write falls in one shard per record
/// (`sessiond_testkit::sharded`).
mod sharded {
    use std::sync::Arc;

    use sessiond_core::{EventStore, MemoryStore, SessionStore};
    use sessiond_testkit::sharded::Sharded;

    sessiond_testkit::store_conformance!(|| async { Some(Sharded::strictest(Arc::new(MemoryStore::new()))) });
    sessiond_testkit::audit_conformance!(|| async {
        let store = Arc::new(MemoryStore::new());
        Some((
            Sharded::strictest(Arc::clone(&store) as Arc<dyn SessionStore>),
            store as Arc<dyn EventStore>,
        ))
    });

    #[test]
    fn manager_over_a_sharded_store_agrees_with_the_model() {
        sessiond_testkit::model::check_manager_against_model(500, || Sharded::strictest(Arc::new(MemoryStore::new())));
    }
}

/// Over a sharded store, every way the manager makes a record places it:
/// a login, an anonymous visit, their rotations and the sign-in that
/// replaces a visit (the store refuses a misplaced record, so any of these
/// would fail).
#[tokio::test]
async fn every_record_the_manager_makes_falls_in_one_shard() {
    use sessiond_core::{AnonymousOptions, CreateOptions, Rotation, SessionManager, Shards, SignInOptions, Subject};

    let store = sessiond_testkit::sharded::Sharded::strictest(Arc::new(MemoryStore::new()));
    let manager = SessionManager::builder(Arc::clone(&store)).build().unwrap();
    let shards = Shards::new(Shards::MAX).unwrap();
    let alice = Subject::new("alice").unwrap();
    let (token, session) = manager.create(&alice, CreateOptions::default()).await.unwrap();
    assert!(shards.places(&session));
    let (_, rotated) = manager.rotate(token.expose_secret(), Rotation::Plain).await.unwrap();
    assert!(shards.places(&rotated) && rotated.previous_token.is_some());
    let (visit, visitor) = manager.create_anonymous(AnonymousOptions::default()).await.unwrap();
    assert!(shards.places(&visitor));
    let (visit, _) = manager.rotate(visit.expose_secret(), Rotation::Plain).await.unwrap();
    let bob = Subject::new("bob").unwrap();
    let (_, signed_in) = manager
        .sign_in(visit.expose_secret(), &bob, SignInOptions::default())
        .await
        .unwrap();
    assert!(shards.places(&signed_in));
    assert_eq!(shards.of_id(&signed_in.id), shards.of_subject(&signed_in.tenant, &bob));
}
