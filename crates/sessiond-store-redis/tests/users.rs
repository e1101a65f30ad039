//! What only the Redis user store has: its keys (one hash tag per tenant,
//! no TTL), damaged records read as `Corrupt`, and an absent server as
//! `Unavailable`.

use redis::AsyncCommands;
use sessiond_core::{Subject, Tenant, UserStore, UserStoreError};
use sessiond_store_redis::{RedisConfig, RedisStore};
use sessiond_testkit::user_conformance::sample_user;

use crate::support::{config, raw, redis_url};

fn t(name: &str) -> Tenant {
    Tenant::new(name).unwrap()
}

fn n(name: &str) -> Subject {
    Subject::new(name).unwrap()
}

#[tokio::test]
async fn a_tenants_accounts_share_a_hash_tag_and_never_expire() {
    let Some(url) = redis_url() else { return };
    let config = config(&url);
    let prefix = config.prefix.clone();
    let store = RedisStore::new(config).unwrap();
    store.insert_user(&sample_user("acme", "alice")).await.unwrap();
    store.insert_user(&sample_user("acme", "b}{ob")).await.unwrap();
    let mut con = raw(&url).await;
    let mut keys: Vec<String> = con.keys(format!("{prefix}*")).await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("{prefix}{{user:acme}}:names"),
            format!("{prefix}{{user:acme}}:u:alice"),
            format!("{prefix}{{user:acme}}:u:b}}{{ob"),
        ]
    );
    for key in &keys {
        let ttl: i64 = con.ttl(key).await.unwrap();
        assert_eq!(ttl, -1, "{key} has a TTL");
    }
}

#[tokio::test]
async fn damaged_accounts_are_corrupt_and_left_alone() {
    let Some(url) = redis_url() else { return };
    let config = config(&url);
    let prefix = config.prefix.clone();
    let store = RedisStore::new(config).unwrap();
    for name in ["alice", "bob", "carol", "dave"] {
        store.insert_user(&sample_user("t", name)).await.unwrap();
    }
    let mut con = raw(&url).await;
    let key = |name: &str| format!("{prefix}{{user:t}}:u:{name}");
    // Not JSON; a version that disagrees with the body; another user's record.
    let _: () = con.hset(key("alice"), "body", "{not json").await.unwrap();
    let _: () = con.hset(key("bob"), "v", "7").await.unwrap();
    let dave: String = con.hget(key("dave"), "body").await.unwrap();
    let _: () = con.hset(key("carol"), "body", &dave).await.unwrap();
    for name in ["alice", "bob", "carol"] {
        let got = store.get_user(&t("t"), &n(name)).await;
        assert!(matches!(got, Err(UserStoreError::Corrupt(_))), "{name}: {got:?}");
    }
    let listed = store.list_users(&t("t")).await;
    assert!(matches!(listed, Err(UserStoreError::Corrupt(_))), "{listed:?}");
    // A name in the index without its record.
    let _: () = con.del(&[key("alice"), key("bob"), key("carol")]).await.unwrap();
    let listed = store.list_users(&t("t")).await;
    assert!(matches!(listed, Err(UserStoreError::Corrupt(_))), "{listed:?}");
    assert_eq!(
        store.get_user(&t("t"), &n("dave")).await.unwrap(),
        Some(sample_user("t", "dave"))
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let store = RedisStore::new(RedisConfig::from_url("redis://127.0.0.1:1/?timeout_ms=500").unwrap()).unwrap();
    let user = sample_user("t", "alice");
    let got = store.get_user(&user.tenant, &user.name).await;
    assert!(matches!(got, Err(UserStoreError::Unavailable(_))), "{got:?}");
    let inserted = store.insert_user(&user).await;
    assert!(matches!(inserted, Err(UserStoreError::Unavailable(_))), "{inserted:?}");
    let updated = store.update_user(&user, 1).await;
    assert!(matches!(updated, Err(UserStoreError::Unavailable(_))), "{updated:?}");
    let listed = store.list_users(&user.tenant).await;
    assert!(matches!(listed, Err(UserStoreError::Unavailable(_))), "{listed:?}");
}
