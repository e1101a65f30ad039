//! Verify and create on MemoryStore, next to the floor they are judged by.
//!
//! Run: `cargo bench -p sessiond-core --bench manager`
//!
//! The floor is the least any verify must do: one SHA-256 of the token and
//! one lookup of the 32-byte hash in a `HashMap` of the same size. The
//! acceptance bar is verify within 3x of the floor in the same run.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use sessiond_core::{CreateOptions, MemoryStore, SessionManager, Subject, Token};
use sessiond_testkit::FakeClock;
use sha2::{Digest, Sha256};

const SESSIONS: usize = 10_000;

/// Runs a future that completes without waiting, as every MemoryStore call
/// does. Polling it once with a no-op waker measures the manager's work, not
/// an executor's: a server calls verify from inside a running runtime, where
/// no `block_on` is paid per call.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a MemoryStore future had to wait"),
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    // A clock that does not move: every verify is inside the touch interval,
    // the common case the bar is about.
    let manager = SessionManager::builder(Arc::new(MemoryStore::new()))
        .clock(Arc::new(FakeClock::default()))
        .build()
        .expect("manager");
    let subject = Subject::new("bench-user").expect("subject");
    let tokens: Vec<Token> = runtime.block_on(async {
        let mut tokens = Vec::with_capacity(SESSIONS);
        for _ in 0..SESSIONS {
            let (token, _) = manager
                .create(&subject, CreateOptions::default())
                .await
                .expect("create");
            tokens.push(token);
        }
        tokens
    });
    let probe = tokens[SESSIONS / 2].expose_secret().to_owned();

    let mut group = c.benchmark_group("memory");
    let floor_map: HashMap<[u8; 32], u64> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (Sha256::digest(t.expose_secret().as_bytes()).into(), i as u64))
        .collect();
    group.bench_function("floor: sha256 + HashMap lookup", |b| {
        b.iter(|| {
            let key: [u8; 32] = Sha256::digest(black_box(probe.as_bytes())).into();
            black_box(floor_map.get(&key).copied())
        })
    });
    group.bench_function("verify", |b| {
        b.iter(|| ready(manager.verify(black_box(&probe), None)).expect("valid"))
    });
    let other = Subject::new("bench-creator").expect("subject");
    group.bench_function("create", |b| {
        b.iter(|| ready(manager.create(&other, CreateOptions::default())).expect("create"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
