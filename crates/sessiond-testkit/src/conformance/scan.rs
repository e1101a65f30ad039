//! The conformance case of the walk over every record
//! ([`SessionStore::scan_ids`]), which `sessiond store reseal` relies on
//! to reach every session.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{SessionId, SessionStore};

use super::{NOW, put, sample_in};

/// Pages of any size reach every record (at least once), across tenants
/// and subjects, and the walk ends.
pub async fn scan_reaches_every_record_and_ends(store: Arc<dyn SessionStore>) {
    let first = store.scan_ids(None, 10).await.expect("scan an empty store");
    assert!(first.ids.is_empty(), "an empty store has no ids: {first:?}");

    let mut written = BTreeSet::new();
    for i in 0..23u64 {
        let tenant = if i % 3 == 0 { "other" } else { "t" };
        let session = sample_in(&store, tenant, &format!("user-{}", i % 5), NOW + Duration::from_secs(i));
        put(&store, &session).await;
        written.insert(session.id.clone());
    }
    for page_size in [1, 4, 23, 100] {
        let mut seen: BTreeSet<SessionId> = BTreeSet::new();
        let mut cursor: Option<String> = None;
        // Bounded: a walk that never ends fails instead of hanging.
        for _ in 0..10_000 {
            let page = store.scan_ids(cursor.as_deref(), page_size).await.expect("scan");
            seen.extend(page.ids);
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert!(cursor.is_none(), "the walk with pages of {page_size} did not end");
        assert_eq!(seen, written, "pages of {page_size}");
    }
}
