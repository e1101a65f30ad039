//! Opening the redis store from its URL.
//!
//! The URL is redis-rs' plus our parameters, e.g.
//! `redis://:secret@cache:6379/0?prefix=sessiond:&ttl_slack_secs=3600&timeout_ms=2000`
//! (see `sessiond_store_redis::RedisConfig`). Opening checks that the server
//! answers, so a wrong address fails at start with a clear message; once
//! running, a server that goes away makes calls answer 503
//! `store_unavailable` and `/readyz` 503 until it is back, and the
//! connection comes back by itself.

use std::sync::Arc;

use sessiond_store_redis::{RedisStore, redacted};

use crate::store_url::{OpenedStore, StoreOpenError};

/// Opens the redis store at `url`.
pub async fn open(url: &str) -> Result<OpenedStore, StoreOpenError> {
    // Messages name the server without the password the URL may hold.
    let store = RedisStore::connect(url).await.map_err(|e| StoreOpenError::Backend {
        location: redacted(url),
        source: Box::new(e),
    })?;
    Ok(OpenedStore {
        // Clones share the one connection.
        users: Arc::new(store.clone()),
        store: Arc::new(store),
        // Nothing to flush: every acknowledged write is already in Redis.
        close: Box::new(|| {}),
    })
}
