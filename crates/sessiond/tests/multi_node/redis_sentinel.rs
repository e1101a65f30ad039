//! Redis Sentinel: the primary is killed (SIGKILL) under load
//! ([`kill_under_load`] says what must hold), and the sentinels name
//! another master afterwards. One of the two nodes keeps the record cache
//! (`cache_entries`), which must follow the master too and never answer a
//! revoked session from memory.
//!
//! The sentinel set is the one scripts/test starts (`start_redis_sentinel`
//! in scripts/servers/redis.sh): its primary can be killed once, so a second
//! run needs a fresh set (run scripts/test again).

use std::process::Command;

use sessiond_testkit::env::required;

use super::failover::{ask, kill_under_load};
use super::{Engine, counter, wait_for};
use crate::support::launch;

/// The port of the master the sentinel on `sentinel` names.
fn master_port(sentinel: u16) -> Option<u16> {
    let reply = ask(sentinel, "SENTINEL get-master-addr-by-name sessiond-test", 5)?;
    reply.get(4)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_fails_over_under_load_and_loses_nothing_acknowledged() {
    let what = "the Redis Sentinel failover test";
    let Some(url) = required("TEST_REDIS_SENTINEL_URL", what) else {
        return;
    };
    let Some(pid) = required("TEST_REDIS_SENTINEL_PRIMARY_PID", what) else {
        return;
    };
    let Some(primary) = required("TEST_REDIS_SENTINEL_PRIMARY_PORT", what) else {
        return;
    };
    let primary: u16 = primary.parse().unwrap();
    let sentinel: u16 = url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ask(primary, "ROLE", 3).map(|reply| reply[2].clone()).as_deref(),
        Some("master"),
        "the sentinel set's first primary is gone: a failover test needs a fresh set (run scripts/test)"
    );
    assert_eq!(master_port(sentinel), Some(primary));

    // Every write waits for one replica (the set has two); the command
    // timeout (1 s) bounds each call while the master is gone.
    let store = format!("{}&wait_replicas=1&wait_timeout_ms=500", Engine::Redis.isolated(&url));
    let cached = format!("{store}&cache_entries=10000");
    let nodes = [launch().store(&store).start(), launch().store(&cached).start()];
    let kill = || {
        let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success(), "kill -KILL {pid} failed");
    };
    // Recovered once the sentinels name another master (the nodes find it
    // by themselves; kill_under_load checks that they do).
    let promoted = async || master_port(sentinel).is_some_and(|port| port != primary);
    kill_under_load(&nodes, kill, promoted).await;
    // The cached node did answer from memory (the final checks read every
    // session again), so what held above held for its cache too.
    wait_for("the cached node's hits in /metrics", 200, async || {
        counter(&nodes[1], "sessiond_redis_cache_hits_total").await > 0
    })
    .await;
}
