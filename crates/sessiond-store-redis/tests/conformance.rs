//! The shared session-store and user-store conformance suites, unchanged,
//! one test per case, each on a keyspace of its own.
//!
//! Without `TEST_REDIS_URL` each case is skipped with a note (a failure in
//! CI); it never runs on another store instead.

use crate::support::{conformance_store, conformance_user_store};

sessiond_testkit::store_conformance!(conformance_store);
sessiond_testkit::user_store_conformance!(conformance_user_store);
