//! The user-store conformance suite: the written semantics of
//! [`UserStore`], checked.
//!
//! Every backend runs all of it, unchanged, with one line:
//!
//! ```ignore
//! sessiond_testkit::user_store_conformance!(|| async { Some(Arc::new(MyStore::open().await) as Arc<dyn UserStore>) });
//! ```
//!
//! The factory is called once per case and must return an empty store that
//! no other case uses, or `None` when its engine is missing: the case then
//! returns early, after the factory has said so (a server-backed factory
//! gets its URL from [`env::required`](crate::env::required), which skips
//! or, in CI, fails). It never substitutes another store. Case names start with `user_`, so this suite and
//! [`store_conformance!`](crate::store_conformance) can share a module.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Subject, Tenant, UserRecord, UserStore, UserStoreError, truncate_to_micros};
use time::OffsetDateTime;
use tokio::sync::Barrier;

use crate::conformance::NOW;

/// Generates one `#[tokio::test]` per conformance case, each on a fresh store
/// from `$factory` (an expression callable as `$factory().await` that gives
/// an `Option` of the store; `None` skips the case).
#[macro_export]
macro_rules! user_store_conformance {
    ($factory:expr) => {
        $crate::user_store_conformance!(@cases $factory;
            user_get_of_a_missing_user_is_none,
            user_insert_then_get_round_trips_exactly,
            user_insert_refuses_a_taken_name,
            user_same_name_in_another_tenant_is_another_user,
            user_update_with_the_right_version_writes_the_whole_record,
            user_update_with_a_stale_version_conflicts_and_writes_nothing,
            user_update_of_a_missing_user_is_not_found,
            user_list_is_one_tenant_sorted_by_name_disabled_included,
            user_concurrent_compare_and_set_loses_no_update,
            user_racing_inserts_of_one_name_have_one_winner,
            user_delete_removes_exactly_one_user_and_frees_the_name,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: ::std::option::Option<::std::sync::Arc<dyn ::sessiond_core::UserStore>> = ($factory)().await;
                let ::std::option::Option::Some(store) = store else {
                    // The factory said why (see `sessiond_testkit::env::required`).
                    ::std::eprintln!("SKIPPED conformance case {}: no store", ::std::stringify!($case));
                    return;
                };
                $crate::user_conformance::$case(store).await;
            }
        )+
    };
}

fn tenant(name: &str) -> Tenant {
    Tenant::new(name).expect("valid tenant")
}

fn name(name: &str) -> Subject {
    Subject::new(name).expect("valid name")
}

/// A time with a microsecond part, as the portal writes them.
fn at(offset_secs: u64) -> OffsetDateTime {
    truncate_to_micros(NOW + Duration::from_secs(offset_secs) + Duration::from_nanos(123_456_789))
}

/// An enabled user `n` of tenant `t` at version 1, with a PHC-shaped hash
/// that names them (so records of different users never compare equal).
pub fn sample_user(t: &str, n: &str) -> UserRecord {
    UserRecord {
        tenant: tenant(t),
        name: name(n),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaC1vZi17{n}"),
        disabled: false,
        created_at: at(0),
        password_changed_at: at(60),
        version: 1,
    }
}

async fn get(store: &Arc<dyn UserStore>, t: &str, n: &str) -> Option<UserRecord> {
    store.get_user(&tenant(t), &name(n)).await.expect("get_user")
}

async fn put(store: &Arc<dyn UserStore>, user: &UserRecord) {
    store.insert_user(user).await.expect("insert_user");
}

/// A user nobody created is absent, in a tenant nobody used.
pub async fn user_get_of_a_missing_user_is_none(store: Arc<dyn UserStore>) {
    assert_eq!(get(&store, "t", "nobody").await, None);
    assert!(store.list_users(&tenant("t")).await.expect("list").is_empty());
}

/// A record reads back equal, field for field (times to the microsecond).
pub async fn user_insert_then_get_round_trips_exactly(store: Arc<dyn UserStore>) {
    let mut user = sample_user("t", "alice");
    user.disabled = true;
    user.version = 7;
    put(&store, &user).await;
    let back = get(&store, "t", "alice").await.expect("present");
    assert_eq!(back, user);
    assert_eq!(back.password_hash, user.password_hash);
    assert_eq!(back.created_at.microsecond(), 123_456);
    assert_eq!(store.list_users(&tenant("t")).await.expect("list"), vec![user]);
}

/// A taken name is refused and the stored record stays as it was.
pub async fn user_insert_refuses_a_taken_name(store: Arc<dyn UserStore>) {
    let first = sample_user("t", "alice");
    put(&store, &first).await;
    let mut second = sample_user("t", "alice");
    second.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$b3RoZXI".into();
    second.disabled = true;
    second.version = 9;
    let result = store.insert_user(&second).await;
    assert!(matches!(result, Err(UserStoreError::Exists)), "got {result:?}");
    assert_eq!(get(&store, "t", "alice").await, Some(first));
}

/// Keys are (tenant, name), names exact: the same name in another tenant,
/// or in another case, is another user.
pub async fn user_same_name_in_another_tenant_is_another_user(store: Arc<dyn UserStore>) {
    let a = sample_user("a", "alice");
    let mut b = sample_user("b", "alice");
    b.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$YmJi$YmJi".into();
    b.version = 4;
    let mut upper = sample_user("a", "Alice");
    upper.disabled = true;
    put(&store, &a).await;
    put(&store, &b).await;
    put(&store, &upper).await;
    assert_eq!(get(&store, "a", "alice").await, Some(a.clone()));
    assert_eq!(get(&store, "b", "alice").await, Some(b.clone()));
    assert_eq!(get(&store, "a", "Alice").await, Some(upper.clone()));
    assert_eq!(get(&store, "c", "alice").await, None);
    // An update in one tenant leaves the other alone.
    let mut b2 = b.clone();
    b2.disabled = true;
    b2.version = 5;
    store.update_user(&b2, 4).await.expect("update");
    assert_eq!(get(&store, "a", "alice").await, Some(a));
    assert_eq!(get(&store, "b", "alice").await, Some(b2));
}

/// With the stored version, update replaces every field.
pub async fn user_update_with_the_right_version_writes_the_whole_record(store: Arc<dyn UserStore>) {
    let user = sample_user("t", "alice");
    put(&store, &user).await;
    let next = UserRecord {
        tenant: user.tenant.clone(),
        name: user.name.clone(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA".into(),
        disabled: true,
        created_at: at(5),
        password_changed_at: at(3600),
        version: 2,
    };
    store.update_user(&next, 1).await.expect("update");
    assert_eq!(get(&store, "t", "alice").await, Some(next.clone()));
    // And back again: a version is whatever the caller sets.
    let mut again = next.clone();
    again.disabled = false;
    again.version = 10;
    store.update_user(&again, 2).await.expect("update");
    assert_eq!(get(&store, "t", "alice").await, Some(again));
}

/// A stale (or future) version is refused with the stored one, and nothing
/// is written.
pub async fn user_update_with_a_stale_version_conflicts_and_writes_nothing(store: Arc<dyn UserStore>) {
    let mut user = sample_user("t", "alice");
    user.version = 3;
    put(&store, &user).await;
    for expected in [2, 4, 0] {
        let mut next = user.clone();
        next.disabled = true;
        next.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c3RhbGU$c3RhbGU".into();
        next.version = expected + 1;
        let result = store.update_user(&next, expected).await;
        assert!(
            matches!(result, Err(UserStoreError::VersionConflict { current: 3 })),
            "expected {expected}: got {result:?}"
        );
        assert_eq!(get(&store, "t", "alice").await, Some(user.clone()));
    }
}

/// Update never creates: a missing user (also one that exists only in
/// another tenant) is `NotFound`, and stays missing.
pub async fn user_update_of_a_missing_user_is_not_found(store: Arc<dyn UserStore>) {
    put(&store, &sample_user("other", "alice")).await;
    let mut ghost = sample_user("t", "alice");
    ghost.version = 2;
    let result = store.update_user(&ghost, 1).await;
    assert!(matches!(result, Err(UserStoreError::NotFound)), "got {result:?}");
    assert_eq!(get(&store, "t", "alice").await, None);
    assert!(store.list_users(&tenant("t")).await.expect("list").is_empty());
    assert_eq!(get(&store, "other", "alice").await, Some(sample_user("other", "alice")));
}

/// List holds exactly the tenant's users, disabled ones too, in byte order
/// of their names (not a locale's collation).
pub async fn user_list_is_one_tenant_sorted_by_name_disabled_included(store: Arc<dyn UserStore>) {
    // Byte order: "Alice" < "_svc" < "alice" < "bob" < "carol" < "émile";
    // most locales would put them otherwise.
    let names = ["bob", "émile", "Alice", "carol", "_svc", "alice"];
    let mut want = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut user = sample_user("t", n);
        user.disabled = i % 2 == 0;
        put(&store, &user).await;
        want.push(user);
    }
    for n in ["alice", "zed", "0"] {
        put(&store, &sample_user("t2", n)).await;
    }
    put(&store, &sample_user("t-", "aaron")).await;
    want.sort_by(|x, y| x.name.cmp(&y.name));
    let listed = store.list_users(&tenant("t")).await.expect("list");
    let listed_names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(listed_names, ["Alice", "_svc", "alice", "bob", "carol", "émile"]);
    assert_eq!(listed, want);
    let other: Vec<String> = store
        .list_users(&tenant("t2"))
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.name.as_str().to_owned())
        .collect();
    assert_eq!(other, ["0", "alice", "zed"]);
    assert!(store.list_users(&tenant("nobody")).await.expect("list").is_empty());
}

/// Many tasks read-modify-write one user with retries: every increment lands.
pub async fn user_concurrent_compare_and_set_loses_no_update(store: Arc<dyn UserStore>) {
    const TASKS: u64 = 16;
    const EACH: u64 = 10;
    put(&store, &sample_user("t", "alice")).await;
    let barrier = Arc::new(Barrier::new(usize::try_from(TASKS).expect("small")));
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                loop {
                    let current = get(&store, "t", "alice").await.expect("present");
                    // Let the others read the same version before this one
                    // writes, so that even a store that answers at once
                    // sees read-modify-write races.
                    tokio::task::yield_now().await;
                    let mut next = current.clone();
                    next.version = current.version + 1;
                    next.disabled = !current.disabled;
                    match store.update_user(&next, current.version).await {
                        Ok(()) => break,
                        Err(UserStoreError::VersionConflict { current: stored }) => {
                            assert_ne!(stored, current.version, "a conflict must name another version");
                            conflicts += 1;
                        }
                        Err(other) => panic!("update failed: {other:?}"),
                    }
                }
            }
            conflicts
        }));
    }
    for handle in handles {
        handle.await.expect("task");
    }
    let last = get(&store, "t", "alice").await.expect("present");
    assert_eq!(last.version, 1 + TASKS * EACH);
    // An even number of flips.
    assert!(!last.disabled);
}

/// Racing sign-ups of one name: exactly one wins, every other is `Exists`,
/// and the winner's record is the one stored.
pub async fn user_racing_inserts_of_one_name_have_one_winner(store: Arc<dyn UserStore>) {
    const TASKS: usize = 16;
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        handles.push(tokio::spawn(async move {
            let mut user = sample_user("t", "alice");
            user.password_hash = format!("$argon2id$v=19$m=19456,t=2,p=1$cmFjZQ$cmFjZXI{i:02}");
            barrier.wait().await;
            (user.clone(), store.insert_user(&user).await)
        }));
    }
    let mut winners = Vec::new();
    for handle in handles {
        match handle.await.expect("task") {
            (user, Ok(())) => winners.push(user),
            (_, Err(UserStoreError::Exists)) => {}
            (_, Err(other)) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(get(&store, "t", "alice").await.as_ref(), winners.first());
    assert_eq!(store.list_users(&tenant("t")).await.expect("list"), winners);
}

/// A delete removes the user and its listing, only in its tenant, and
/// frees the name; deleting again finds nothing.
pub async fn user_delete_removes_exactly_one_user_and_frees_the_name(store: Arc<dyn UserStore>) {
    let alice = sample_user("t", "alice");
    put(&store, &alice).await;
    put(&store, &sample_user("t", "bob")).await;
    put(&store, &sample_user("u", "alice")).await;
    let (tenant, name) = (alice.tenant.clone(), alice.name.clone());
    assert!(store.delete_user(&tenant, &name).await.expect("delete"));
    assert!(!store.delete_user(&tenant, &name).await.expect("delete again"));
    assert_eq!(get(&store, "t", "alice").await, None);
    let listed: Vec<String> = store
        .list_users(&tenant)
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    assert_eq!(listed, ["bob"]);
    assert!(
        get(&store, "u", "alice").await.is_some(),
        "another tenant's user went too"
    );
    put(&store, &alice).await;
    assert_eq!(get(&store, "t", "alice").await, Some(alice));
}
