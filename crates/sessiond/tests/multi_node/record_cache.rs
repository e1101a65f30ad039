//! The nodes' record cache (`cache_entries`, over Redis and PostgreSQL)
//! seen from outside: hot sessions are answered from it, `/metrics`
//! counts it, and a revocation acknowledged on one node fails the next
//! verify on a node that had the session cached.

use reqwest::Method;
use serde_json::json;

use super::{Engine, counter, nodes, verify, wait_for};
use crate::support::assert_problem;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_redis_a_cached_session_revoked_elsewhere_fails_the_next_verify() {
    revoked_elsewhere(Engine::Redis, "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_postgres_a_cached_session_revoked_elsewhere_fails_the_next_verify() {
    revoked_elsewhere(Engine::Postgres, "postgres").await;
}

/// Two nodes over `engine` with the cache on; its counts in `/metrics` are
/// `sessiond_<metric>_cache_*_total`.
async fn revoked_elsewhere(engine: Engine, metric: &str) {
    let Some(store) = engine.store() else { return };
    let n = nodes(&format!("{store}&cache_entries=1000"), 2, &[]);
    let (token, _) = n[0].login("alice").await;
    for _ in 0..3 {
        assert_eq!(verify(&n[1], &token).await.status(), 200);
    }
    let name = |what: &str| format!("sessiond_{metric}_cache_{what}_total");
    // The counts reach /metrics with the metrics upkeep (every 5 s).
    wait_for("node 1's cache hits in /metrics", 200, async || {
        counter(&n[1], &name("hits")).await >= 2
    })
    .await;
    assert!(counter(&n[1], &name("misses")).await >= 1);
    assert!(counter(&n[1], &name("barriers")).await >= 1);

    let (status, _) = n[0]
        .json(Method::POST, "/v1/sessions/revoke", Some(json!({ "token": token })))
        .await;
    assert_eq!(status, 204);
    assert_problem(verify(&n[1], &token).await, 401, "invalid_token").await;
    wait_for("node 1's invalidation in /metrics", 200, async || {
        counter(&n[1], &name("invalidations")).await >= 1
    })
    .await;
}
