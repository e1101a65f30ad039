//! The shared session-store, user-store, secret-store, counter-store, key-store and event-store conformance suites, unchanged,
//! one test per case, each on a keyspace of its own.
//!
//! Without `TEST_REDIS_URL` each case is skipped with a note (a failure in
//! CI); it never runs on another store instead.

use crate::support::{config, redis_conformance, redis_url};

redis_conformance!(redis_url().map(|url| config(&url)));
