//! The core's lifecycle model test over the Redis store.

use std::sync::Arc;

use sessiond_core::SessionStore;

use crate::support::{redis_url, store};

#[test]
fn manager_over_redis_agrees_with_the_model() {
    let Some(url) = redis_url() else { return };
    // Each case runs on its own runtime; a store connects lazily on first
    // use, so its connection belongs to that case's runtime.
    sessiond_testkit::model::check_manager_against_model(200, || Arc::new(store(&url)) as Arc<dyn SessionStore>);
}
