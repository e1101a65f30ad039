//! Through Redis Sentinel (`TEST_REDIS_SENTINEL_URL`, started by
//! scripts/test): the conformance suites unchanged, every write waiting for
//! one replica; and `WAIT` failing a write closed when no replica confirms.
//! The failover itself is tested on real nodes (sessiond's
//! `multi_node::redis_sentinel`).

use sessiond_core::{Audit, Clock as _, Revocation, RevokeReason, SessionStore, StoreError, SubjectLimit, SystemClock};
use sessiond_store_redis::{RedisConfig, RedisStore};
use sessiond_testkit::conformance::sample;
use sessiond_testkit::env::required;

use crate::support::{redis_conformance, redis_url, unique_prefix};

/// The configuration of a fresh store through the sentinels, waiting for
/// one replica per write; `None` (skip, or a failure in CI) without them.
fn config() -> Option<RedisConfig> {
    config_with("")
}

fn config_with(more: &str) -> Option<RedisConfig> {
    let url = required("TEST_REDIS_SENTINEL_URL", "the Redis Sentinel tests")?;
    let config = RedisConfig::from_url(&format!("{url}?wait_replicas=1&wait_timeout_ms=1000{more}")).unwrap();
    Some(config.with_prefix(unique_prefix()))
}

redis_conformance!(config());

/// The same suites through a store with the node-local cache, which under
/// Sentinel reads from the master the sentinels name.
mod cached {
    use crate::support::redis_conformance;

    redis_conformance!(super::config_with("&cache_entries=1000"));
}

/// The plain test server has no replica: with `wait_replicas=1` a write is
/// applied there but never confirmed, so it fails as unavailable (503), not
/// as acknowledged; reads wait for nothing and still answer.
#[tokio::test]
async fn a_write_no_replica_confirms_fails_as_unavailable() {
    let Some(url) = redis_url() else { return };
    let joiner = if url.contains('?') { '&' } else { '?' };
    let waiting = RedisConfig::from_url(&format!("{url}{joiner}wait_replicas=1&wait_timeout_ms=50"))
        .unwrap()
        .with_prefix(unique_prefix());
    let waiting = RedisStore::new(waiting).unwrap();
    let (session, refused) = insert_once_up(&waiting, "the test server did not answer").await;
    match refused {
        Err(StoreError::Unavailable(cause)) => {
            assert_eq!(cause.to_string(), "0 of 1 replicas confirmed the write within 50 ms");
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    // The write did reach the primary (WAIT cannot undo it): a read finds
    // it, and reads wait for no replica.
    let found = waiting.get_by_id(&session.id).await.unwrap();
    assert_eq!(found.map(|s| s.id.clone()), Some(session.id.clone()));
}

/// Waits (at most 5 s) until `store` answers, else fails with `silent`;
/// then inserts a sample session and returns it with the insert's result.
async fn insert_once_up(
    store: &RedisStore,
    silent: &str,
) -> (sessiond_core::Session, Result<sessiond_core::Inserted, StoreError>) {
    let mut up = false;
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "{silent}");
    let now = SystemClock.now();
    let session = sample("t", "alice", now);
    let revocation = Revocation {
        at: now,
        reason: RevokeReason::Limit,
    };
    let inserted = store
        .insert(&session, SubjectLimit::Unlimited, now, revocation, &Audit::NONE)
        .await;
    (session, inserted)
}

/// A redis-server (or sentinel) of the test's own on a free loopback port,
/// killed when dropped.
struct Spawned {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Spawned {
    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// A server with `args` after its port, address and an empty dataset.
    fn redis(bin: &str, args: &[&str]) -> Self {
        let (port, dir) = (Self::free_port(), tempfile::tempdir().unwrap());
        let child = std::process::Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(args)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self { port, child, _dir: dir }
    }

    /// A sentinel that names the server on `master` as master `name`
    /// (quorum 1: it is the only one).
    fn sentinel(bin: &str, master: u16, name: &str) -> Self {
        let (port, dir) = (Self::free_port(), tempfile::tempdir().unwrap());
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!("port {port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {master} 1\n"),
        )
        .unwrap();
        let child = std::process::Command::new(bin)
            .arg(&conf)
            .arg("--sentinel")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self { port, child, _dir: dir }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A refused `WAIT` leaves the write applied but unconfirmed: unavailable
/// (503), never an internal error (500, which a cluster answered during a
/// failover before this was mended).
#[tokio::test]
async fn a_wait_the_server_refuses_is_unavailable_not_an_error() {
    let Some(url) = redis_url() else { return };
    let Some(bin) = required("TEST_REDIS_SERVER_BIN", "the refused-WAIT test") else {
        return;
    };
    let primary = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let replica = Spawned::redis(
        &bin,
        &["--replicaof", "127.0.0.1", primary, "--replica-read-only", "no"],
    );
    let config = RedisConfig::from_url(&format!(
        "redis://127.0.0.1:{}?wait_replicas=1&wait_timeout_ms=50",
        replica.port
    ))
    .unwrap()
    .with_prefix(unique_prefix());
    let store = RedisStore::new(config).unwrap();
    let (_, refused) = insert_once_up(&store, "the replica did not answer").await;
    match refused {
        Err(StoreError::Unavailable(cause)) => assert!(
            cause
                .to_string()
                .starts_with("the replicas of the write could not be counted: "),
            "{cause}"
        ),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

/// Under Sentinel the record cache answers from memory only while its
/// server says it is the master (`ROLE` is its barrier): a master demoted
/// without its clients closed (here a `REPLICAOF` by hand; Sentinel's own
/// demotion also closes them) must not serve a cached session, which its
/// new master may have revoked. A `PING` barrier would serve it.
#[tokio::test]
async fn a_cached_record_is_not_served_once_its_server_is_no_master() {
    let Some(bin) = required("TEST_REDIS_SERVER_BIN", "the cache's ROLE barrier test") else {
        return;
    };
    let master = Spawned::redis(&bin, &[]);
    let sentinel = Spawned::sentinel(&bin, master.port, "solo");
    let url = format!(
        "redis+sentinel://127.0.0.1:{}/solo?cache_entries=100&timeout_ms=1000",
        sentinel.port
    );
    let store = RedisStore::new(RedisConfig::from_url(&url).unwrap().with_prefix(unique_prefix())).unwrap();
    let (session, inserted) = insert_once_up(&store, "the sentinel did not lead to its master").await;
    inserted.unwrap();
    // A miss fills the cache; the next read is a hit.
    for _ in 0..2 {
        let read = store.get_by_token(&session.token_hash).await.unwrap();
        assert_eq!(read.map(|s| s.id.clone()), Some(session.id.clone()));
    }
    assert_eq!(store.cache_statistics().map(|c| c.hits), Some(1));

    // Demoted to a master that never answers: it keeps its data, its
    // clients and its cached keys' tracking, and serves reads as a replica.
    let mut direct = redis::Client::open(format!("redis://127.0.0.1:{}", master.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(Spawned::free_port())
        .query_async(&mut direct)
        .await
        .unwrap();
    let read = store.get_by_token(&session.token_hash).await;
    assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    assert_eq!(store.cache_statistics().map(|c| c.hits), Some(1));
}
