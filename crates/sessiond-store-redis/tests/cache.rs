//! The node-local cache (`cache_entries`, off by default): every
//! conformance suite through a store with it on, and what only the cache
//! has: hits that wait for one barrier, another node's acknowledged change
//! seen by the very next verify, and a lost cache connection never
//! answering from memory.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{Audit, Clock as _, SessionStore, SystemClock, truncate_to_micros};
use sessiond_store_redis::{ConfigError, RedisConfig, RedisStore};
use sessiond_testkit::conformance::sample;
use sessiond_testkit::record_cache::{
    cached_on_b, changes_on_a_reach_the_next_verify_on_b, concurrent_verifies_share_barriers, create, revocation,
    revoked_while_b_was_cut_off,
};

use crate::support::{redis_conformance, redis_url, unique_prefix};

fn cached(url: &str, prefix: &str) -> RedisConfig {
    cached_with(url, prefix, "")
}

/// A cached store's config with `more` query parameters (`&name=value`).
fn cached_with(url: &str, prefix: &str, more: &str) -> RedisConfig {
    let joiner = if url.contains('?') { '&' } else { '?' };
    RedisConfig::from_url(&format!("{url}{joiner}cache_entries=1000{more}"))
        .unwrap()
        .with_prefix(prefix)
}

redis_conformance!(redis_url().map(|url| cached(&url, &unique_prefix())));

/// The same suites through a cache with a lag bound: a node reads its own
/// writes at once whatever the bound.
mod lag_bounded {
    use super::*;

    redis_conformance!(redis_url().map(|url| cached_with(&url, &unique_prefix(), "&cache_lag_ms=1000")));
}

/// Two nodes (two handles with their own connections and caches) on one
/// keyspace.
fn two_nodes(url: &str) -> (RedisStore, RedisStore) {
    let prefix = unique_prefix();
    let node = || RedisStore::new(cached(url, &prefix)).unwrap();
    (node(), node())
}

#[tokio::test]
async fn a_second_read_is_a_hit_after_one_barrier() {
    let Some(url) = redis_url() else { return };
    let (a, _) = two_nodes(&url);
    let session = create(&a, "alice").await;
    for _ in 0..2 {
        let found = a.get_by_token(&session.token_hash).await.unwrap().unwrap();
        assert_eq!(found.id, session.id);
    }
    let counts = a.cache_statistics().unwrap();
    assert_eq!((counts.hits, counts.misses, counts.barriers), (1, 1, 1));
    // An unknown token is never a hit, whatever the cache holds.
    let stranger = sample("t", "mallory", truncate_to_micros(SystemClock.now()));
    assert!(a.get_by_token(&stranger.token_hash).await.unwrap().is_none());
}

/// The cluster invariant through caches (see the testkit's
/// `record_cache`): every round fails without the barrier.
#[tokio::test]
async fn another_nodes_acknowledged_changes_reach_the_next_verify() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url);
    changes_on_a_reach_the_next_verify_on_b(&a, &b, 300).await;
    let counts = b.cache_statistics().unwrap();
    assert!(counts.hits >= 300, "{counts:?}");
    assert!(counts.invalidations >= 300, "{counts:?}");
}

fn lag_bounded(url: &str, lag_ms: u64) -> RedisStore {
    RedisStore::new(cached_with(url, &unique_prefix(), &format!("&cache_lag_ms={lag_ms}"))).unwrap()
}

/// Under a lag bound a hit waits for no `PING` while the last one that
/// came back is fresh: one after another, 50 hits share a few `PING`s
/// where the exact cache sends one each (they cannot overlap).
#[tokio::test]
async fn under_a_lag_bound_hits_share_the_last_fresh_ping() {
    let Some(url) = redis_url() else { return };
    let store = lag_bounded(&url, 1000);
    let session = create(&store, "alice").await;
    for _ in 0..51 {
        assert!(store.get_by_token(&session.token_hash).await.unwrap().is_some());
    }
    let counts = store.cache_statistics().unwrap();
    assert_eq!((counts.hits, counts.misses), (50, 1), "{counts:?}");
    // The first hit found no PING and waited for one; the others pass on it
    // (and on one sent ahead should half a second pass meanwhile).
    assert!(counts.barriers <= 3, "{counts:?}");
}

/// The bound holds: once the last `PING` that came back is older than
/// it, the next hit waits for a new one, so a change acknowledged before
/// that `PING` was sent is seen.
#[tokio::test]
async fn under_a_lag_bound_a_hit_after_it_waits_for_a_new_ping() {
    let Some(url) = redis_url() else { return };
    let store = lag_bounded(&url, 20);
    let session = create(&store, "alice").await;
    for _ in 0..2 {
        assert!(store.get_by_token(&session.token_hash).await.unwrap().is_some());
    }
    let before = store.cache_statistics().unwrap();
    assert_eq!((before.hits, before.barriers), (1, 1), "{before:?}");
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(store.get_by_token(&session.token_hash).await.unwrap().is_some());
    let after = store.cache_statistics().unwrap();
    assert_eq!((after.hits, after.barriers), (2, 2), "{after:?}");
}

/// The bound is for other nodes' changes: a node's own revocation fails
/// its very next verify, as without a bound, even while the last `PING`
/// that came back is fresh. It fails if a node's writes leave the
/// freshness alone: the invalidation then races the verify, and lost it 3
/// to 8 times in 1000 rounds here.
#[tokio::test]
async fn under_a_lag_bound_a_nodes_own_revocation_fails_its_next_verify() {
    let Some(url) = redis_url() else { return };
    let store = lag_bounded(&url, 1000);
    let mut stale = 0;
    for round in 0..1000 {
        let session = create(&store, &format!("user{round}")).await;
        for _ in 0..2 {
            assert!(store.get_by_token(&session.token_hash).await.unwrap().is_some());
        }
        let revoked = revocation();
        store.revoke(&session.id, revoked, &Audit::NONE).await.unwrap().unwrap();
        let seen = store.get_by_token(&session.token_hash).await.unwrap().unwrap();
        if seen.revoked != Some(revoked) {
            stale += 1;
        }
    }
    assert_eq!(stale, 0, "of 1000 own revocations, this many verified right after");
    let counts = store.cache_statistics().unwrap();
    assert!(counts.hits >= 1000, "{counts:?}");
}

#[tokio::test]
async fn concurrent_verifies_share_barriers_and_none_starts_stale() {
    let Some(url) = redis_url() else { return };
    let (a, b) = two_nodes(&url);
    let b = Arc::new(b);
    let counts = Arc::clone(&b);
    concurrent_verifies_share_barriers(&a, b, move || counts.cache_statistics().unwrap().barriers).await;
}

/// The cache's connection killed by the server: the node answers
/// unavailable or reads Redis again, never from the memory of before.
#[tokio::test]
async fn a_killed_cache_connection_never_answers_from_memory() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let node = || RedisStore::new(cached(&url, &prefix)).unwrap();
    let (a, b) = (node(), node());
    let session = cached_on_b(&a, &b).await;
    let admin = redis::Client::open(url.as_str()).unwrap();
    let mut admin = admin.get_multiplexed_async_connection().await.unwrap();
    let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut admin).await.unwrap();
    // The tracking connections (flag t) of these two nodes, by their name:
    // other tests' nodes on the same server would answer unavailable, and
    // fail, if theirs went too.
    let name = format!("sessiond-cache:{prefix}t:");
    let mut killed = 0;
    for line in clients.lines() {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        if field("flags").is_some_and(|flags| flags.contains('t')) && field("name") == Some(name.as_str()) {
            let id = field("id").unwrap();
            let _: redis::Value = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query_async(&mut admin)
                .await
                .unwrap();
            killed += 1;
        }
    }
    assert!(
        killed >= 1,
        "no tracking connection named {name} in CLIENT LIST:\n{clients}"
    );
    revoked_while_b_was_cut_off(&a, &b, &session).await;
}

#[test]
fn the_cache_is_off_unless_asked_and_its_parameters_are_checked() {
    assert_eq!(RedisConfig::from_url("redis://h").unwrap().cache, None);
    let five = RedisConfig::from_url("redis://h?cache_entries=5")
        .unwrap()
        .cache
        .unwrap();
    assert_eq!(five.entries.get(), 5);
    assert_eq!(RedisConfig::from_url("redis://h?cache_entries=0").unwrap().cache, None);
    assert_eq!(RedisConfig::from_url("redis+sentinel://s1/m").unwrap().cache, None);
    assert_eq!(
        RedisConfig::from_url("redis+sentinel://s1/m?cache_entries=0")
            .unwrap()
            .cache,
        None
    );
    assert_eq!(five.max_lag, Duration::ZERO, "exact unless a lag is asked for");
    let bounded = RedisConfig::from_url("redis://h?cache_entries=5&cache_lag_ms=20")
        .unwrap()
        .cache
        .unwrap();
    assert_eq!(bounded.max_lag, Duration::from_millis(20));
    assert_eq!(
        RedisConfig::from_url("redis://h?cache_lag_ms=0").unwrap().cache,
        None,
        "a zero bound asks for nothing"
    );
    for (url, name) in [
        ("redis://h?cache_entries=x", "cache_entries"),
        ("redis://h?cache_entries=-1", "cache_entries"),
        ("redis://h?cache_stale_ms=100", "cache_stale_ms"),
        ("redis+cluster://n1?cache_entries=5", "cache_entries"),
        ("redis://h?cache_entries=5&cache_lag_ms=x", "cache_lag_ms"),
        ("redis://h?cache_entries=5&cache_lag_ms=-1", "cache_lag_ms"),
        ("redis://h?cache_entries=5&cache_lag_ms=1001", "cache_lag_ms"),
        ("redis://h?cache_lag_ms=20", "cache_lag_ms"),
    ] {
        match RedisConfig::from_url(url) {
            Err(ConfigError::Parameter { name: got, .. }) => assert_eq!(got, name, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}
