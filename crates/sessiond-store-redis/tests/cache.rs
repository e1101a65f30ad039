//! The node-local cache (`cache_entries`): every conformance suite through
//! a store with it on (its connection speaks RESP3), and what only the
//! cache has: hits without a round trip, and another node's revocation
//! reaching the cache by Redis' invalidation message.

use std::time::{Duration, Instant};

use sessiond_core::{
    Audit, Clock as _, Revocation, RevokeReason, SessionStore, SubjectLimit, SystemClock, truncate_to_micros,
};
use sessiond_store_redis::{RedisConfig, RedisStore};
use sessiond_testkit::conformance::sample;

use crate::support::{redis_conformance, redis_url, unique_prefix};

fn cached(url: &str, prefix: &str) -> RedisConfig {
    let joiner = if url.contains('?') { '&' } else { '?' };
    RedisConfig::from_url(&format!("{url}{joiner}cache_entries=1000&cache_stale_ms=60000"))
        .unwrap()
        .with_prefix(prefix)
}

redis_conformance!(redis_url().map(|url| cached(&url, &unique_prefix())));

/// Node B reads a session twice (a miss, then a hit); node A revokes it;
/// B's cache learns it from Redis' invalidation message, long before the
/// entry's 60 s stale bound.
#[tokio::test]
async fn another_nodes_revocation_reaches_the_cache_by_invalidation() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = RedisStore::new(cached(&url, &prefix)).unwrap();
    let b = RedisStore::new(cached(&url, &prefix)).unwrap();
    let now = truncate_to_micros(SystemClock.now());
    let session = sample("t", "alice", now);
    let revocation = Revocation {
        at: now,
        reason: RevokeReason::Logout,
    };
    a.insert(&session, SubjectLimit::Unlimited, now, revocation, &Audit::NONE)
        .await
        .unwrap();

    for _ in 0..2 {
        let found = b.get_by_token(&session.token_hash).await.unwrap().unwrap();
        assert_eq!(found.revoked, None);
    }
    let counts = b.cache_statistics().unwrap();
    assert_eq!((counts.hit, counts.miss), (1, 1));

    a.revoke(&session.id, revocation, &Audit::NONE).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = b.get_by_token(&session.token_hash).await.unwrap().unwrap();
        if found.revoked == Some(revocation) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B still serves the live session 5 s after A revoked it"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(b.cache_statistics().unwrap().invalidate >= 1);
}

#[test]
fn the_cache_is_off_unless_asked_and_its_parameters_are_checked() {
    use sessiond_store_redis::ConfigError;
    assert_eq!(RedisConfig::from_url("redis://h").unwrap().cache, None);
    let on = RedisConfig::from_url("redis://h?cache_entries=5")
        .unwrap()
        .cache
        .unwrap();
    assert_eq!(
        (on.entries.get(), on.stale),
        (5, sessiond_store_redis::DEFAULT_CACHE_STALE)
    );
    for (url, name) in [
        ("redis://h?cache_entries=0", "cache_entries"),
        ("redis://h?cache_entries=x", "cache_entries"),
        ("redis://h?cache_stale_ms=100", "cache_stale_ms"),
        ("redis://h?cache_entries=5&cache_stale_ms=0", "cache_stale_ms"),
        ("redis+sentinel://s1/m?cache_entries=5", "cache_entries"),
    ] {
        match RedisConfig::from_url(url) {
            Err(ConfigError::Parameter { name: got, .. }) => assert_eq!(got, name, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}
