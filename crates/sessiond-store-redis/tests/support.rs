//! Finding the test server and making isolated stores on it.

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

/// Every shared conformance suite (sessions, users, secrets, counters, API
/// keys, events, audit), one test per case, over stores made from
/// `$config`: an expression giving a fresh configuration (its own prefix)
/// each time, or `None` (the case is skipped, or fails in CI). The counter
/// suite gets three handles on one keyspace, as three nodes have. Used by
/// the plain, Sentinel and cached variants, so each runs the same cases.
macro_rules! redis_conformance {
    ($config:expr) => {
        fn conformance_handle() -> Option<std::sync::Arc<sessiond_store_redis::RedisStore>> {
            let config: Option<sessiond_store_redis::RedisConfig> = $config;
            config.map(|config| std::sync::Arc::new(sessiond_store_redis::RedisStore::new(config).unwrap()))
        }

        async fn sessions() -> Option<std::sync::Arc<dyn sessiond_core::SessionStore>> {
            conformance_handle().map(|s| s as std::sync::Arc<dyn sessiond_core::SessionStore>)
        }

        async fn users() -> Option<std::sync::Arc<dyn sessiond_core::UserStore>> {
            conformance_handle().map(|s| s as std::sync::Arc<dyn sessiond_core::UserStore>)
        }

        async fn secrets() -> Option<std::sync::Arc<dyn sessiond_core::SecretStore>> {
            conformance_handle().map(|s| s as std::sync::Arc<dyn sessiond_core::SecretStore>)
        }

        async fn counters() -> Option<std::sync::Arc<dyn sessiond_core::CounterStore>> {
            let config: sessiond_store_redis::RedisConfig = $config?;
            let handles = (0..3)
                .map(|_| {
                    std::sync::Arc::new(sessiond_store_redis::RedisStore::new(config.clone()).unwrap())
                        as std::sync::Arc<dyn sessiond_core::CounterStore>
                })
                .collect();
            Some(sessiond_testkit::counter_conformance::Spread::over(handles))
        }

        async fn keys() -> Option<std::sync::Arc<dyn sessiond_core::KeyStore>> {
            conformance_handle().map(|s| s as std::sync::Arc<dyn sessiond_core::KeyStore>)
        }

        async fn events() -> Option<std::sync::Arc<dyn sessiond_core::EventStore>> {
            conformance_handle().map(|s| s as std::sync::Arc<dyn sessiond_core::EventStore>)
        }

        async fn audit() -> Option<(
            std::sync::Arc<dyn sessiond_core::SessionStore>,
            std::sync::Arc<dyn sessiond_core::EventStore>,
        )> {
            let store = conformance_handle()?;
            Some((
                std::sync::Arc::clone(&store) as std::sync::Arc<dyn sessiond_core::SessionStore>,
                store as std::sync::Arc<dyn sessiond_core::EventStore>,
            ))
        }

        sessiond_testkit::store_conformance!(sessions);
        sessiond_testkit::user_store_conformance!(users);
        sessiond_testkit::secret_store_conformance!(secrets);
        sessiond_testkit::counter_store_conformance!(counters);
        sessiond_testkit::key_store_conformance!(keys);
        sessiond_testkit::event_store_conformance!(events);
        sessiond_testkit::audit_conformance!(audit);
    };
}
pub(crate) use redis_conformance;

/// A plain connection for looking at the keyspace directly.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
