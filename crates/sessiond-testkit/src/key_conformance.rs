//! The key-store conformance suite: the written semantics of [`KeyStore`],
//! checked.
//!
//! Every backend runs all of it, unchanged, with one line:
//!
//! ```ignore
//! sessiond_testkit::key_store_conformance!(|| async { Some(Arc::new(MyStore::open().await) as Arc<dyn KeyStore>) });
//! ```
//!
//! The factory follows the rules of
//! [`user_store_conformance!`](crate::user_store_conformance): a fresh,
//! empty store per case, or `None` (after the factory said why) when its
//! engine is missing; never another store instead. Case names start with
//! `key_`, so the suites can share a module.

use std::sync::Arc;

use sessiond_core::{KeyId, KeyRecord, KeyRole, KeyStore, KeyStoreError, Tenant};
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

/// Generates one `#[tokio::test]` per conformance case, each on a fresh store
/// from `$factory` (an expression callable as `$factory().await` that gives
/// an `Option` of the store; `None` skips the case).
#[macro_export]
macro_rules! key_store_conformance {
    ($factory:expr) => {
        $crate::key_store_conformance!(@cases $factory;
            key_an_empty_store_lists_nothing_at_version_zero,
            key_insert_stores_the_record_as_given,
            key_insert_of_a_taken_id_is_refused_and_writes_nothing,
            key_list_is_sorted_by_creation_then_id_across_tenants,
            key_delete_removes_and_reports_whether_it_did,
            key_version_changes_with_every_write_but_not_with_touch,
            key_touch_keeps_the_latest_use,
            key_first_key_is_written_only_into_an_empty_store,
            key_racing_first_keys_write_at_most_one,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: ::std::option::Option<::std::sync::Arc<dyn ::sessiond_core::KeyStore>> = ($factory)().await;
                let ::std::option::Option::Some(store) = store else {
                    // The factory said why (see `sessiond_testkit::env::required`).
                    ::std::eprintln!("SKIPPED conformance case {}: no store", ::std::stringify!($case));
                    return;
                };
                $crate::key_conformance::$case(store).await;
            }
        )+
    };
}

/// A fixed instant, whole seconds, so every engine stores it exactly.
fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_780_000_000 + seconds)
}

/// A record of tenant `tenant` with id `id`, made at `at(created)`.
pub fn record(id: &str, tenant: &str, created: i64) -> KeyRecord {
    KeyRecord {
        id: KeyId::new(id).expect("valid key id"),
        tenant: Tenant::new(tenant).expect("valid tenant"),
        name: format!("key {id}"),
        role: KeyRole::App,
        sha256: format!("{:064x}", created.unsigned_abs() + 1),
        created_at: at(created),
        expires_at: None,
        last_used_at: None,
    }
}

fn id(value: &str) -> KeyId {
    KeyId::new(value).expect("valid key id")
}

async fn listed_ids(store: &Arc<dyn KeyStore>) -> Vec<String> {
    let keys = store.list_keys().await.expect("list");
    keys.into_iter().map(|k| k.id.to_string()).collect()
}

/// Nothing is listed in a new store, and its version is 0.
pub async fn key_an_empty_store_lists_nothing_at_version_zero(store: Arc<dyn KeyStore>) {
    assert!(store.list_keys().await.expect("list").is_empty());
    assert_eq!(store.keys_version().await.expect("version"), 0);
    assert!(!store.delete_key(&id("missing")).await.expect("delete"));
    store.touch_key(&id("missing"), at(5)).await.expect("touch");
    assert!(store.list_keys().await.expect("list").is_empty(), "a touch made a key");
}

/// Every field reads back as written, optional ones set and unset.
pub async fn key_insert_stores_the_record_as_given(store: Arc<dyn KeyStore>) {
    let plain = record("plain", "acme", 1);
    let mut full = record("full-Key_1", "other", 2);
    full.role = KeyRole::Admin;
    full.name = "billing backend, ünïcode".to_owned();
    full.expires_at = Some(at(3600));
    full.last_used_at = Some(at(60));
    store.insert_key(&plain).await.expect("insert");
    store.insert_key(&full).await.expect("insert");
    assert_eq!(store.list_keys().await.expect("list"), vec![plain, full]);
}

/// A taken id is refused with `Exists`, and the stored record is unchanged.
pub async fn key_insert_of_a_taken_id_is_refused_and_writes_nothing(store: Arc<dyn KeyStore>) {
    let first = record("k1", "acme", 1);
    store.insert_key(&first).await.expect("insert");
    let version = store.keys_version().await.expect("version");
    let mut second = record("k1", "other", 2);
    second.role = KeyRole::Admin;
    assert!(matches!(store.insert_key(&second).await, Err(KeyStoreError::Exists)));
    assert_eq!(store.list_keys().await.expect("list"), vec![first]);
    assert_eq!(store.keys_version().await.expect("version"), version);
}

/// Keys of all tenants, oldest first; ties by id.
pub async fn key_list_is_sorted_by_creation_then_id_across_tenants(store: Arc<dyn KeyStore>) {
    for key in [
        record("c", "t1", 5),
        record("b", "t2", 5),
        record("z", "t1", 1),
        record("a", "t3", 9),
    ] {
        store.insert_key(&key).await.expect("insert");
    }
    assert_eq!(listed_ids(&store).await, ["z", "b", "c", "a"]);
}

/// A delete removes exactly its key; a second delete finds nothing.
pub async fn key_delete_removes_and_reports_whether_it_did(store: Arc<dyn KeyStore>) {
    store.insert_key(&record("k1", "acme", 1)).await.expect("insert");
    store.insert_key(&record("k2", "acme", 2)).await.expect("insert");
    assert!(store.delete_key(&id("k1")).await.expect("delete"));
    assert!(!store.delete_key(&id("k1")).await.expect("delete again"));
    assert_eq!(listed_ids(&store).await, ["k2"]);
    // The id is free again.
    store.insert_key(&record("k1", "acme", 3)).await.expect("insert again");
    assert_eq!(listed_ids(&store).await, ["k2", "k1"]);
}

/// Inserts and deletes change the version, each to a value not seen
/// before; refused writes and touches leave it.
pub async fn key_version_changes_with_every_write_but_not_with_touch(store: Arc<dyn KeyStore>) {
    let mut seen = vec![store.keys_version().await.expect("version")];
    let mut step = async |store: &Arc<dyn KeyStore>, changed: bool, what: &str| {
        let now = store.keys_version().await.expect("version");
        let last = *seen.last().expect("a version");
        if changed {
            assert!(!seen.contains(&now), "{what}: version {now} came back ({seen:?})");
            seen.push(now);
        } else {
            assert_eq!(now, last, "{what} changed the version");
        }
    };
    store.insert_key(&record("k1", "acme", 1)).await.expect("insert");
    step(&store, true, "insert").await;
    store.touch_key(&id("k1"), at(10)).await.expect("touch");
    step(&store, false, "touch").await;
    assert!(store.insert_key(&record("k1", "acme", 1)).await.is_err());
    step(&store, false, "a refused insert").await;
    assert!(!store.insert_first_key(&record("k2", "acme", 2)).await.expect("first"));
    step(&store, false, "a refused first key").await;
    assert!(!store.delete_key(&id("missing")).await.expect("delete"));
    step(&store, false, "a delete of nothing").await;
    assert!(store.delete_key(&id("k1")).await.expect("delete"));
    step(&store, true, "delete").await;
    assert!(store.insert_first_key(&record("k3", "acme", 3)).await.expect("first"));
    step(&store, true, "first key").await;
}

/// A touch sets `last_used_at`; an earlier touch does not move it back.
pub async fn key_touch_keeps_the_latest_use(store: Arc<dyn KeyStore>) {
    let key = record("k1", "acme", 1);
    store.insert_key(&key).await.expect("insert");
    store.insert_key(&record("k2", "acme", 2)).await.expect("insert");
    store.touch_key(&key.id, at(100)).await.expect("touch");
    store.touch_key(&key.id, at(50)).await.expect("earlier touch");
    let keys = store.list_keys().await.expect("list");
    assert_eq!(keys[0].last_used_at, Some(at(100)));
    assert_eq!(keys[1].last_used_at, None, "a touch reached another key");
    let mut expected = key.clone();
    expected.last_used_at = Some(at(100));
    assert_eq!(keys[0], expected, "a touch changed more than last_used_at");
    store.touch_key(&key.id, at(200)).await.expect("later touch");
    assert_eq!(store.list_keys().await.expect("list")[0].last_used_at, Some(at(200)));
}

/// The first key goes only into a store without keys, of any tenant.
pub async fn key_first_key_is_written_only_into_an_empty_store(store: Arc<dyn KeyStore>) {
    let first = record("first", "default", 1);
    assert!(store.insert_first_key(&first).await.expect("first"));
    assert!(
        !store
            .insert_first_key(&record("second", "other", 2))
            .await
            .expect("again")
    );
    assert_eq!(store.list_keys().await.expect("list"), vec![first]);
    assert!(store.delete_key(&id("first")).await.expect("delete"));
    store.insert_key(&record("other", "other", 3)).await.expect("insert");
    assert!(
        !store
            .insert_first_key(&record("third", "default", 4))
            .await
            .expect("third")
    );
    assert_eq!(listed_ids(&store).await, ["other"]);
}

/// Eight first-key inserts at once, each with its own id: exactly one
/// writes, and it is the one stored.
pub async fn key_racing_first_keys_write_at_most_one(store: Arc<dyn KeyStore>) {
    let racers = 8usize;
    let barrier = Arc::new(Barrier::new(racers));
    let mut tasks = Vec::new();
    for n in 0..racers {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let key = record(&format!("racer-{n}"), "default", 1);
            (key.id.to_string(), store.insert_first_key(&key).await.expect("first"))
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (id, won) = task.await.expect("task");
        if won {
            winners.push(id);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(listed_ids(&store).await, winners);
}
