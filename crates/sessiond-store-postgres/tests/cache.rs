//! The node-local cache (`cache_entries`, off by default) over PostgreSQL:
//! the session conformance suite through a store with it on, and what
//! only the cache has: hits that wait for one barrier, another node's
//! acknowledged change seen by the very next verify, and a lost listening
//! connection never answering from memory.

use std::sync::Arc;

use sessiond_core::{Clock as _, SessionStore, SystemClock, truncate_to_micros};
use sessiond_store_postgres::{OpenError, PostgresOptions, PostgresStore};
use sessiond_testkit::conformance::sample;
use sessiond_testkit::record_cache::{
    cached_on_b, changes_on_a_reach_the_next_verify_on_b, concurrent_verifies_share_barriers, create,
    revoked_while_b_was_cut_off,
};

use crate::support::{fresh_schema, raw, server_url, with_schema};

/// `url` for a new schema with the cache on and `more` parameters.
fn cached_url(url: &str, more: &str) -> String {
    format!("{}&cache_entries=1000{more}", with_schema(url, &fresh_schema()))
}

async fn cached_store(more: &'static str) -> Option<Arc<dyn SessionStore>> {
    let url = cached_url(&server_url()?, more);
    Some(Arc::new(PostgresStore::open(&url).await.unwrap()))
}

async fn exact() -> Option<Arc<dyn SessionStore>> {
    cached_store("").await
}

sessiond_testkit::store_conformance!(exact);

/// The same suite through a cache with a lag bound: a node reads its own
/// writes at once whatever the bound.
mod lag_bounded {
    use super::*;

    async fn bounded() -> Option<Arc<dyn SessionStore>> {
        cached_store("&cache_lag_ms=1000").await
    }

    sessiond_testkit::store_conformance!(bounded);
}

/// Two nodes (two handles with their own pools and caches) on one schema.
async fn two_nodes(url: &str) -> (PostgresStore, PostgresStore) {
    let url = cached_url(url, "");
    (
        PostgresStore::open(&url).await.unwrap(),
        PostgresStore::open(&url).await.unwrap(),
    )
}

#[tokio::test]
async fn a_second_read_is_a_hit_after_one_barrier() {
    let Some(url) = server_url() else { return };
    let (a, _) = two_nodes(&url).await;
    let session = create(&a, "alice").await;
    for _ in 0..2 {
        let found = a.get_by_token(&session.token_hash).await.unwrap().unwrap();
        assert_eq!(found.id, session.id);
    }
    let counts = a.cache_statistics().unwrap();
    assert_eq!((counts.hits, counts.misses, counts.barriers), (1, 1, 1));
    let stranger = sample("t", "mallory", truncate_to_micros(SystemClock.now()));
    assert!(a.get_by_token(&stranger.token_hash).await.unwrap().is_none());
    assert_eq!(PostgresStore::open(&url).await.unwrap().cache_statistics(), None);
}

/// The cluster invariant through caches (see the testkit's
/// `record_cache`): every round fails without the barrier.
#[tokio::test]
async fn another_nodes_acknowledged_changes_reach_the_next_verify() {
    let Some(url) = server_url() else { return };
    let (a, b) = two_nodes(&url).await;
    changes_on_a_reach_the_next_verify_on_b(&a, &b, 300).await;
    let counts = b.cache_statistics().unwrap();
    assert!(counts.hits >= 300, "{counts:?}");
    assert!(counts.invalidations >= 300, "{counts:?}");
}

#[tokio::test]
async fn concurrent_verifies_share_barriers_and_none_starts_stale() {
    let Some(url) = server_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let b = Arc::new(b);
    let counts = Arc::clone(&b);
    concurrent_verifies_share_barriers(&a, b, move || counts.cache_statistics().unwrap().barriers).await;
}

/// The listening connection killed by the server: the node reads
/// PostgreSQL again (or, in the moment it notices, answers unavailable),
/// never from the memory of before.
#[tokio::test]
async fn a_killed_listener_never_answers_from_memory() {
    let Some(url) = server_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let session = cached_on_b(&a, &b).await;
    // Both nodes' listeners: the one of A has read nothing, and must
    // survive the loss as well.
    let killed = raw(&url)
        .await
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("sessiond-cache:{}", schema_of(&a))],
        )
        .await
        .unwrap();
    assert!(
        !killed.is_empty(),
        "no listener of {} in pg_stat_activity",
        a.location()
    );
    revoked_while_b_was_cut_off(&a, &b, &session).await;
}

/// A truncation fires no row trigger: its own notification empties every
/// node's cache.
#[tokio::test]
async fn a_truncated_table_empties_the_cache() {
    let Some(url) = server_url() else { return };
    let (a, b) = two_nodes(&url).await;
    let session = cached_on_b(&a, &b).await;
    raw(&url)
        .await
        .batch_execute(&format!("TRUNCATE {}.sessions CASCADE", schema_of(&a)))
        .await
        .unwrap();
    assert!(b.get_by_token(&session.token_hash).await.unwrap().is_none());
}

/// The schema a store uses, from its location (`… (schema NAME)`).
fn schema_of(store: &PostgresStore) -> String {
    let (_, schema) = store.location().rsplit_once("(schema ").unwrap();
    schema.trim_end_matches(')').to_owned()
}

/// Notifying costs every writer, so a store gets its triggers only once a
/// node opens it with a cache, and keeps them.
#[tokio::test]
async fn only_a_caching_node_gives_the_store_its_triggers() {
    let Some(url) = server_url() else { return };
    let plain = with_schema(&url, &fresh_schema());
    let triggers = async |store: &PostgresStore| -> i64 {
        raw(&url)
            .await
            .query_one(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = $1::text::regclass AND NOT tgisinternal",
                &[&format!("{}.sessions", schema_of(store))],
            )
            .await
            .unwrap()
            .get(0)
    };
    let store = PostgresStore::open(&plain).await.unwrap();
    assert_eq!(triggers(&store).await, 0);
    let cached = format!("{plain}&cache_entries=10");
    for _ in 0..2 {
        let store = PostgresStore::open(&cached).await.unwrap();
        assert_eq!(triggers(&store).await, 2);
    }
    assert_eq!(triggers(&PostgresStore::open(&plain).await.unwrap()).await, 2);
}

#[test]
fn the_cache_is_off_unless_asked_and_its_parameters_are_checked() {
    let base = "postgres://u@h/db";
    let cache = |query: &str| PostgresOptions::from_url(&format!("{base}?{query}")).map(|o| format!("{o:?}"));
    assert!(cache("schema=s").unwrap().contains("cache: None"));
    assert!(cache("cache_entries=0").unwrap().contains("cache: None"));
    let on = cache("cache_entries=5&cache_lag_ms=20").unwrap();
    assert!(on.contains("entries: 5") && on.contains("max_lag: 20ms"), "{on}");
    for (query, message) in [
        (
            "cache_entries=x",
            "invalid PostgreSQL URL: cache_entries: not a number of entries",
        ),
        (
            "cache_entries=5&cache_lag_ms=1001",
            "invalid PostgreSQL URL: cache_lag_ms: at most 1000",
        ),
        (
            "cache_lag_ms=5",
            "invalid PostgreSQL URL: cache_lag_ms: needs cache_entries",
        ),
    ] {
        match PostgresOptions::from_url(&format!("{base}?{query}")) {
            Err(error @ OpenError::Cache(_)) => assert_eq!(error.to_string(), message, "{query}"),
            other => panic!("{query}: {other:?}"),
        }
    }
}
