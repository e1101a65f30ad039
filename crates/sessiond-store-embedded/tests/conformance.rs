//! The shared conformance suite and the lifecycle model, over the embedded store.

use crate::support::TempStore;

sessiond_testkit::store_conformance!(|| async { TempStore::shared() });

#[test]
fn manager_over_embedded_store_agrees_with_the_model() {
    sessiond_testkit::model::check_manager_against_model(300, TempStore::shared);
}
