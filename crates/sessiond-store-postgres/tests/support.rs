//! Finding the test server and giving each test a schema of its own.

use std::sync::Arc;

use sessiond_core::{SessionStore, UserStore};
use sessiond_store_postgres::PostgresStore;

/// The test server's URL; `None` (after saying so) when it is not set and
/// this is not CI, where a missing server must fail the run instead.
pub fn server_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("TEST_POSTGRES_URL is not set: run scripts/test")
        }
        _ => {
            eprintln!("skipped: TEST_POSTGRES_URL is not set (run scripts/test)");
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sd_test_{suffix}")
}

/// `url` with `schema` selected.
pub fn with_schema(url: &str, schema: &str) -> String {
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}schema={schema}")
}

/// An empty store in a new schema, or `None` when there is no server.
pub async fn fresh_store() -> Option<PostgresStore> {
    let url = server_url()?;
    Some(PostgresStore::open(&with_schema(&url, &fresh_schema())).await.unwrap())
}

/// For the conformance macro, which has no way to skip a case: with no
/// server (outside CI) the case runs on the reference memory store instead,
/// after saying so, so it proves nothing about PostgreSQL but does not fail.
pub async fn conformance_store() -> Arc<dyn SessionStore> {
    match fresh_store().await {
        Some(store) => Arc::new(store),
        None => Arc::new(sessiond_core::MemoryStore::new()),
    }
}

/// [`conformance_store`] for the user-store suite.
pub async fn conformance_user_store() -> Arc<dyn UserStore> {
    match fresh_store().await {
        Some(store) => Arc::new(store),
        None => Arc::new(sessiond_core::MemoryStore::new()),
    }
}

/// A fresh store opened on a thread of its own, for the model test, whose
/// cases each run on their own runtime: the store's pool connects lazily,
/// in the runtime that first uses it.
pub fn model_store(url: &str) -> Arc<dyn SessionStore> {
    let url = with_schema(url, &fresh_schema());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Arc::new(runtime.block_on(PostgresStore::open(&url)).unwrap()) as Arc<dyn SessionStore>
    })
    .join()
    .unwrap()
}
