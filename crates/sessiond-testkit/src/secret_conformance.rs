//! The secret-store conformance suite: the written semantics of
//! [`SecretStore`], checked.
//!
//! Every backend runs all of it, unchanged, with one line:
//!
//! ```ignore
//! sessiond_testkit::secret_store_conformance!(|| async { Some(Arc::new(MyStore::open().await) as Arc<dyn SecretStore>) });
//! ```
//!
//! The factory follows the rules of
//! [`user_store_conformance!`](crate::user_store_conformance): a fresh,
//! empty store per case, or `None` (after the factory said why) when its
//! engine is missing; never another store instead. Case names start with
//! `secret_`, so the suites can share a module.

use std::sync::Arc;

use sessiond_core::{MAX_SECRETS, SecretName, SecretStore, SecretStoreError};
use tokio::sync::Barrier;

/// Generates one `#[tokio::test]` per conformance case, each on a fresh store
/// from `$factory` (an expression callable as `$factory().await` that gives
/// an `Option` of the store; `None` skips the case).
#[macro_export]
macro_rules! secret_store_conformance {
    ($factory:expr) => {
        $crate::secret_store_conformance!(@cases $factory;
            secret_get_of_a_missing_name_is_none,
            secret_init_stores_the_set_in_order,
            secret_second_init_returns_the_first_set,
            secret_concurrent_inits_agree_on_one_set,
            secret_put_with_the_stored_set_replaces_it,
            secret_put_with_a_stale_set_conflicts_and_writes_nothing,
            secret_put_of_a_missing_name_is_not_found,
            secret_names_are_isolated,
            secret_sets_of_zero_or_too_many_are_refused,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: ::std::option::Option<::std::sync::Arc<dyn ::sessiond_core::SecretStore>> = ($factory)().await;
                let ::std::option::Option::Some(store) = store else {
                    // The factory said why (see `sessiond_testkit::env::required`).
                    ::std::eprintln!("SKIPPED conformance case {}: no store", ::std::stringify!($case));
                    return;
                };
                $crate::secret_conformance::$case(store).await;
            }
        )+
    };
}

fn name(name: &str) -> SecretName {
    SecretName::new(name).expect("valid secret name")
}

/// A secret that differs from every other `seed`'s in every byte, and
/// holds bytes a text encoding would mangle (0, 0xff, invalid UTF-8).
pub fn secret(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(37).wrapping_add((i as u8).wrapping_mul(8)))
}

async fn get(store: &Arc<dyn SecretStore>, n: &str) -> Option<Vec<[u8; 32]>> {
    store.secrets(&name(n)).await.expect("secrets")
}

/// Nothing is stored under a name nobody wrote.
pub async fn secret_get_of_a_missing_name_is_none(store: Arc<dyn SecretStore>) {
    assert_eq!(get(&store, "portal-csrf").await, None);
}

/// An init on an empty name writes its set and returns it; the set reads
/// back exactly, order kept, up to the largest allowed.
pub async fn secret_init_stores_the_set_in_order(store: Arc<dyn SecretStore>) {
    let one = vec![secret(1)];
    assert_eq!(store.init_secrets(&name("one"), &one).await.expect("init"), one);
    assert_eq!(get(&store, "one").await, Some(one));
    let full: Vec<[u8; 32]> = (0..MAX_SECRETS as u8).rev().map(secret).collect();
    assert_eq!(store.init_secrets(&name("full"), &full).await.expect("init"), full);
    assert_eq!(get(&store, "full").await, Some(full));
}

/// First writer wins: a later init changes nothing and returns the first set.
pub async fn secret_second_init_returns_the_first_set(store: Arc<dyn SecretStore>) {
    let first = vec![secret(1), secret(2)];
    store.init_secrets(&name("portal-csrf"), &first).await.expect("init");
    let again = store
        .init_secrets(&name("portal-csrf"), &[secret(3)])
        .await
        .expect("second init");
    assert_eq!(again, first);
    assert_eq!(get(&store, "portal-csrf").await, Some(first));
}

/// Eight inits at once, each with its own set: all return the same set,
/// which is one of theirs and is what is stored.
pub async fn secret_concurrent_inits_agree_on_one_set(store: Arc<dyn SecretStore>) {
    let racers = 8u8;
    let barrier = Arc::new(Barrier::new(usize::from(racers)));
    let mut tasks = Vec::new();
    for seed in 0..racers {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .init_secrets(&name("portal-csrf"), &[secret(seed)])
                .await
                .expect("init")
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let winner = answers[0].clone();
    assert!(
        answers.iter().all(|a| *a == winner),
        "{} racers disagree",
        answers.len()
    );
    assert!((0..racers).any(|seed| winner == vec![secret(seed)]));
    assert_eq!(get(&store, "portal-csrf").await, Some(winner));
}

/// A compare-and-set against the stored set writes the new one (a rotation:
/// a new secret in front), and the next one must name that.
pub async fn secret_put_with_the_stored_set_replaces_it(store: Arc<dyn SecretStore>) {
    let n = name("portal-csrf");
    let old = vec![secret(1)];
    store.init_secrets(&n, &old).await.expect("init");
    let rotated = vec![secret(2), secret(1)];
    store.put_secrets(&n, &rotated, &old).await.expect("put");
    assert_eq!(get(&store, "portal-csrf").await, Some(rotated.clone()));
    let dropped = vec![secret(2)];
    store.put_secrets(&n, &dropped, &rotated).await.expect("put");
    assert_eq!(get(&store, "portal-csrf").await, Some(dropped));
}

/// A compare-and-set against anything but the stored set (another set,
/// the same secrets in another order, a prefix) conflicts and writes nothing.
pub async fn secret_put_with_a_stale_set_conflicts_and_writes_nothing(store: Arc<dyn SecretStore>) {
    let n = name("portal-csrf");
    let stored = vec![secret(1), secret(2)];
    store.init_secrets(&n, &stored).await.expect("init");
    let stale = [
        vec![secret(3)],
        vec![secret(2), secret(1)],
        vec![secret(1)],
        vec![secret(1), secret(2), secret(3)],
    ];
    for expected in stale {
        let result = store.put_secrets(&n, &[secret(9)], &expected).await;
        assert!(matches!(result, Err(SecretStoreError::Conflict)), "got {result:?}");
    }
    assert_eq!(get(&store, "portal-csrf").await, Some(stored));
}

/// A compare-and-set never creates a set.
pub async fn secret_put_of_a_missing_name_is_not_found(store: Arc<dyn SecretStore>) {
    let result = store
        .put_secrets(&name("portal-csrf"), &[secret(1)], &[secret(1)])
        .await;
    assert!(matches!(result, Err(SecretStoreError::NotFound)), "got {result:?}");
    assert_eq!(get(&store, "portal-csrf").await, None);
}

/// Sets under different names never affect each other.
pub async fn secret_names_are_isolated(store: Arc<dyn SecretStore>) {
    let (a, b) = (vec![secret(1)], vec![secret(2)]);
    assert_eq!(store.init_secrets(&name("a"), &a).await.expect("init"), a);
    assert_eq!(store.init_secrets(&name("b"), &b).await.expect("init"), b);
    assert_eq!(get(&store, "ab").await, None);
    store.put_secrets(&name("a"), &[secret(3)], &a).await.expect("put");
    assert_eq!(get(&store, "a").await, Some(vec![secret(3)]));
    assert_eq!(get(&store, "b").await, Some(b));
}

/// The store refuses sets of zero or more than `MAX_SECRETS`, writing
/// nothing, on init and on compare-and-set alike.
pub async fn secret_sets_of_zero_or_too_many_are_refused(store: Arc<dyn SecretStore>) {
    let too_many: Vec<[u8; 32]> = (0..=MAX_SECRETS as u8).map(secret).collect();
    for bad in [Vec::new(), too_many] {
        let result = store.init_secrets(&name("portal-csrf"), &bad).await;
        assert!(
            matches!(result, Err(SecretStoreError::InvalidCount { count }) if count == bad.len()),
            "got {result:?}"
        );
        assert_eq!(get(&store, "portal-csrf").await, None);
    }
    let stored = vec![secret(1)];
    store.init_secrets(&name("portal-csrf"), &stored).await.expect("init");
    for bad in [Vec::new(), (0..=MAX_SECRETS as u8).map(secret).collect()] {
        let result = store.put_secrets(&name("portal-csrf"), &bad, &stored).await;
        assert!(
            matches!(result, Err(SecretStoreError::InvalidCount { .. })),
            "got {result:?}"
        );
    }
    assert_eq!(get(&store, "portal-csrf").await, Some(stored));
}
