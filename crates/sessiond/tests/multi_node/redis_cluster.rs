//! Redis Cluster: the primary that holds the slot of the store's first
//! shard (and the slots of about a third of the others) is killed
//! (SIGKILL) under load ([`kill_under_load`] says what must hold), its
//! replica takes its slots over, and the nodes follow it by themselves.
//! Every store on the cluster spans all primaries, so this test holds the
//! cluster alone ([`CLUSTER`]): the scenarios over it wait.
//!
//! The cluster is the one scripts/test starts (`start_redis_cluster` in
//! scripts/servers/redis.sh): three primaries with one replica each. Once
//! the replica took over, the killed node is started again and rejoins as
//! its replica: until then writes fail their `WAIT`. Other tests use the
//! cluster after this one, which ends when every primary has a replica.

use std::path::PathBuf;
use std::process::Command;

use sessiond_testkit::env::required;

use tokio::sync::RwLock;

use super::failover::{ask, ask_text, kill_under_load};
use super::{Engine, nodes};

/// Held for reading by every other test on the cluster, for writing by
/// the one that kills a node.
pub static CLUSTER: RwLock<()> = RwLock::const_new(());

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
async fn a_killed_primary_fails_over_under_load_and_loses_nothing_acknowledged() {
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
    let _alone = CLUSTER.write().await;
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
    // The primary of the store's first shard (its keys are tagged with the
    // prefix and the shard's number) is the one killed; the logins under
    // load fall in every shard.
    let probe = format!("{{{prefix}00}}probe");
    let owner = owner_of(&probe, &ports).unwrap();
    let node_dir = PathBuf::from(dir).join(owner.to_string());
    let pid = std::fs::read_to_string(node_dir.join("pid")).unwrap().trim().to_owned();

    let nodes = nodes(&store, 2, &[]);
    let living: Vec<u16> = ports.iter().copied().filter(|p| *p != owner).collect();
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
    let kill = || {
        let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success(), "kill -KILL {pid} failed");
        std::thread::spawn(restart);
    };
    // Recovered once another node holds the slot and every primary has a
    // replica again (the killed node, started again, rejoined as one).
    let whole = async || owner_of(&probe, &living).is_some() && healthy(&ports);
    kill_under_load(&nodes, kill, whole).await;
    assert_eq!(
        ask(owner, "ROLE", 3).map(|reply| reply[2].clone()).as_deref(),
        Some("slave"),
        "the restarted node is a replica now"
    );
}
