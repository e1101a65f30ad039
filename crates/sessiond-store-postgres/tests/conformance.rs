//! The shared conformance suites (sessions, users, secrets, counters, keys and events) and the lifecycle
//! model, unchanged, over PostgreSQL; each case in a schema of its own.
//! Without `TEST_POSTGRES_URL` each case is skipped with a note (a failure
//! in CI); it never runs on another store instead.

use crate::support::{
    conformance_audit_stores, conformance_counter_store, conformance_event_store, conformance_key_store,
    conformance_secret_store, conformance_store, conformance_user_store, model_store, server_url,
};

sessiond_testkit::store_conformance!(conformance_store);
sessiond_testkit::user_store_conformance!(conformance_user_store);
sessiond_testkit::secret_store_conformance!(conformance_secret_store);
sessiond_testkit::counter_store_conformance!(conformance_counter_store);
sessiond_testkit::key_store_conformance!(conformance_key_store);
sessiond_testkit::event_store_conformance!(conformance_event_store);
sessiond_testkit::audit_conformance!(conformance_audit_stores);

#[test]
fn manager_over_postgres_agrees_with_the_model() {
    let Some(url) = server_url() else { return };
    sessiond_testkit::model::check_manager_against_model(150, || model_store(&url));
}
