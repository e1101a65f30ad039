//! The Redis nodes' record cache (`cache_entries`) seen from outside: hot
//! sessions are answered from it, `/metrics` counts it, and a revocation
//! acknowledged on one node fails the next verify on a node that had the
//! session cached.

use reqwest::Method;
use serde_json::json;

use super::{Engine, counter, nodes, verify, wait_for};
use crate::support::assert_problem;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_session_revoked_elsewhere_fails_the_next_verify_and_metrics_count_the_cache() {
    let Some(store) = Engine::Redis.store() else { return };
    let n = nodes(&format!("{store}&cache_entries=1000"), 2, &[]);
    let (token, _) = n[0].login("alice").await;
    for _ in 0..3 {
        assert_eq!(verify(&n[1], &token).await.status(), 200);
    }
    // The counts reach /metrics with the metrics upkeep (every 5 s).
    wait_for("node 1's cache hits in /metrics", 200, async || {
        counter(&n[1], "sessiond_redis_cache_hits_total").await >= 2
    })
    .await;
    assert!(counter(&n[1], "sessiond_redis_cache_misses_total").await >= 1);
    assert!(counter(&n[1], "sessiond_redis_cache_barriers_total").await >= 1);

    let (status, _) = n[0]
        .json(Method::POST, "/v1/sessions/revoke", Some(json!({ "token": token })))
        .await;
    assert_eq!(status, 204);
    assert_problem(verify(&n[1], &token).await, 401, "invalid_token").await;
    wait_for("node 1's invalidation in /metrics", 200, async || {
        counter(&n[1], "sessiond_redis_cache_invalidations_total").await >= 1
    })
    .await;
}
