//! Redis Cluster: the primary that holds the store's slot is killed
//! (SIGKILL) under load ([`kill_under_load`] says what must hold), its
//! replica takes the slot over, and the nodes follow it by themselves.
//!
//! The cluster is the one scripts/test starts (`start_redis_cluster` in
//! scripts/servers/redis.sh): three primaries with one replica each. Once
//! the replica took over, the killed node is started again and rejoins as
//! its replica: until then writes fail their `WAIT`. Other tests use the
//! cluster after this one, which ends when every primary has a replica.

use std::path::PathBuf;
use std::process::Command;

use sessiond_testkit::env::required;

use super::failover::{ask, ask_text, kill_under_load};
use super::{Engine, nodes, wait_for};

/// The cluster's node that answers for `key` itself (its slot's master;
/// the others redirect), among `ports`.
fn owner_of(key: &str, ports: &[u16]) -> Option<u16> {
    ports
        .iter()
        .copied()
        .find(|port| ask(*port, &format!("GET {key}"), 1).is_some_and(|reply| reply[0] == "$-1"))
}

/// Every node answers, sees the cluster ok, and every primary has its
/// replica online.
fn healthy(ports: &[u16]) -> bool {
    ports.iter().all(|port| {
        let ok = ask_text(*port, "CLUSTER INFO").is_some_and(|info| info.contains("cluster_state:ok"));
        let replicated = ask_text(*port, "INFO replication").is_some_and(|info| {
            !info.contains("role:master") || (info.contains("connected_slaves:1") && info.contains("state=online"))
        });
        ok && replicated
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_killed_primary_of_the_stores_slot_fails_over_under_load_and_loses_nothing_acknowledged() {
    let what = "the Redis Cluster failover test";
    let Some(url) = required("TEST_REDIS_CLUSTER_URL", what) else {
        return;
    };
    let Some(ports) = required("TEST_REDIS_CLUSTER_PORTS", what) else {
        return;
    };
    let Some(dir) = required("TEST_REDIS_CLUSTER_DIR", what) else {
        return;
    };
    let ports: Vec<u16> = ports.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(healthy(&ports), "the test cluster is not whole: run scripts/test again");

    // Every write waits for one replica; the command timeout (1 s) bounds
    // each call while the slot has no master.
    let store = format!("{}&wait_replicas=1&wait_timeout_ms=500", Engine::Redis.isolated(&url));
    let prefix = store
        .split("prefix=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let owner = owner_of(&format!("{{{prefix}}}probe"), &ports).unwrap();
    let node_dir = PathBuf::from(dir).join(owner.to_string());
    let pid = std::fs::read_to_string(node_dir.join("pid")).unwrap().trim().to_owned();

    let nodes = nodes(&store, 2, &[]);
    let living: Vec<u16> = ports.iter().copied().filter(|p| *p != owner).collect();
    let probe = format!("{{{prefix}}}probe");
    let restart = {
        let (living, probe, start) = (living.clone(), probe.clone(), node_dir.join("start"));
        // The promoted replica has no replica of its own: every write
        // fails its WAIT (503) until the killed node, started again as an
        // operator's supervisor would, rejoins as its replica.
        move || {
            for _ in 0..300 {
                if owner_of(&probe, &living).is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // In the background of a shell that exits at once: the node
            // outlives this test, and scripts/test stops it with the rest.
            let started = Command::new("bash")
                .args(["-c", "\"$0\" &"])
                .arg(start)
                .status()
                .unwrap();
            assert!(started.success());
        }
    };
    kill_under_load(&nodes, || {
        let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success(), "kill -KILL {pid} failed");
        std::thread::spawn(restart);
    })
    .await;
    let new_owner = owner_of(&probe, &living);
    assert!(new_owner.is_some(), "no living node holds the store's slot");
    wait_for("the killed node back as a replica", 600, async || healthy(&ports)).await;
    assert_eq!(
        ask(owner, "ROLE", 3).map(|reply| reply[2].clone()).as_deref(),
        Some("slave"),
        "the restarted node is a replica now"
    );
}
