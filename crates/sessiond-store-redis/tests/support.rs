//! Finding the test server and making isolated stores on it.

use sessiond_store_redis::{RedisConfig, RedisStore};

/// The server to test against. Without `TEST_REDIS_URL`, CI fails and a
/// developer's run skips (returns `None`) with a note.
pub fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("TEST_REDIS_URL is not set: run scripts/test")
        }
        _ => {
            eprintln!("skipped: TEST_REDIS_URL is not set: run scripts/test to test against a real Redis");
            None
        }
    }
}

/// A prefix no other test uses, so every store starts empty.
pub fn unique_prefix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sd-test-{hex}:")
}

/// The configuration of a fresh, empty store on the test server.
pub fn config(url: &str) -> RedisConfig {
    RedisConfig::from_url(url).unwrap().with_prefix(unique_prefix())
}

/// A fresh, empty store on the test server (connects on first use).
pub fn store(url: &str) -> RedisStore {
    RedisStore::new(config(url)).unwrap()
}

/// A plain connection for looking at the keyspace directly.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
