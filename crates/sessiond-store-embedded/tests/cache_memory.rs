//! The record cache's budget against the heap it really takes: its
//! estimate of an entry's size ([`Options::cache_bytes`] is in estimated
//! bytes) must not undercount what the allocator hands out. Its own test
//! binary, because it installs a counting global allocator (dhat).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use sessiond_core::{ClientInfo, truncate_to_micros};
use sessiond_store_embedded::{EmbeddedStore, Options};
use sessiond_testkit::conformance::{NOW, sample};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const BUDGET: usize = 2 << 20;
const SESSIONS: usize = 5_000;
const AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// Live heap bytes with a store of `SESSIONS` browser sessions with a
/// small cart (several times `BUDGET`, decoded or packed) open, with
/// `options` for its caches.
fn live_bytes_with_store(options: Options) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A small page cache, so that the difference between the two stores is
    // the record cache.
    let options = options.engine_cache_bytes(1 << 20);
    let store = EmbeddedStore::open_with(dir.path(), options).unwrap();
    let now = truncate_to_micros(NOW);
    let client = ClientInfo {
        ip: Some("203.0.113.7".into()),
        user_agent: Some(AGENT.into()),
        sealed: None,
    };
    for chunk in 0..10 {
        let sessions = (0..SESSIONS / 10)
            .map(|i| {
                let mut s = sample("default", &format!("user-{chunk}-{i}"), now);
                s.idle_expires_at = now + Duration::from_secs(3600);
                s.client = client.clone();
                s.created_client = client.clone();
                s
            })
            .collect();
        rt.block_on(store.insert_all(sessions)).unwrap();
    }
    let live = dhat::HeapStats::get().curr_bytes;
    store.close().unwrap();
    live
}

#[test]
fn full_caches_take_no_more_heap_than_their_budgets() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let off = Options::default().cache_bytes(0);
    let without = live_bytes_with_store(off);
    let with = live_bytes_with_store(off.cache_bytes(BUDGET));
    let cache = with.saturating_sub(without);
    // Every write of the store fills the cache, so it is full; the first
    // estimate counted about half of a record with data (its data map's
    // B-tree nodes are allocated whole) and this was about twice BUDGET.
    assert!(
        cache <= BUDGET,
        "the cache holds {cache} bytes of heap for a budget of {BUDGET}"
    );
    // Nor so cautious that the budget goes unused.
    assert!(
        cache >= BUDGET / 2,
        "the cache holds only {cache} bytes of heap for a budget of {BUDGET}"
    );

    // The same for the packed level alone.
    let packed = live_bytes_with_store(off.packed_cache_bytes(BUDGET)).saturating_sub(without);
    assert!(
        packed <= BUDGET,
        "the packed cache holds {packed} bytes of heap for {BUDGET}"
    );
    assert!(
        packed >= BUDGET / 2,
        "the packed cache holds only {packed} bytes of heap for {BUDGET}"
    );
}
