//! Finding the test server and making isolated stores on it.

use std::sync::Arc;

use sessiond_core::{CounterStore, EventStore, KeyStore, SecretStore, SessionStore, UserStore};
use sessiond_store_redis::{RedisConfig, RedisStore};
use sessiond_testkit::env::{required, unique_name};

/// The server to test against (`TEST_REDIS_URL`): `None` after a note on a
/// developer's machine, a failure in CI.
pub fn redis_url() -> Option<String> {
    required("TEST_REDIS_URL", "the Redis store tests")
}

/// A prefix no other test uses, so every store starts empty.
pub fn unique_prefix() -> String {
    format!("{}:", unique_name("sd-test-"))
}

/// The configuration of a fresh, empty store on the test server.
pub fn config(url: &str) -> RedisConfig {
    RedisConfig::from_url(url).unwrap().with_prefix(unique_prefix())
}

/// A fresh, empty store on the test server (connects on first use).
pub fn store(url: &str) -> RedisStore {
    RedisStore::new(config(url)).unwrap()
}

/// For the conformance suites: a fresh store, or `None` (the case is
/// skipped, or fails in CI) without a server.
pub async fn conformance_store() -> Option<Arc<dyn SessionStore>> {
    redis_url().map(|url| Arc::new(store(&url)) as Arc<dyn SessionStore>)
}

/// [`conformance_store`] for the user-store suite.
pub async fn conformance_user_store() -> Option<Arc<dyn UserStore>> {
    redis_url().map(|url| Arc::new(store(&url)) as Arc<dyn UserStore>)
}

/// [`conformance_store`] for the secret-store suite.
pub async fn conformance_secret_store() -> Option<Arc<dyn SecretStore>> {
    redis_url().map(|url| Arc::new(store(&url)) as Arc<dyn SecretStore>)
}

/// [`conformance_store`] for the counter-store suite: three handles (three
/// connections, as three nodes have) on one fresh keyspace, taking turns.
pub async fn conformance_counter_store() -> Option<Arc<dyn CounterStore>> {
    let url = redis_url()?;
    let config = config(&url);
    let handles = (0..3)
        .map(|_| Arc::new(RedisStore::new(config.clone()).unwrap()) as Arc<dyn CounterStore>)
        .collect();
    Some(sessiond_testkit::counter_conformance::Spread::over(handles))
}

/// [`conformance_store`] for the key-store suite.
pub async fn conformance_key_store() -> Option<Arc<dyn KeyStore>> {
    redis_url().map(|url| Arc::new(store(&url)) as Arc<dyn KeyStore>)
}

/// [`conformance_store`] for the event-store suite.
pub async fn conformance_event_store() -> Option<Arc<dyn EventStore>> {
    redis_url().map(|url| Arc::new(store(&url)) as Arc<dyn EventStore>)
}

pub async fn conformance_audit_stores() -> Option<(Arc<dyn SessionStore>, Arc<dyn EventStore>)> {
    let store = Arc::new(store(&redis_url()?));
    Some((
        Arc::clone(&store) as Arc<dyn SessionStore>,
        store as Arc<dyn EventStore>,
    ))
}

/// A plain connection for looking at the keyspace directly.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
