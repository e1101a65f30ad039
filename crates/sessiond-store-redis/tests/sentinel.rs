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
    let url = required("TEST_REDIS_SENTINEL_URL", "the Redis Sentinel tests")?;
    let config = RedisConfig::from_url(&format!("{url}?wait_replicas=1&wait_timeout_ms=1000")).unwrap();
    Some(config.with_prefix(unique_prefix()))
}

redis_conformance!(config());

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
