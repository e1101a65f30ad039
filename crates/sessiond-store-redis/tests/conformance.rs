//! The shared session-store and user-store conformance suites, unchanged,
//! one test per case.
//!
//! Without `TEST_REDIS_URL` (and not in CI) each case runs on a
//! `MemoryStore` instead and says so: a skip that still compiles the suite.

use std::sync::Arc;

use sessiond_core::{MemoryStore, SessionStore, UserStore};

use crate::support::{redis_url, store};

sessiond_testkit::store_conformance!(|| async {
    match redis_url() {
        Some(url) => Arc::new(store(&url)) as Arc<dyn SessionStore>,
        None => Arc::new(MemoryStore::new()) as Arc<dyn SessionStore>,
    }
});

sessiond_testkit::user_store_conformance!(|| async {
    match redis_url() {
        Some(url) => Arc::new(store(&url)) as Arc<dyn UserStore>,
        None => Arc::new(MemoryStore::new()) as Arc<dyn UserStore>,
    }
});
