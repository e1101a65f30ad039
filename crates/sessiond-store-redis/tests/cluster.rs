//! On a Redis Cluster (`TEST_REDIS_CLUSTER_URL`: three primaries with a
//! replica each, started by scripts/test): the conformance suites
//! unchanged (they place their sessions, as the manager does), every write
//! waiting for one replica; every key of a session in its shard's slot,
//! and a store's sessions spread over every primary; and one shard's slot
//! moved to another primary while a store reads and writes, which it
//! follows without a wrong answer.
//! A killed primary is tested on real nodes (sessiond's
//! `multi_node::redis_cluster`).

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands as _;
use sessiond_core::{
    Audit, Clock as _, PreviousToken, Revocation, RevokeReason, Session, SessionStore, StoreError, SubjectLimit,
    SystemClock,
};
use sessiond_store_redis::{RedisConfig, RedisStore};
use sessiond_testkit::conformance::{new_hash_for, sample_in};
use sessiond_testkit::env::required;

use crate::support::{redis_conformance, unique_prefix};

fn cluster_url() -> Option<String> {
    required("TEST_REDIS_CLUSTER_URL", "the Redis Cluster tests")
}

/// A fresh store on the cluster, waiting for one replica per write; `None`
/// (skip, or a failure in CI) without a cluster.
fn config() -> Option<RedisConfig> {
    let url = cluster_url()?;
    let config = RedisConfig::from_url(&format!("{url}?wait_replicas=1&wait_timeout_ms=1000")).unwrap();
    Some(config.with_prefix(unique_prefix()))
}

redis_conformance!(config());

/// The cluster's nodes as `(port, id, is_primary, slots)`, from
/// `CLUSTER NODES` asked of the node at `port`.
async fn nodes(port: u16) -> Vec<(u16, String, bool, String)> {
    let mut node = raw_node(port).await;
    let text: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut node).await.unwrap();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let address = fields.get(1)?.split('@').next()?;
            let port = address.rsplit(':').next()?.parse().ok()?;
            let primary = fields.get(2)?.contains("master");
            let slots = fields.get(8..).map(|s| s.join(" ")).unwrap_or_default();
            Some((port, fields[0].to_owned(), primary, slots))
        })
        .collect()
}

async fn raw_node(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn first_port(url: &str) -> u16 {
    let rest = url.split_once("://").unwrap().1;
    let first = rest.split(',').next().unwrap();
    first.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
}

/// Whether `slots` (the slot ranges of a `CLUSTER NODES` line) hold `slot`.
fn holds(slots: &str, slot: u16) -> bool {
    slots.split(' ').any(|range| {
        let (low, high) = range.split_once('-').unwrap_or((range, range));
        match (low.parse::<u16>(), high.parse::<u16>()) {
            (Ok(low), Ok(high)) => (low..=high).contains(&slot),
            _ => false,
        }
    })
}

fn revocation(now: time::OffsetDateTime) -> Revocation {
    Revocation {
        at: now,
        reason: RevokeReason::Limit,
    }
}

async fn put(store: &RedisStore, session: &Session) -> Result<(), StoreError> {
    let now = session.created_at;
    store
        .insert(session, SubjectLimit::Unlimited, now, revocation(now), &Audit::NONE)
        .await
        .map(|_| ())
}

/// The slot of the keys tagged `{tag}` as the server computes it, and the
/// primary that holds it.
async fn slot_and_owner(url: &str, tag: &str) -> (u16, (u16, String)) {
    let mut node = raw_node(first_port(url)).await;
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{{{tag}}}"))
        .query_async(&mut node)
        .await
        .unwrap();
    let owner = nodes(first_port(url))
        .await
        .into_iter()
        .find(|(_, _, primary, slots)| *primary && holds(slots, slot))
        .map(|(port, id, _, _)| (port, id))
        .unwrap();
    (slot, owner)
}

/// The keys matching `pattern` that the node at `port` holds (a token
/// key ends with 32 raw bytes, shown lossily).
async fn keys_on(port: u16, pattern: &str) -> Vec<String> {
    let mut node = raw_node(port).await;
    let keys: Vec<Vec<u8>> = node.keys(pattern).await.unwrap();
    let mut keys: Vec<String> = keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
    keys.sort();
    keys
}

fn as_sessions(store: &RedisStore) -> Arc<dyn SessionStore> {
    Arc::new(store.clone())
}

/// The hash tag of a session's shard: the prefix and two digits.
fn shard_tag(store: &RedisStore, session: &Session) -> String {
    let shards = store.shards().unwrap();
    format!("{}{:02}", store.config().prefix, shards.of_id(&session.id))
}

/// Every key of a session, whatever its kind, is in its shard's slot: the
/// slot's master holds them all, and no other primary holds one.
#[tokio::test]
async fn every_key_of_a_session_is_in_its_shards_slot() {
    let Some(config) = config() else { return };
    let url = cluster_url().unwrap();
    let prefix = config.prefix.clone();
    let store = RedisStore::new(config).unwrap();
    let now = SystemClock.now();
    let session = sample_in(&as_sessions(&store), "t", "alice", now);
    put(&store, &session).await.unwrap();
    let mut rotated = session.clone();
    rotated.previous_token = Some(PreviousToken {
        hash: session.token_hash,
        valid_until: now + Duration::from_secs(60),
    });
    rotated.token_hash = new_hash_for(&as_sessions(&store), &session);
    rotated.version = 2;
    store.update(&rotated, 1, &Audit::NONE).await.unwrap();
    let tag = shard_tag(&store, &session);
    let (_, (owner, _)) = slot_and_owner(&url, &tag).await;
    let pattern = format!("{prefix}{{{tag}}}*");
    for (port, _, primary, _) in nodes(first_port(&url)).await {
        let keys = keys_on(port, &pattern).await;
        if port == owner {
            // The record, the previous token's pointer, the id's bucket,
            // the subject index, and the deadline's bucket and the shard's
            // index of them.
            assert_eq!(keys.len(), 6, "{keys:?}");
        } else if primary {
            assert_eq!(keys, Vec::<String>::new(), "primary {port}");
        }
    }
    // A session misplaced (its id drawn outside its subject's shard) is
    // refused before it reaches the cluster.
    let mut misplaced = sample_in(&as_sessions(&store), "t", "bob", now);
    while store.shards().unwrap().places(&misplaced) {
        misplaced.id = sessiond_core::SessionId::generate().unwrap();
    }
    match put(&store, &misplaced).await {
        Err(StoreError::Backend(cause)) => assert!(cause.to_string().contains("span shards"), "{cause}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// One store's sessions spread over every primary, and a subject's
/// listing and revocation still see all of its sessions (they share its
/// shard).
#[tokio::test]
async fn a_stores_sessions_spread_over_every_primary() {
    let Some(config) = config() else { return };
    let url = cluster_url().unwrap();
    let prefix = config.prefix.clone();
    let store = RedisStore::new(config).unwrap();
    let now = SystemClock.now();
    for i in 0..60 {
        let session = sample_in(&as_sessions(&store), "t", &format!("user-{i}"), now);
        put(&store, &session).await.unwrap();
    }
    for i in 0..5 {
        let session = sample_in(&as_sessions(&store), "t", "carol", now + Duration::from_secs(i));
        put(&store, &session).await.unwrap();
    }
    for (port, _, primary, _) in nodes(first_port(&url)).await {
        if primary {
            let keys = keys_on(port, &format!("{prefix}*")).await;
            assert!(!keys.is_empty(), "primary {port} holds none of the store's keys");
        }
    }
    let carol = sessiond_core::Subject::new("carol").unwrap();
    let tenant = sessiond_core::Tenant::new("t").unwrap();
    assert_eq!(store.list_subject(&tenant, &carol, now).await.unwrap().len(), 5);
    let revoked = store
        .revoke_subject(&tenant, &carol, None, revocation(now), now, &Audit::NONE)
        .await
        .unwrap();
    assert_eq!(revoked.len(), 5);
}

/// One shard's slot moves to another primary, key batch by key batch,
/// while a store inserts and reads back sessions of that shard: every
/// answer is right or unavailable, every acknowledged insert is there
/// afterwards, and the store goes on at the new owner by itself.
#[tokio::test]
async fn a_slot_moved_under_load_loses_nothing() {
    let Some(config) = config() else { return };
    let url = cluster_url().unwrap();
    let store = RedisStore::new(config).unwrap();
    let now = SystemClock.now();
    // Keys to move: 200 sessions of one subject, all in its shard.
    let mut acknowledged = Vec::new();
    for _ in 0..200 {
        let session = sample_in(&as_sessions(&store), "t", "mover", now);
        put(&store, &session).await.unwrap();
        acknowledged.push(session);
    }
    let tag = shard_tag(&store, &acknowledged[0]);
    let (slot, (source, source_id)) = slot_and_owner(&url, &tag).await;
    let (target, target_id) = nodes(first_port(&url))
        .await
        .into_iter()
        .find(|(port, _, primary, _)| *primary && *port != source)
        .map(|(port, id, _, _)| (port, id))
        .unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let (mut written, mut unavailable) = (Vec::new(), 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let session = sample_in(&as_sessions(&store), "t", "mover", SystemClock.now());
                match put(&store, &session).await {
                    Ok(()) => written.push(session.clone()),
                    Err(StoreError::Unavailable(_)) => unavailable += 1,
                    Err(other) => panic!("insert during the move: {other:?}"),
                }
                match store.get_by_token(&session.token_hash).await {
                    Ok(Some(found)) => assert_eq!(found.id, session.id),
                    // Not acknowledged, or not readable this moment.
                    Ok(None) => assert!(!written.iter().any(|w: &Session| w.id == session.id)),
                    Err(StoreError::Unavailable(_)) => unavailable += 1,
                    Err(other) => panic!("read during the move: {other:?}"),
                }
            }
            (written, unavailable)
        }
    });

    let mut source_node = raw_node(source).await;
    let mut target_node = raw_node(target).await;
    let setslot = |state: &str, id: &str| {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SETSLOT").arg(slot).arg(state).arg(id);
        cmd
    };
    let _: () = setslot("IMPORTING", &source_id)
        .query_async(&mut target_node)
        .await
        .unwrap();
    let _: () = setslot("MIGRATING", &target_id)
        .query_async(&mut source_node)
        .await
        .unwrap();
    loop {
        let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(10)
            .query_async(&mut source_node)
            .await
            .unwrap();
        if keys.is_empty() {
            break;
        }
        let _: () = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(target)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&keys)
            .query_async(&mut source_node)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for port in [target, source] {
        let _: () = setslot("NODE", &target_id)
            .query_async(&mut raw_node(port).await)
            .await
            .unwrap();
    }
    // Let the load run on at the new owner, then stop it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (written, unavailable) = load.await.unwrap();
    eprintln!(
        "slot {slot} moved {source} -> {target}: {} writes acknowledged during it, {unavailable} unavailable",
        written.len()
    );
    assert!(!written.is_empty());
    acknowledged.extend(written);
    for session in &acknowledged {
        let by_token = store.get_by_token(&session.token_hash).await.unwrap();
        assert_eq!(by_token.map(|s| s.id.clone()), Some(session.id.clone()));
        let by_id = store.get_by_id(&session.id).await.unwrap();
        assert_eq!(by_id.map(|s| s.token_hash), Some(session.token_hash));
    }
    let pattern = format!("{}{{{tag}}}*", store.config().prefix);
    assert_eq!(keys_on(source, &pattern).await, Vec::<String>::new());
    assert!(!keys_on(target, &pattern).await.is_empty());
    // And writes go on there.
    put(
        &store,
        &sample_in(&as_sessions(&store), "t", "mover", SystemClock.now()),
    )
    .await
    .unwrap();
}
