//! The shared conformance suites and the lifecycle model, over the embedded
//! store with its read cache, without it, with only its packed level, and
//! with one that evicts all the time (so every read path and their
//! interplay are covered). The user,
//! secret, key, counter and event stores have no cache, so their suites
//! run once.

use crate::support::TempStore;

mod cached {
    use super::*;
    sessiond_testkit::store_conformance!(|| async { Some(TempStore::shared()) });
}

mod uncached {
    use super::*;
    sessiond_testkit::store_conformance!(|| async { Some(TempStore::uncached()) });
}

mod packed_only {
    use super::*;
    sessiond_testkit::store_conformance!(|| async { Some(TempStore::packed_only()) });
}

mod users {
    use super::*;
    sessiond_testkit::user_store_conformance!(|| async { Some(TempStore::users()) });
}

mod secrets {
    use super::*;
    sessiond_testkit::secret_store_conformance!(|| async { Some(TempStore::secrets()) });
}

mod counters {
    use super::*;
    sessiond_testkit::counter_store_conformance!(|| async { Some(TempStore::counters()) });
}

mod keys {
    use super::*;
    sessiond_testkit::key_store_conformance!(|| async { Some(TempStore::keys()) });
}

mod events {
    use super::*;
    sessiond_testkit::event_store_conformance!(|| async { Some(TempStore::events()) });
}

mod audit {
    use super::*;
    sessiond_testkit::audit_conformance!(|| async { Some(TempStore::audit()) });
}

#[test]
fn manager_over_embedded_store_agrees_with_the_model() {
    sessiond_testkit::model::check_manager_against_model(200, TempStore::shared);
}

#[test]
fn manager_over_uncached_store_agrees_with_the_model() {
    sessiond_testkit::model::check_manager_against_model(60, TempStore::uncached);
}

#[test]
fn manager_over_a_tiny_cache_agrees_with_the_model() {
    sessiond_testkit::model::check_manager_against_model(60, TempStore::tiny_cache);
}

#[test]
fn manager_over_the_packed_level_agrees_with_the_model() {
    sessiond_testkit::model::check_manager_against_model(60, TempStore::packed_only);
}
