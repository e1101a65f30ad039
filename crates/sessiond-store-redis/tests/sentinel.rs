//! Through Redis Sentinel (`TEST_REDIS_SENTINEL_URL`, started by
//! scripts/test): the conformance suites unchanged, every write waiting for
//! one replica; and `WAIT` failing a write closed when no replica confirms.
//! The failover itself is tested on real nodes (sessiond's
//! `multi_node::redis_sentinel`).

use std::sync::Arc;

use sessiond_core::{
    Audit, Clock as _, CounterStore, EventStore, KeyStore, Revocation, RevokeReason, SecretStore, SessionStore,
    StoreError, SubjectLimit, SystemClock, UserStore,
};
use sessiond_store_redis::{RedisConfig, RedisStore};
use sessiond_testkit::conformance::sample;
use sessiond_testkit::env::required;

use crate::support::{redis_url, unique_prefix};

/// The configuration of a fresh store through the sentinels, waiting for
/// one replica per write; `None` (skip, or a failure in CI) without them.
fn config() -> Option<RedisConfig> {
    let url = required("TEST_REDIS_SENTINEL_URL", "the Redis Sentinel tests")?;
    let config = RedisConfig::from_url(&format!("{url}?wait_replicas=1&wait_timeout_ms=1000")).unwrap();
    Some(config.with_prefix(unique_prefix()))
}

fn store() -> Option<RedisStore> {
    config().map(|config| RedisStore::new(config).unwrap())
}

async fn sessions() -> Option<Arc<dyn SessionStore>> {
    store().map(|s| Arc::new(s) as Arc<dyn SessionStore>)
}

async fn users() -> Option<Arc<dyn UserStore>> {
    store().map(|s| Arc::new(s) as Arc<dyn UserStore>)
}

async fn secrets() -> Option<Arc<dyn SecretStore>> {
    store().map(|s| Arc::new(s) as Arc<dyn SecretStore>)
}

/// Three handles (three connections, as three nodes have) on one keyspace.
async fn counters() -> Option<Arc<dyn CounterStore>> {
    let config = config()?;
    let handles = (0..3)
        .map(|_| Arc::new(RedisStore::new(config.clone()).unwrap()) as Arc<dyn CounterStore>)
        .collect();
    Some(sessiond_testkit::counter_conformance::Spread::over(handles))
}

async fn keys() -> Option<Arc<dyn KeyStore>> {
    store().map(|s| Arc::new(s) as Arc<dyn KeyStore>)
}

async fn events() -> Option<Arc<dyn EventStore>> {
    store().map(|s| Arc::new(s) as Arc<dyn EventStore>)
}

async fn audit() -> Option<(Arc<dyn SessionStore>, Arc<dyn EventStore>)> {
    let store = Arc::new(store()?);
    Some((
        Arc::clone(&store) as Arc<dyn SessionStore>,
        store as Arc<dyn EventStore>,
    ))
}

sessiond_testkit::store_conformance!(sessions);
sessiond_testkit::user_store_conformance!(users);
sessiond_testkit::secret_store_conformance!(secrets);
sessiond_testkit::counter_store_conformance!(counters);
sessiond_testkit::key_store_conformance!(keys);
sessiond_testkit::event_store_conformance!(events);
sessiond_testkit::audit_conformance!(audit);

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
    let now = SystemClock.now();
    let session = sample("t", "alice", now);
    let revocation = Revocation {
        at: now,
        reason: RevokeReason::Limit,
    };
    let refused = waiting
        .insert(&session, SubjectLimit::Unlimited, now, revocation, &Audit::NONE)
        .await;
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
