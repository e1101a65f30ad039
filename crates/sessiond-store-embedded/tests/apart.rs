//! The tables no index refers to (API keys, secret sets): a damaged entry
//! is corrupt, never taken for another, and the check names it.

use redb::TableDefinition;
use sessiond_core::{KeyId, KeyStore, KeyStoreError, SecretName, SecretStore, SecretStoreError};
use sessiond_store_embedded::{EmbeddedStore, FILE_NAME};
use sessiond_testkit::key_conformance::record;

const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

#[tokio::test]
async fn damaged_keys_and_secret_sets_are_corrupt_and_the_check_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    store.insert_key(&record("good", "acme", 1)).await.unwrap();
    store.insert_key(&record("moved", "acme", 2)).await.unwrap();
    store
        .init_secrets(&SecretName::portal_csrf(), &[[7; 32]])
        .await
        .unwrap();
    assert!(store.check().unwrap().is_consistent());
    store.close().unwrap();
    {
        let db = redb::Database::open(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut keys = txn.open_table(API_KEYS).unwrap();
            keys.insert("garbage", b"{not json".as_slice()).unwrap();
            // A record moved under another id.
            let moved = keys.remove("moved").unwrap().unwrap().value().to_vec();
            keys.insert("elsewhere", moved.as_slice()).unwrap();
            let mut secrets = txn.open_table(SECRETS).unwrap();
            // No length a write may store: corrupt as a value and as a set.
            secrets.insert("portal-csrf", [0u8; 0].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let listed = store.list_keys().await;
    assert!(matches!(listed, Err(KeyStoreError::Corrupt(_))), "{listed:?}");
    let secrets = store.secrets(&SecretName::portal_csrf()).await;
    assert!(matches!(secrets, Err(SecretStoreError::Corrupt(_))), "{secrets:?}");
    // A touch of a record it cannot read writes nothing over it.
    let touched = store
        .touch_key(&KeyId::new("garbage").unwrap(), time::OffsetDateTime::UNIX_EPOCH)
        .await;
    assert!(matches!(touched, Err(KeyStoreError::Corrupt(_))), "{touched:?}");
    let report = store.check().unwrap();
    assert_eq!((report.api_keys, report.secret_sets), (3, 1));
    assert_eq!(report.problems.len(), 3, "{:?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("elsewhere holds the record of moved"))
    );
}

const EVENT_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("event_counts");

#[tokio::test]
async fn an_event_count_that_disagrees_with_the_events_is_named_by_the_check() {
    use sessiond_core::{EventIds, EventStore};
    use sessiond_testkit::event_conformance::{sample_event, stored};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let mut ids = EventIds::with_node(7);
    let events: Vec<_> = (0..3).map(|s| stored(&mut ids, sample_event("acme", s))).collect();
    store.append_events(&events).await.unwrap();
    let report = store.check().unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.events, 3);
    store.close().unwrap();
    {
        let db = redb::Database::open(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(EVENT_COUNTS).unwrap().insert("acme", 5).unwrap();
        txn.commit().unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let report = store.check().unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("event counts"), "{:?}", report.problems);
}
