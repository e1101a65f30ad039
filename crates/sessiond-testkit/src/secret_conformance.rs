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

use sessiond_core::{MAX_SECRET_VALUE_LEN, MAX_SECRETS, SecretName, SecretStore, SecretStoreError, encode_secrets};
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
            secret_values_of_any_length_read_back_exactly,
            secret_values_empty_or_too_long_are_refused,
            secret_value_second_init_returns_the_first_value,
            secret_concurrent_value_inits_agree_on_one_value,
            secret_value_put_compares_exact_bytes,
            secret_value_put_of_a_missing_name_is_not_found,
            secret_value_of_no_whole_set_is_corrupt_as_a_set,
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

/// `len` bytes that differ from every other `seed`'s in every byte, and
/// hold bytes a text encoding would mangle (0, 0xff, invalid UTF-8).
pub fn value(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed.wrapping_mul(101)) ^ ((i >> 8) as u8))
        .collect()
}

async fn get_value(store: &Arc<dyn SecretStore>, n: &str) -> Option<Vec<u8>> {
    store.secret_value(&name(n)).await.expect("secret_value")
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

/// A value of any allowed length, the longest included, is stored by init,
/// returned by it and reads back byte for byte; a set written through the
/// set methods reads back as the value [`encode_secrets`] makes.
pub async fn secret_values_of_any_length_read_back_exactly(store: Arc<dyn SecretStore>) {
    for (i, len) in [1, 31, 33, 100, MAX_SECRET_VALUE_LEN].into_iter().enumerate() {
        let n = format!("value-{i}");
        let v = value(i as u8, len);
        assert_eq!(store.init_secret_value(&name(&n), &v).await.expect("init"), v, "{len}");
        assert_eq!(get_value(&store, &n).await, Some(v), "{len}");
    }
    let set = vec![secret(1), secret(2)];
    store.init_secrets(&name("a-set"), &set).await.expect("init");
    assert_eq!(get_value(&store, "a-set").await, Some(encode_secrets(&set)));
}

/// An empty value and one a byte over [`MAX_SECRET_VALUE_LEN`] are refused
/// with `InvalidLength` naming their length, and nothing is written, by init
/// and by compare-and-set; the `expected` of a compare-and-set is only
/// compared, so an oversized one is a conflict, not a refusal.
pub async fn secret_values_empty_or_too_long_are_refused(store: Arc<dyn SecretStore>) {
    let n = name("sealed-key");
    for bad in [Vec::new(), value(1, MAX_SECRET_VALUE_LEN + 1)] {
        let result = store.init_secret_value(&n, &bad).await;
        assert!(
            matches!(result, Err(SecretStoreError::InvalidLength { len }) if len == bad.len()),
            "got {result:?}"
        );
        assert_eq!(get_value(&store, "sealed-key").await, None);
    }
    let stored = value(2, 100);
    store.init_secret_value(&n, &stored).await.expect("init");
    for bad in [Vec::new(), value(3, MAX_SECRET_VALUE_LEN + 1)] {
        let result = store.put_secret_value(&n, &bad, &stored).await;
        assert!(
            matches!(result, Err(SecretStoreError::InvalidLength { len }) if len == bad.len()),
            "got {result:?}"
        );
        assert_eq!(get_value(&store, "sealed-key").await, Some(stored.clone()));
    }
    let result = store
        .put_secret_value(&n, &value(4, 10), &value(2, MAX_SECRET_VALUE_LEN + 1))
        .await;
    assert!(matches!(result, Err(SecretStoreError::Conflict)), "got {result:?}");
    assert_eq!(get_value(&store, "sealed-key").await, Some(stored));
}

/// First writer wins for values: a later init, of another length too,
/// changes nothing and returns the first value.
pub async fn secret_value_second_init_returns_the_first_value(store: Arc<dyn SecretStore>) {
    let n = name("sealed-key");
    let first = value(1, 100);
    assert_eq!(store.init_secret_value(&n, &first).await.expect("init"), first);
    for later in [value(2, 100), value(3, 7), value(4, MAX_SECRET_VALUE_LEN)] {
        assert_eq!(store.init_secret_value(&n, &later).await.expect("init"), first);
    }
    assert_eq!(get_value(&store, "sealed-key").await, Some(first));
}

/// Eight value inits at once, each of its own length: all return the same
/// value, which is one of theirs and is what is stored.
pub async fn secret_concurrent_value_inits_agree_on_one_value(store: Arc<dyn SecretStore>) {
    let racers = 8u8;
    let barrier = Arc::new(Barrier::new(usize::from(racers)));
    let mut tasks = Vec::new();
    for seed in 0..racers {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .init_secret_value(&name("sealed-key"), &value(seed, 50 + usize::from(seed)))
                .await
                .expect("init")
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    let winner = answers[0].clone();
    assert!(answers.iter().all(|a| *a == winner), "racers disagree");
    assert!((0..racers).any(|seed| winner == value(seed, 50 + usize::from(seed))));
    assert_eq!(get_value(&store, "sealed-key").await, Some(winner));
}

/// A compare-and-set on values writes only over exactly the expected bytes:
/// another value, a prefix, a longer value or one differing in its last byte
/// conflicts and writes nothing; the exact bytes write, even a value of
/// another length, and the next one must name that.
pub async fn secret_value_put_compares_exact_bytes(store: Arc<dyn SecretStore>) {
    let n = name("sealed-key");
    let stored = value(1, 100);
    store.init_secret_value(&n, &stored).await.expect("init");
    let mut last_byte = stored.clone();
    if let Some(b) = last_byte.last_mut() {
        *b ^= 1;
    }
    let mut longer = stored.clone();
    longer.push(0);
    for expected in [value(2, 100), stored[..99].to_vec(), longer, last_byte] {
        let result = store.put_secret_value(&n, &value(9, 10), &expected).await;
        assert!(matches!(result, Err(SecretStoreError::Conflict)), "got {result:?}");
        assert_eq!(get_value(&store, "sealed-key").await, Some(stored.clone()));
    }
    let replaced = value(3, 33);
    store.put_secret_value(&n, &replaced, &stored).await.expect("put");
    assert_eq!(get_value(&store, "sealed-key").await, Some(replaced.clone()));
    let result = store.put_secret_value(&n, &value(4, 10), &stored).await;
    assert!(matches!(result, Err(SecretStoreError::Conflict)), "got {result:?}");
    store.put_secret_value(&n, &value(4, 10), &replaced).await.expect("put");
    assert_eq!(get_value(&store, "sealed-key").await, Some(value(4, 10)));
}

/// A value compare-and-set never creates one.
pub async fn secret_value_put_of_a_missing_name_is_not_found(store: Arc<dyn SecretStore>) {
    let v = value(1, 100);
    let result = store.put_secret_value(&name("sealed-key"), &v, &v).await;
    assert!(matches!(result, Err(SecretStoreError::NotFound)), "got {result:?}");
    assert_eq!(get_value(&store, "sealed-key").await, None);
}

/// A value that is no whole set (a length not a multiple of 32, or more
/// than `MAX_SECRETS` secrets) read through the set methods is `Corrupt`, not
/// a panic and not a set; a set init finds it stored and writes nothing, and
/// a set compare-and-set against any set conflicts.
pub async fn secret_value_of_no_whole_set_is_corrupt_as_a_set(store: Arc<dyn SecretStore>) {
    for (n, len) in [
        ("short", 1),
        ("odd", 33),
        ("long", 100),
        ("too-many", 32 * (MAX_SECRETS + 1)),
    ] {
        let v = value(1, len);
        store.init_secret_value(&name(n), &v).await.expect("init");
        let read = store.secrets(&name(n)).await;
        assert!(matches!(read, Err(SecretStoreError::Corrupt(_))), "{len}: got {read:?}");
        let init = store.init_secrets(&name(n), &[secret(1)]).await;
        assert!(matches!(init, Err(SecretStoreError::Corrupt(_))), "{len}: got {init:?}");
        let put = store.put_secrets(&name(n), &[secret(2)], &[secret(1)]).await;
        assert!(matches!(put, Err(SecretStoreError::Conflict)), "{len}: got {put:?}");
        assert_eq!(get_value(&store, n).await, Some(v), "{len}");
    }
}
