//! Per-request overhead of the session layer on a verified request
//! (in-process mode, MemoryStore), next to the same route without it.
//!
//! Run: `cargo bench -p sessiond-http --bench layer -- --measurement-time 3`
//!
//! - `bare`: the route alone (no layer), same request with its cookie;
//! - `layer_untouched`: the layer around a handler that never asks for the
//!   session (lazy: no verification);
//! - `layer_verified`: the layer, and the handler reads the verified session;
//! - `manager_verify`: `SessionManager::verify` alone, the floor the layer
//!   adds to.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use sessiond_core::{CreateOptions, MemoryStore, SessionManager, Subject};
use sessiond_http::{CurrentSession, SessionLayer};
use sessiond_testkit::FakeClock;
use tower::ServiceExt as _;

fn request(cookie: &str) -> Request<Body> {
    Request::get("/")
        .header("host", "shop.example")
        .header("cookie", cookie)
        .header("user-agent", "bench/1")
        .body(Body::empty())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    // A clock that does not move: every verify is inside the touch interval.
    let manager = SessionManager::builder(Arc::new(MemoryStore::new()))
        .clock(Arc::new(FakeClock::default()))
        .build()
        .unwrap();
    let subject = Subject::new("bench-user").unwrap();
    let token = runtime.block_on(async {
        // Some other sessions so the lookup is not in a one-entry map.
        for _ in 0..1000 {
            manager.create(&subject, CreateOptions::default()).await.unwrap();
        }
        manager.create(&subject, CreateOptions::default()).await.unwrap().0
    });
    let cookie = format!("theme=dark; __Host-sessiond={}; lang=en", token.expose_secret());
    let layer = SessionLayer::in_process(manager.clone()).build().unwrap();

    let bare: Router = Router::new().route("/", get(|| async { "bench-user" }));
    let untouched: Router = Router::new()
        .route("/", get(|| async { "bench-user" }))
        .layer(layer.clone());
    let verified: Router = Router::new()
        .route(
            "/",
            get(|current: CurrentSession| async move { current.subject().as_str().to_owned() }),
        )
        .layer(layer);

    let mut group = c.benchmark_group("layer");
    for (name, router) in [
        ("bare", &bare),
        ("layer_untouched", &untouched),
        ("layer_verified", &verified),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let response = router.clone().oneshot(request(&cookie)).await.unwrap();
                assert!(response.status().is_success());
                black_box(response)
            })
        });
    }
    group.bench_function("manager_verify", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(manager.verify(black_box(token.expose_secret()), None).await.unwrap()) })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
