//! The shared session-store, user-store, secret-store, counter-store, key-store and event-store conformance suites, unchanged,
//! one test per case, each on a keyspace of its own.
//!
//! Without `TEST_REDIS_URL` each case is skipped with a note (a failure in
//! CI); it never runs on another store instead.

use crate::support::{
    conformance_audit_stores, conformance_counter_store, conformance_event_store, conformance_key_store,
    conformance_secret_store, conformance_store, conformance_user_store,
};

sessiond_testkit::store_conformance!(conformance_store);
sessiond_testkit::user_store_conformance!(conformance_user_store);
sessiond_testkit::secret_store_conformance!(conformance_secret_store);
sessiond_testkit::counter_store_conformance!(conformance_counter_store);
sessiond_testkit::key_store_conformance!(conformance_key_store);
sessiond_testkit::event_store_conformance!(conformance_event_store);
sessiond_testkit::audit_conformance!(conformance_audit_stores);
