//! The counter-store conformance suite: the written semantics of
//! [`CounterStore`], checked.
//!
//! Every backend runs all of it, unchanged, with one line:
//!
//! ```ignore
//! sessiond_testkit::counter_store_conformance!(|| async { Some(Arc::new(MyStore::open().await) as Arc<dyn CounterStore>) });
//! ```
//!
//! The factory follows the rules of
//! [`user_store_conformance!`](crate::user_store_conformance): a fresh,
//! empty store per case, or `None` (after the factory said why) when its
//! engine is missing; never another store instead. Case names start with
//! `counter_`, so the suites can share a module.
//!
//! Times are whole milliseconds after a fixed instant, so every engine
//! stores them exactly; records are forgotten by comparing the caller's
//! `now`, never by waiting.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{CounterKey, CounterRule, CounterStore, CounterStoreError, MAX_COUNTER_KEYS, Reserved};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::Barrier;

/// Generates one `#[tokio::test]` per conformance case, each on a fresh store
/// from `$factory` (an expression callable as `$factory().await` that gives
/// an `Option` of the store; `None` skips the case).
#[macro_export]
macro_rules! counter_store_conformance {
    ($factory:expr) => {
        $crate::counter_store_conformance!(@cases $factory;
            counter_of_a_missing_key_is_none,
            counter_free_failures_pass_then_locks_double,
            counter_locked_reserve_counts_nothing_on_any_key,
            counter_release_gives_one_back_and_recomputes_the_lock,
            counter_release_of_a_missing_key_changes_nothing,
            counter_clear_forgets_the_record,
            counter_forgotten_records_count_from_zero,
            counter_keys_are_isolated,
            counter_calls_with_bad_key_lists_are_refused,
            counter_concurrent_reserves_pass_only_the_allowance_left,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: ::std::option::Option<::std::sync::Arc<dyn ::sessiond_core::CounterStore>> = ($factory)().await;
                let ::std::option::Option::Some(store) = store else {
                    // The factory said why (see `sessiond_testkit::env::required`).
                    ::std::eprintln!("SKIPPED conformance case {}: no store", ::std::stringify!($case));
                    return;
                };
                $crate::counter_conformance::$case(store).await;
            }
        )+
    };
}

/// The instant the cases start at.
pub const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// The login throttle's account rule: 5 free, 1 s doubling to 15 min,
/// forgotten after an hour.
pub const RULE: CounterRule = CounterRule {
    free: 5,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(15 * 60),
    forget_after: Duration::from_secs(3600),
};

fn key(name: &str) -> CounterKey {
    CounterKey::new(name).expect("valid counter key")
}

fn at(ms: i64) -> OffsetDateTime {
    T0 + time::Duration::milliseconds(ms)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

async fn reserve(store: &Arc<dyn CounterStore>, keys: &[&str], now: OffsetDateTime) -> Reserved {
    let keys: Vec<(CounterKey, CounterRule)> = keys.iter().map(|k| (key(k), RULE)).collect();
    store.reserve(&keys, now).await.expect("reserve")
}

async fn count(store: &Arc<dyn CounterStore>, k: &str, now: OffsetDateTime) -> Option<u32> {
    store.counter(&key(k), now).await.expect("counter").map(|r| r.count)
}

/// Nothing is stored under a key nobody counted.
pub async fn counter_of_a_missing_key_is_none(store: Arc<dyn CounterStore>) {
    assert_eq!(count(&store, "acct:alice", T0).await, None);
}

/// The free failures pass; the one after them passes and locks for the base
/// delay; a reserve while locked is refused with the lock's end; each later
/// failure doubles the lock. The record reads back with the times written.
pub async fn counter_free_failures_pass_then_locks_double(store: Arc<dyn CounterStore>) {
    for n in 1..=6 {
        assert_eq!(reserve(&store, &["acct:a"], T0).await, Reserved::Counted(vec![n]));
    }
    let locked = Reserved::Locked(vec![Some(T0 + secs(1))]);
    assert_eq!(reserve(&store, &["acct:a"], at(999)).await, locked);
    assert_eq!(reserve(&store, &["acct:a"], at(1000)).await, Reserved::Counted(vec![7]));
    assert_eq!(
        reserve(&store, &["acct:a"], at(1500)).await,
        Reserved::Locked(vec![Some(at(3000))])
    );
    let record = store.counter(&key("acct:a"), at(1500)).await.expect("counter");
    let record = record.expect("a live record");
    assert_eq!(record.count, 7);
    assert_eq!(record.last, at(1000));
    assert_eq!(record.locked_until, at(3000));
    assert_eq!(record.expires_at, at(1000) + RULE.forget_after);
}

/// One locked key refuses the whole reserve: no key is counted, and the
/// answer says which key is locked until when.
pub async fn counter_locked_reserve_counts_nothing_on_any_key(store: Arc<dyn CounterStore>) {
    for _ in 0..6 {
        reserve(&store, &["ip:192.0.2.7"], T0).await;
    }
    assert_eq!(
        reserve(&store, &["acct:a", "ip:192.0.2.7"], T0).await,
        Reserved::Locked(vec![None, Some(T0 + secs(1))])
    );
    assert_eq!(count(&store, "acct:a", T0).await, None);
    assert_eq!(count(&store, "ip:192.0.2.7", T0).await, Some(6));
    assert_eq!(
        reserve(&store, &["acct:a", "ip:192.0.2.7"], at(1000)).await,
        Reserved::Counted(vec![1, 7])
    );
}

/// A release takes one failure back and the lock becomes the one the rest
/// set at the last failure; the expiry does not move.
pub async fn counter_release_gives_one_back_and_recomputes_the_lock(store: Arc<dyn CounterStore>) {
    for _ in 0..6 {
        reserve(&store, &["acct:a", "ip:x"], T0).await;
    }
    assert_eq!(
        reserve(&store, &["acct:a", "ip:x"], at(1000)).await,
        Reserved::Counted(vec![7, 7])
    );
    let both = [(key("acct:a"), RULE), (key("ip:x"), RULE)];
    store.release(&both, at(1010)).await.expect("release");
    let record = store.counter(&key("acct:a"), at(1010)).await.expect("counter");
    let record = record.expect("a live record");
    assert_eq!((record.count, record.locked_until), (6, at(2000)));
    assert_eq!(record.expires_at, at(1000) + RULE.forget_after);
    assert_eq!(count(&store, "ip:x", at(1010)).await, Some(6));
    store.release(&both[..1], at(1010)).await.expect("release");
    assert_eq!(reserve(&store, &["acct:a"], at(1010)).await, Reserved::Counted(vec![6]));
    for _ in 0..8 {
        store.release(&both[..1], at(1020)).await.expect("release");
    }
    assert_eq!(count(&store, "acct:a", at(1020)).await.unwrap_or(0), 0, "below zero");
    assert_eq!(reserve(&store, &["acct:a"], at(1020)).await, Reserved::Counted(vec![1]));
}

/// Nothing to give back where nothing is counted, or where it was forgotten.
pub async fn counter_release_of_a_missing_key_changes_nothing(store: Arc<dyn CounterStore>) {
    let k = [(key("acct:a"), RULE)];
    store.release(&k, T0).await.expect("release");
    assert_eq!(count(&store, "acct:a", T0).await, None);
    reserve(&store, &["acct:a"], T0).await;
    let later = T0 + RULE.forget_after + secs(1);
    store.release(&k, later).await.expect("release");
    assert_eq!(count(&store, "acct:a", later).await, None);
    assert_eq!(reserve(&store, &["acct:a"], later).await, Reserved::Counted(vec![1]));
}

/// A clear forgets a locked record at once; clearing nothing is fine.
pub async fn counter_clear_forgets_the_record(store: Arc<dyn CounterStore>) {
    for _ in 0..6 {
        reserve(&store, &["acct:a", "ip:x"], T0).await;
    }
    store.clear(&key("acct:a")).await.expect("clear");
    store.clear(&key("acct:a")).await.expect("clear again");
    assert_eq!(count(&store, "acct:a", T0).await, None);
    assert_eq!(count(&store, "ip:x", T0).await, Some(6), "another key was cleared");
    assert_eq!(reserve(&store, &["acct:a"], T0).await, Reserved::Counted(vec![1]));
}

/// A record is live up to `forget_after` after its last failure; after
/// that it reads as missing and counting starts again from zero, lock gone.
pub async fn counter_forgotten_records_count_from_zero(store: Arc<dyn CounterStore>) {
    // Locked for as long as it is remembered (the device-cookie rule).
    let rule = CounterRule {
        free: 0,
        base_delay: RULE.forget_after,
        max_delay: RULE.forget_after,
        forget_after: RULE.forget_after,
    };
    let k = [(key("dev:a"), rule)];
    assert_eq!(
        store.reserve(&k, T0).await.expect("reserve"),
        Reserved::Counted(vec![1])
    );
    let edge = T0 + RULE.forget_after - Duration::from_millis(1);
    let lock = Reserved::Locked(vec![Some(T0 + RULE.forget_after)]);
    assert_eq!(store.reserve(&k, edge).await.expect("reserve"), lock);
    let end = T0 + RULE.forget_after;
    assert_eq!(count(&store, "dev:a", end).await, Some(1), "forgotten too early");
    let later = end + Duration::from_millis(1);
    assert_eq!(count(&store, "dev:a", later).await, None);
    assert_eq!(
        store.reserve(&k, later).await.expect("reserve"),
        Reserved::Counted(vec![1])
    );
}

/// Keys are exact: similar ones never share a record.
pub async fn counter_keys_are_isolated(store: Arc<dyn CounterStore>) {
    reserve(&store, &["acct:a"], T0).await;
    reserve(&store, &["acct:a"], T0).await;
    reserve(&store, &["acct:A"], T0).await;
    assert_eq!(count(&store, "acct:a", T0).await, Some(2));
    assert_eq!(count(&store, "acct:A", T0).await, Some(1));
    assert_eq!(count(&store, "acct:ab", T0).await, None);
    assert_eq!(count(&store, "acct", T0).await, None);
}

/// No key, too many, or one key twice: refused, and nothing is counted.
pub async fn counter_calls_with_bad_key_lists_are_refused(store: Arc<dyn CounterStore>) {
    let many: Vec<(CounterKey, CounterRule)> = (0..=MAX_COUNTER_KEYS).map(|n| (key(&format!("k:{n}")), RULE)).collect();
    let twice = vec![(key("k:0"), RULE), (key("k:0"), RULE)];
    for bad in [Vec::new(), many, twice] {
        let reserved = store.reserve(&bad, T0).await;
        assert!(
            matches!(reserved, Err(CounterStoreError::InvalidKeys { count }) if count == bad.len()),
            "got {reserved:?}"
        );
        let released = store.release(&bad, T0).await;
        assert!(
            matches!(released, Err(CounterStoreError::InvalidKeys { .. })),
            "got {released:?}"
        );
    }
    assert_eq!(count(&store, "k:0", T0).await, None);
}

/// Thirty-two reserves at once on a key with two attempts left before its
/// lock (the last free failure and the one that locks): exactly two pass,
/// and the record counts exactly them. A check made before the count would
/// let them all through.
pub async fn counter_concurrent_reserves_pass_only_the_allowance_left(store: Arc<dyn CounterStore>) {
    for _ in 0..RULE.free - 1 {
        reserve(&store, &["acct:a"], T0).await;
    }
    let racers = 32;
    let barrier = Arc::new(Barrier::new(racers));
    let mut tasks = Vec::new();
    for n in 0..racers {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            // Each racer also counts on an address of its own, so the
            // engines' multi-key path is the one raced.
            let ip = format!("ip:{n}");
            reserve(&store, &["acct:a", &ip], T0).await
        }));
    }
    let mut passed = 0;
    for task in tasks {
        if let Reserved::Counted(_) = task.await.expect("task") {
            passed += 1;
        }
    }
    assert_eq!(passed, 2, "{passed} of {racers} racers passed");
    assert_eq!(count(&store, "acct:a", T0).await, Some(RULE.free + 1));
    let ips = (0..racers).map(|n| format!("ip:{n}"));
    let mut counted = 0;
    for ip in ips {
        counted += count(&store, &ip, T0).await.unwrap_or(0);
    }
    assert_eq!(counted, 2, "refused racers counted on their address");
}

/// Several handles on one store acting as one [`CounterStore`]: each call
/// goes to the next handle in turn, so the suite's racing reserves cross
/// connections (and, on the shared engines, what would be nodes).
#[derive(Debug)]
pub struct Spread {
    handles: Vec<Arc<dyn CounterStore>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Spread {
    /// Over `handles`, which must all open the same store (at least one).
    pub fn over(handles: Vec<Arc<dyn CounterStore>>) -> Arc<dyn CounterStore> {
        assert!(!handles.is_empty(), "a spread over no handle");
        Arc::new(Self {
            handles,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn handle(&self) -> &Arc<dyn CounterStore> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.handles[n % self.handles.len()]
    }
}

#[sessiond_core::async_trait]
impl CounterStore for Spread {
    async fn reserve(
        &self,
        keys: &[(CounterKey, CounterRule)],
        now: OffsetDateTime,
    ) -> Result<Reserved, CounterStoreError> {
        self.handle().reserve(keys, now).await
    }

    async fn release(&self, keys: &[(CounterKey, CounterRule)], now: OffsetDateTime) -> Result<(), CounterStoreError> {
        self.handle().release(keys, now).await
    }

    async fn clear(&self, key: &CounterKey) -> Result<(), CounterStoreError> {
        self.handle().clear(key).await
    }

    async fn counter(
        &self,
        key: &CounterKey,
        now: OffsetDateTime,
    ) -> Result<Option<sessiond_core::CounterRecord>, CounterStoreError> {
        self.handle().counter(key, now).await
    }
}
