//! Several sessiond nodes over one shared engine act as one: what one node
//! writes every other node sees at once, and limits and compare-and-set
//! hold when requests race across nodes.
//!
//! The scenarios are written once ([`scenarios`]) and run for every engine
//! that can be shared: `multi_node::redis::*`,
//! `multi_node::redis_cluster_scenarios::*` and `multi_node::postgres::*`.
//! Each test gets a store of its own (a key prefix on Redis, a schema on
//! PostgreSQL) on the server `scripts/test` starts (`TEST_REDIS_URL`,
//! `TEST_POSTGRES_URL`); without it the test is skipped with a note, and in
//! CI it fails. What only one engine has (a crash of that engine under
//! load, its start-up message) is in its own fault module.

mod access_tokens;
pub mod answers;
mod cluster;
mod failover;
mod postgres_fault;
mod record_cache;
mod redis_cluster;
mod redis_fault;
mod redis_sentinel;
mod scenarios;

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::json;
use sessiond_testkit::env::{required, unique_name};
use sessiond_testkit::server::Api;

use crate::support::{TestServer, launch};

/// An engine several nodes can share.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Redis,
    /// A Redis Cluster: three primaries, a replica each.
    RedisCluster,
    Postgres,
}

impl Engine {
    /// The URL of the test server: `None` after a note outside CI, a
    /// failure in CI.
    fn server(self) -> Option<String> {
        match self {
            Engine::Redis => required("TEST_REDIS_URL", "the multi-node tests over Redis"),
            Engine::RedisCluster => required("TEST_REDIS_CLUSTER_URL", "the multi-node tests over Redis Cluster"),
            Engine::Postgres => required("TEST_POSTGRES_URL", "the multi-node tests over PostgreSQL"),
        }
    }

    /// The store URL of a part of `server` no other test uses: a key prefix
    /// of its own (and a 1 s command timeout) on Redis, a schema of its own
    /// on PostgreSQL.
    pub fn isolated(self, server: &str) -> String {
        let joiner = if server.contains('?') { '&' } else { '?' };
        match self {
            Engine::Redis | Engine::RedisCluster => {
                format!("{server}{joiner}prefix={}:&timeout_ms=1000", unique_name("sd-nodes-"))
            }
            Engine::Postgres => format!("{server}{joiner}schema={}", unique_name("sd_test_")),
        }
    }

    /// An isolated store on the test server, or `None` (skip) without one.
    pub fn store(self) -> Option<String> {
        Some(self.isolated(&self.server()?))
    }
}

/// Generates, for each scenario, one test per engine:
/// `redis::<scenario>`, `redis_cluster_scenarios::<scenario>` and
/// `postgres::<scenario>`.
macro_rules! for_each_engine {
    ($($scenario:ident),+ $(,)?) => {
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::scenarios::$scenario(super::Engine::Redis).await;
                }
            )+
        }

        mod redis_cluster_scenarios {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    // Not while the failover test kills one of its nodes.
                    let _shared = super::redis_cluster::CLUSTER.read().await;
                    super::scenarios::$scenario(super::Engine::RedisCluster).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::scenarios::$scenario(super::Engine::Postgres).await;
                }
            )+
        }
    };
}

for_each_engine!(
    created_on_one_node_verified_on_another_revoked_on_a_third,
    a_subject_limit_holds_when_logins_race_across_nodes,
    evicting_the_oldest_keeps_the_limit_when_logins_race_across_nodes,
    concurrent_data_updates_across_nodes_lose_nothing,
    events_of_every_node_read_the_same_from_any_node,
    failed_logins_spread_over_nodes_lock_the_account_on_all,
    a_key_made_on_one_node_works_on_all_and_dies_everywhere_within_a_second,
    a_node_over_a_shared_store_writes_no_file,
    a_revocation_on_one_node_reaches_a_verifier_following_another_within_a_second,
    token_guessing_spread_over_two_nodes_is_recorded_once,
    login_burst_spread_over_two_nodes_is_recorded_once,
    events_made_on_one_node_reach_a_stream_on_another,
);

/// The key-rotation run takes 30 s: on Redis only, as issue 15 asks (the
/// store's compare-and-set is the same contract on PostgreSQL, checked by
/// the conformance suite).
mod redis_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signing_keys_rotate_under_three_nodes_without_a_failed_verification() {
        super::access_tokens::signing_keys_rotate_under_three_nodes_without_a_failed_verification(super::Engine::Redis)
            .await;
    }
}

/// `count` nodes over the same store, each with its own directory and key.
pub fn nodes(store: &str, count: usize, env: &[(&str, &str)]) -> Vec<TestServer> {
    (0..count).map(|_| launch().store(store).env(env).start()).collect()
}

/// `POST /v1/sessions/verify` of `token` on `node`; the raw response, for
/// [`assert_problem`](crate::support::assert_problem).
pub async fn verify(node: &TestServer, token: &str) -> Response {
    node.post("/v1/sessions/verify", json!({ "token": token })).await
}

/// The status of `GET /readyz` on a node (which must answer).
pub async fn readyz(node: &Api) -> StatusCode {
    let response = node.req(Method::GET, "/readyz").send().await;
    response.expect("the node itself stays up").status()
}

/// The value of an unlabelled counter in `node`'s `/metrics`, 0 if absent.
pub async fn counter(node: &TestServer, name: &str) -> u64 {
    let text = node.text("/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Polls `condition` every 50 ms, at most `tries` times; fails the test if
/// it never holds.
pub async fn wait_for(what: &str, tries: usize, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..tries {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}
