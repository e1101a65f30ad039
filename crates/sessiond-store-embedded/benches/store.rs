//! The embedded store next to MemoryStore, measured in the same run.
//!
//! Run: `cargo bench -p sessiond-store-embedded --bench store`
//! (add `-- --measurement-time 3` for a quick pass).
//!
//! Acceptance bars, read off the output:
//! * `verify/embedded` within 2x of `verify/memory` (`verify/embedded, no
//!   cache` shows the read path the cache saves);
//! * `create/embedded, 64 callers` at least 4x the elements/s of
//!   `create/embedded, 1 caller` (both durable: every create is fsynced
//!   before it returns).
//!
//! Every async call runs through the same tokio runtime (`to_async` or
//! `block_on`), for both stores, so the comparison carries the same
//! executor overhead on both sides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sessiond_core::{
    Audit, CreateOptions, MemoryStore, Policy, Revocation, RevokeReason, SessionManager, SessionStore, Subject,
    SubjectLimit, Tenant,
};
use sessiond_store_embedded::{EmbeddedStore, Options};
use sessiond_testkit::FakeClock;
use sessiond_testkit::conformance::{NOW, sample};

const SESSIONS: usize = 10_000;
const CONCURRENT: usize = 64;
const SUBJECT_SESSIONS: usize = 1_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn manager(store: Arc<dyn SessionStore>, clock: &FakeClock, touch_every: Duration) -> SessionManager {
    let policy = Policy {
        touch_interval: touch_every,
        ..Policy::default()
    };
    SessionManager::builder(store)
        .clock(Arc::new(clock.clone()))
        .policy(policy)
        .build()
        .unwrap()
}

/// Fills a store with `SESSIONS` sessions through the manager (64 at a
/// time, so the embedded fill takes seconds, not minutes) and returns one
/// token in the middle.
fn fill(rt: &tokio::runtime::Runtime, manager: &SessionManager) -> String {
    rt.block_on(async {
        let mut tokens = Vec::with_capacity(SESSIONS);
        for _ in 0..SESSIONS / CONCURRENT + 1 {
            let mut tasks = Vec::new();
            for i in 0..CONCURRENT {
                let manager = manager.clone();
                tasks.push(tokio::spawn(async move {
                    let subject = Subject::new(format!("user-{i}")).unwrap();
                    manager.create(&subject, CreateOptions::default()).await.unwrap().0
                }));
            }
            for task in tasks {
                tokens.push(task.await.unwrap().expose_secret().to_owned());
            }
        }
        tokens.swap_remove(tokens.len() / 2)
    })
}

fn verify(c: &mut Criterion, rt: &tokio::runtime::Runtime, stores: &[(&str, Arc<dyn SessionStore>)]) {
    let mut group = c.benchmark_group("verify");
    for (name, store) in stores {
        // A clock that does not move: every verify is within the touch interval.
        let clock = FakeClock::default();
        let m = manager(Arc::clone(store), &clock, Duration::from_secs(60));
        let probe = fill(rt, &m);
        group.bench_function(*name, |b| {
            b.to_async(rt)
                .iter(|| async { m.verify(black_box(&probe), None).await.unwrap() })
        });
        // Every verify is due a touch: the clock moves 1 ms per call and
        // the touch interval is 1 µs.
        let m = manager(Arc::clone(store), &clock, Duration::from_micros(1));
        group.bench_function(format!("{name}, due touch"), |b| {
            b.to_async(rt).iter(|| async {
                clock.advance(Duration::from_millis(1));
                m.verify(black_box(&probe), None).await.unwrap()
            })
        });
    }
    group.finish();
}

fn create(c: &mut Criterion, rt: &tokio::runtime::Runtime, stores: &[(&str, Arc<dyn SessionStore>)]) {
    let mut group = c.benchmark_group("create");
    group.throughput(Throughput::Elements(1));
    for (name, store) in stores {
        let m = manager(Arc::clone(store), &FakeClock::default(), Duration::from_secs(60));
        let subject = Subject::new("bench-creator").unwrap();
        group.bench_function(format!("{name}, 1 caller"), |b| {
            b.to_async(rt)
                .iter(|| async { m.create(&subject, CreateOptions::default()).await.unwrap() })
        });
        group.bench_function(format!("{name}, {CONCURRENT} callers"), |b| {
            b.iter_custom(|iters| {
                let per_task = iters.div_ceil(CONCURRENT as u64);
                rt.block_on(async {
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for i in 0..CONCURRENT {
                        let m = m.clone();
                        tasks.push(tokio::spawn(async move {
                            let subject = Subject::new(format!("creator-{i}")).unwrap();
                            for _ in 0..per_task {
                                m.create(&subject, CreateOptions::default()).await.unwrap();
                            }
                        }));
                    }
                    for task in tasks {
                        task.await.unwrap();
                    }
                    // Report the time per create of the whole crowd.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_task * CONCURRENT as u64) as f64)
                })
            })
        });
    }
    group.finish();
}

fn revoke_subject(c: &mut Criterion, rt: &tokio::runtime::Runtime, stores: &[(&str, Arc<dyn SessionStore>)]) {
    let mut group = c.benchmark_group("revoke_subject");
    group.sample_size(10);
    let revocation = Revocation {
        at: NOW,
        reason: RevokeReason::PasswordChange,
    };
    let tenant = Tenant::new("bench").unwrap();
    for (name, store) in stores {
        group.bench_function(format!("{name}, {SUBJECT_SESSIONS} sessions"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                // One subject throughout: each round's revoke takes its
                // sessions out of the subject index again.
                let subject = String::from("many");
                for _ in 0..iters {
                    // Setup, not timed: the subject's sessions, 64 at a time.
                    rt.block_on(async {
                        for _ in 0..SUBJECT_SESSIONS / CONCURRENT + 1 {
                            let mut tasks = Vec::new();
                            for _ in 0..CONCURRENT {
                                let (store, subject) = (Arc::clone(store), subject.clone());
                                tasks.push(tokio::spawn(async move {
                                    let s = sample("bench", &subject, NOW);
                                    store
                                        .insert(&s, SubjectLimit::Unlimited, NOW, revocation, &Audit::NONE)
                                        .await
                                        .unwrap();
                                }));
                            }
                            for task in tasks {
                                task.await.unwrap();
                            }
                        }
                    });
                    let subject = Subject::new(subject.as_str()).unwrap();
                    let start = Instant::now();
                    let revoked = rt
                        .block_on(store.revoke_subject(&tenant, &subject, None, revocation, NOW, &Audit::NONE))
                        .unwrap();
                    spent += start.elapsed();
                    assert!(revoked.len() >= SUBJECT_SESSIONS);
                }
                spent
            })
        });
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let (dir, uncached_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let stores: Vec<(&str, Arc<dyn SessionStore>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("embedded", Arc::new(EmbeddedStore::open(dir.path()).unwrap())),
    ];
    // The read path under the cache: a read transaction, two B-tree
    // lookups and a decode. What a verify costs for a session this process
    // has not written or read since it started.
    let uncached: Arc<dyn SessionStore> =
        Arc::new(EmbeddedStore::open_with(uncached_dir.path(), Options::default().cache_bytes(0)).unwrap());
    let mut with_uncached = stores.clone();
    with_uncached.push(("embedded, no cache", uncached));
    verify(c, &rt, &with_uncached);
    drop(with_uncached);
    create(c, &rt, &stores);
    revoke_subject(c, &rt, &stores);
}

criterion_group!(benches, bench);
criterion_main!(benches);
