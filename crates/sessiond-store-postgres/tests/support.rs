//! Finding the test server and giving each test a schema of its own.

use std::sync::Arc;

use sessiond_core::{CounterStore, EventStore, KeyStore, SecretStore, SessionStore, UserStore};
use sessiond_store_postgres::PostgresStore;
use sessiond_testkit::env::{required, unique_name};

/// The test server's URL (`TEST_POSTGRES_URL`): `None` after a note on a
/// developer's machine, a failure in CI.
pub fn server_url() -> Option<String> {
    required("TEST_POSTGRES_URL", "the PostgreSQL store tests")
}

/// A plain connection for looking at the database directly: the test
/// server takes TLS and plain connections alike, and tokio-postgres reads
/// neither `verify-full` nor `sslrootcert` (the store does, see `tls.rs`),
/// so they are left out.
pub async fn raw(url: &str) -> tokio_postgres::Client {
    let kept: Vec<&str> = url
        .split_once('?')
        .map(|(_, query)| query.split('&').filter(|p| !p.starts_with("ssl")).collect())
        .unwrap_or_default();
    let base = url.split('?').next().unwrap_or(url);
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    unique_name("sd_test_")
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

/// For the conformance suites: an empty store in a new schema, or `None`
/// (the case is skipped, or fails in CI) without a server.
pub async fn conformance_store() -> Option<Arc<dyn SessionStore>> {
    Some(Arc::new(fresh_store().await?))
}

/// [`conformance_store`] for the user-store suite.
pub async fn conformance_user_store() -> Option<Arc<dyn UserStore>> {
    Some(Arc::new(fresh_store().await?))
}

/// [`conformance_store`] for the secret-store suite.
pub async fn conformance_secret_store() -> Option<Arc<dyn SecretStore>> {
    Some(Arc::new(fresh_store().await?))
}

/// [`conformance_store`] for the counter-store suite: three handles with
/// pools of their own (as three nodes have) on one new schema, taking turns.
pub async fn conformance_counter_store() -> Option<Arc<dyn CounterStore>> {
    let url = with_schema(&server_url()?, &fresh_schema());
    let mut handles: Vec<Arc<dyn CounterStore>> = Vec::new();
    for _ in 0..3 {
        handles.push(Arc::new(PostgresStore::open(&url).await.unwrap()));
    }
    Some(sessiond_testkit::counter_conformance::Spread::over(handles))
}

/// [`fresh_store`] for the key-store suite.
pub async fn conformance_key_store() -> Option<Arc<dyn KeyStore>> {
    Some(Arc::new(fresh_store().await?))
}

/// [`fresh_store`] for the event-store suite.
pub async fn conformance_event_store() -> Option<Arc<dyn EventStore>> {
    Some(Arc::new(fresh_store().await?))
}

pub async fn conformance_audit_stores() -> Option<(Arc<dyn SessionStore>, Arc<dyn EventStore>)> {
    let store = Arc::new(fresh_store().await?);
    Some((
        Arc::clone(&store) as Arc<dyn SessionStore>,
        store as Arc<dyn EventStore>,
    ))
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

/// The tables of migration 4 on, newest last: what the tests that rebuild a
/// schema of an earlier build drop. A new migration's table goes here.
pub const TABLES_FROM_MIGRATION_4: &[&str] = &["secrets", "api_keys", "api_keys_version", "counters", "events"];

/// Columns later migrations add to `sessions`, which an earlier build's
/// schema lacks. A new migration's column goes here.
pub const SESSION_COLUMNS_FROM_MIGRATION_4: &[&str] = &[
    "client_sealed",
    "created_client_ip",
    "created_client_ua",
    "created_client_sealed",
];

/// Functions later migrations add (their triggers go with them). A new
/// migration's function goes here.
pub const FUNCTIONS_FROM_MIGRATION_4: &[&str] = &["session_changed", "sessions_truncated"];

/// `DROP TABLE IF EXISTS` for each of [`TABLES_FROM_MIGRATION_4`] in
/// `schema`, the functions of [`FUNCTIONS_FROM_MIGRATION_4`] and the
/// columns of [`SESSION_COLUMNS_FROM_MIGRATION_4`].
pub fn undo_migrations_from_4(schema: &str) -> String {
    TABLES_FROM_MIGRATION_4
        .iter()
        .map(|table| format!("DROP TABLE IF EXISTS {schema}.{table};"))
        .chain(
            FUNCTIONS_FROM_MIGRATION_4
                .iter()
                .map(|function| format!("DROP FUNCTION IF EXISTS {schema}.{function}() CASCADE;")),
        )
        .chain(
            SESSION_COLUMNS_FROM_MIGRATION_4
                .iter()
                .map(|column| format!("ALTER TABLE {schema}.sessions DROP COLUMN IF EXISTS {column};")),
        )
        .collect::<Vec<_>>()
        .join(" ")
}
