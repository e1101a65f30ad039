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
