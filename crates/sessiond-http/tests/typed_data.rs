//! Typed, key-level session data: `Session::get`, `insert` and `remove`.

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::{Value, json};
use sessiond_core::{Policy, Subject};
use sessiond_http::{HttpError, Session};

use crate::support::*;

fn parse(body: &str) -> Result<Value, HttpError> {
    serde_json::from_str(body).map_err(|_| HttpError::BadRequest)
}

/// `POST /kv/{key}` inserts the JSON body and answers what `get` then
/// sees; `GET /kv/{key}` reads; `POST /kv/{key}/remove` removes and
/// answers the old value.
pub fn kv_routes() -> Router {
    Router::new()
        .route(
            "/kv/{key}",
            post(|session: Session, Path(key): Path<String>, body: String| async move {
                session.insert(&key, parse(&body)?).await?;
                let seen: Option<Value> = session.get(&key).await?;
                Ok::<_, HttpError>(json!(seen).to_string())
            })
            .get(|session: Session, Path(key): Path<String>| async move {
                Ok::<_, HttpError>(json!(session.get::<Value>(&key).await?).to_string())
            }),
        )
        .route(
            "/kv/{key}/remove",
            post(|session: Session, Path(key): Path<String>| async move {
                Ok::<_, HttpError>(json!(session.remove::<Value>(&key).await?).to_string())
            }),
        )
        // tower-sessions' counter, unchanged but for the error type.
        .route(
            "/counter",
            post(|session: Session| async move {
                let count = session.get::<u32>("counter").await?.unwrap_or(0) + 1;
                session.insert("counter", count).await?;
                Ok::<_, HttpError>(count.to_string())
            }),
        )
        .route(
            "/own-changes",
            post(|session: Session| async move {
                session.insert("a", 1).await?;
                session.insert("b", "two").await?;
                let removed: Option<u32> = session.remove("a").await?;
                let a: Option<u32> = session.get("a").await?;
                let b: Option<String> = session.get("b").await?;
                let again: Option<u32> = session.remove("a").await?;
                Ok::<_, HttpError>(json!([removed, a, b, again]).to_string())
            }),
        )
        .route(
            "/login-with-data",
            post(|session: Session| async move {
                session.login(Subject::new("alice").unwrap(), false);
                let before: Option<Value> = session.get("theme").await?;
                session.insert("theme", "dark").await?;
                Ok::<_, HttpError>(json!(before).to_string())
            }),
        )
        .route(
            "/replace-then-insert",
            post(|session: Session| async move {
                session.insert("dropped", true).await?;
                let mut data = serde_json::Map::new();
                data.insert("whole".into(), json!(1));
                session.update_data(data).await?;
                session.insert("added", 2).await?;
                Ok::<_, HttpError>(json!(session.get::<Value>("dropped").await?).to_string())
            }),
        )
        .route(
            "/insert-then-fail",
            post(|session: Session| async move {
                session.insert("k", "lost").await?;
                Err::<(), _>(HttpError::Internal)
            }),
        )
        .route(
            "/logout-then-insert",
            post(|session: Session| async move {
                session.logout();
                let read: Option<Value> = session.get("k").await?;
                assert_eq!(read, None);
                session.insert("k", 1).await
            }),
        )
        .route(
            "/wrong-type",
            get(|session: Session| async move { session.get::<u32>("k").await.map(|_| "?") }),
        )
}

fn app() -> TestApp {
    TestApp::with_routes(Policy::default(), kv_routes(), |b| b)
}

#[tokio::test]
async fn insert_get_and_remove_round_trip_across_requests() {
    let app = app();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let insert = |key: &str, value: &str| post_req(&format!("/kv/{key}")).cookie(&token).csrf(&csrf).body(value);

    let reply = app.send(insert("cart", r#"["socks"]"#).build()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, r#"["socks"]"#));
    assert!(reply.set_cookies().is_empty(), "a data change keeps the cookie");
    let reply = app.send(insert("theme", r#""dark""#).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(app.data(&token).await, json!({"cart": ["socks"], "theme": "dark"}));

    let reply = app.send(get_req("/kv/theme").cookie(&token).build()).await;
    assert_eq!(reply.body, r#""dark""#);
    let reply = app
        .send(post_req("/kv/theme/remove").cookie(&token).csrf(&csrf).build())
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, r#""dark""#));
    let reply = app.send(get_req("/kv/theme").cookie(&token).build()).await;
    assert_eq!(reply.body, "null");
    assert_eq!(app.data(&token).await, json!({"cart": ["socks"]}));

    for expected in ["1", "2", "3"] {
        let reply = app.send(post_req("/counter").cookie(&token).csrf(&csrf).build()).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, expected));
    }
}

#[tokio::test]
async fn a_handler_reads_its_own_pending_changes() {
    let app = app();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/own-changes").cookie(&token).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    // removed the pending 1; a is gone; b is pending; a second remove finds nothing.
    assert_eq!(reply.json(), json!([1, null, "two", null]));
    assert_eq!(app.data(&token).await, json!({"b": "two"}));
}

/// With anonymous sessions turned off, data needs a sign-in (the
/// behaviour before issue 18; `anonymous.rs` covers the default).
#[tokio::test]
async fn without_a_session_get_is_none_and_insert_is_unauthenticated_when_anonymous_sessions_are_off() {
    let app = TestApp::with_routes(Policy::default(), kv_routes(), |b| b.anonymous_sessions(false));
    let reply = app.send(get_req("/kv/cart").build()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "null"));
    let reply = app.send(post_req("/kv/cart/remove").build()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "null"));
    let reply = app.send(post_req("/kv/cart").body("1").build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // A cookie naming no session is no session too.
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    app.send(post_req("/logout").cookie(&token).csrf(&csrf).build()).await;
    let reply = app.send(post_req("/kv/cart").cookie(&token).body("1").build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // After logout in the same request, too.
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/logout-then-insert").cookie(&token).csrf(&csrf).build())
        .await;
    // (The logout itself stands: a 4xx does not cancel it.)
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
}

#[tokio::test]
async fn data_inserted_at_login_belongs_to_the_new_session_only() {
    let app = app();
    let old = app.login("bob", false).await;
    let csrf = app.csrf(&old).await;
    app.send(
        post_req("/kv/theme")
            .cookie(&old)
            .csrf(&csrf)
            .body(r#""light""#)
            .build(),
    )
    .await;
    let reply = app
        .send(post_req("/login-with-data").cookie(&old).csrf(&csrf).build())
        .await;
    // The new session starts empty: the old session's data is not read.
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "null"));
    let new = reply.session_cookie().unwrap();
    assert_eq!(app.data(&new).await, json!({"theme": "dark"}));
    let me = app.send(get_req("/me").cookie(&old).build()).await;
    me.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn the_whole_map_api_still_works_beside_the_keys() {
    let app = app();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/replace-then-insert").cookie(&token).csrf(&csrf).build())
        .await;
    // update_data replaced the earlier key change; the later one applies to it.
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "null"));
    assert_eq!(app.data(&token).await, json!({"whole": 1, "added": 2}));
    let reply = app
        .send(post_req("/cart").cookie(&token).csrf(&csrf).body("hat").build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(app.data(&token).await, json!({"whole": 1, "added": 2, "cart": ["hat"]}));
}

#[tokio::test]
async fn a_failed_handler_writes_no_data() {
    let app = app();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/insert-then-fail").cookie(&token).csrf(&csrf).build())
        .await;
    reply.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    assert_eq!(app.data(&token).await, json!({}));
}

#[tokio::test]
async fn a_value_of_another_type_is_an_internal_error() {
    let app = app();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    app.send(post_req("/kv/k").cookie(&token).csrf(&csrf).body(r#""text""#).build())
        .await;
    let reply = app.send(get_req("/wrong-type").cookie(&token).build()).await;
    reply.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal");
}

#[tokio::test]
async fn oversized_data_from_insert_is_refused_and_not_written() {
    let policy = Policy {
        max_data_bytes: 64,
        ..Policy::default()
    };
    let app = TestApp::with_routes(policy, kv_routes(), |b| b);
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let big = format!("\"{}\"", "x".repeat(100));
    let reply = app
        .send(post_req("/kv/k").cookie(&token).csrf(&csrf).body(&big).build())
        .await;
    reply.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(app.data(&token).await, json!({}));
}
