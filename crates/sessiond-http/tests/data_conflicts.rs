//! Key-level data changes under concurrent writers: a lost race is retried
//! on the current data, and one that keeps losing is a clear conflict —
//! never a silently dropped write.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::Path;
use axum::routing::post;
use http::StatusCode;
use serde_json::json;
use sessiond_core::{
    ClientInfo, CreateOptions, Policy, Rotation, SessionData, SessionId, SessionManager, Subject, Token,
};
use sessiond_http::{BackendError, HttpError, Session, SessionBackend, SessionInfo, SessionLayer};
use sessiond_testkit::FakeClock;
use tokio::sync::Notify;
use tower::ServiceExt as _;

use crate::support::*;

/// `POST /kv/{key}` inserts the body (a number).
fn insert_route() -> Router {
    Router::new().route(
        "/kv/{key}",
        post(|session: Session, Path(key): Path<String>, body: String| async move {
            let value: u32 = body.parse().map_err(|_| HttpError::BadRequest)?;
            session.insert(&key, value).await?;
            Ok::<_, HttpError>("inserted")
        }),
    )
}

/// The racing routes: `POST /kv/{key}` inserts its body; `POST /gated`
/// inserts `a` = 1, says so on the first `Notify`, then waits for the
/// second before returning.
pub fn race_routes() -> (Router, Arc<Notify>, Arc<Notify>) {
    let inserted = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (a_inserted, a_release) = (inserted.clone(), release.clone());
    let gated = Router::new().route(
        "/gated",
        post(move |session: Session| async move {
            session.insert("a", 1).await?;
            a_inserted.notify_one();
            a_release.notified().await;
            Ok::<_, HttpError>("inserted after waiting")
        }),
    );
    (insert_route().merge(gated), inserted, release)
}

/// Request A reads the session and records `a`, then waits while B
/// inserts `b` and completes; A's compare-and-set then loses and must be
/// re-applied on B's data. Both keys survive.
pub async fn race(app: &TestApp, token: &str, inserted: &Notify, release: &Notify) {
    let csrf = app.csrf(token).await;
    let a = tokio::spawn(
        app.router
            .clone()
            .oneshot(post_req("/gated").cookie(token).csrf(&csrf).build()),
    );
    inserted.notified().await;
    let b = app
        .send(post_req("/kv/b").cookie(token).csrf(&csrf).body("2").build())
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    release.notify_one();
    let a = Reply::from(a.await.unwrap().unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(app.data(token).await, json!({"a": 1, "b": 2}));
}

/// Regression: two requests that insert different keys into one session at
/// the same time both keep their key.
#[tokio::test]
async fn concurrent_inserts_of_different_keys_both_survive() {
    let (extra, inserted, release) = race_routes();
    let app = TestApp::with_routes(Policy::default(), extra, |b| b);
    let token = app.login("alice", false).await;
    let id = session_id(&app, &token).await;
    let version_before = app.manager.get(&id).await.unwrap().version;
    race(&app, &token, &inserted, &release).await;
    // Two writes: B's, then A's retry on top of it (A's first attempt lost).
    let version_after = app.manager.get(&id).await.unwrap().version;
    assert_eq!(version_after, version_before + 2);
}

async fn session_id(app: &TestApp, token: &str) -> SessionId {
    let reply = app.send(get_req("/me").cookie(token).build()).await;
    SessionId::parse(reply.json()["id"].as_str().unwrap()).unwrap()
}

/// A backend where another writer always gets in first: every data update
/// is preceded by a competing one (key `theirs<n>`).
#[derive(Debug)]
struct Contended {
    manager: SessionManager,
    attempts: AtomicUsize,
}

#[async_trait::async_trait]
impl SessionBackend for Contended {
    async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, SessionInfo), BackendError> {
        SessionBackend::create(&self.manager, subject, options).await
    }

    async fn verify(&self, token: &Token, client: &ClientInfo) -> Result<Option<SessionInfo>, BackendError> {
        SessionBackend::verify(&self.manager, token, client).await
    }

    async fn rotate(&self, token: &Token, rotation: Rotation) -> Result<Option<(Token, SessionInfo)>, BackendError> {
        SessionBackend::rotate(&self.manager, token, rotation).await
    }

    async fn revoke(&self, token: &Token) -> Result<(), BackendError> {
        SessionBackend::revoke(&self.manager, token).await
    }

    async fn update_data(
        &self,
        id: &SessionId,
        data: SessionData,
        expected_version: u64,
    ) -> Result<SessionInfo, BackendError> {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        let mut theirs = self.manager.get(id).await.unwrap().data.clone();
        theirs.insert(format!("theirs{n}"), json!(n));
        self.manager.update_data(id, theirs, None).await.unwrap();
        SessionBackend::update_data(&self.manager, id, data, expected_version).await
    }
}

#[tokio::test]
async fn a_race_lost_three_times_is_a_version_conflict_and_writes_nothing() {
    let clock = FakeClock::default();
    let manager = manager(&clock, Policy::default());
    let backend = Arc::new(Contended {
        manager: manager.clone(),
        attempts: AtomicUsize::new(0),
    });
    let layer = SessionLayer::builder(backend.clone()).build().unwrap();
    let app = TestApp {
        router: routes().merge(insert_route()).layer(layer),
        manager,
        clock,
    };
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/kv/ours").cookie(&token).csrf(&csrf).body("1").build())
        .await;
    reply.assert_problem(StatusCode::PRECONDITION_FAILED, "version_conflict");
    assert_eq!(backend.attempts.load(Ordering::SeqCst), 3);
    // Every competing write stands; ours was refused, not half-applied.
    assert_eq!(
        app.data(&token).await,
        json!({"theirs1": 1, "theirs2": 2, "theirs3": 3})
    );
}

#[tokio::test]
async fn a_session_ended_before_the_write_is_unauthenticated() {
    let clock = FakeClock::default();
    let manager = manager(&clock, Policy::default());
    let revoker = manager.clone();
    let ending = Router::new().route(
        "/ending",
        post(move |session: Session| {
            let manager = revoker.clone();
            async move {
                session.insert("k", 1).await?;
                let current = session.require().await?;
                manager
                    .revoke_id(current.id(), sessiond_core::RevokeReason::Admin)
                    .await
                    .unwrap();
                Ok::<_, HttpError>("inserted")
            }
        }),
    );
    let layer = SessionLayer::in_process(manager.clone()).build().unwrap();
    let app = TestApp {
        router: routes().merge(ending).layer(layer),
        manager,
        clock,
    };
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/ending").cookie(&token).csrf(&csrf).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}
