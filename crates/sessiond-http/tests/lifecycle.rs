//! Login, logout, rotation, step-up and data through the layer.

use std::time::Duration;

use http::{StatusCode, header};
use sessiond_core::{Policy, Token};

use crate::support::*;

#[tokio::test]
async fn a_cookie_planted_before_login_is_never_the_one_after_it() {
    let app = TestApp::new();
    // The attacker's own valid session, and a well-formed unknown token.
    let planted_session = app.login("mallory", false).await;
    let planted_unknown = Token::generate().unwrap().expose_secret().to_owned();
    let planted_csrf = app.csrf(&planted_session).await;
    for (planted, csrf) in [(planted_session.clone(), Some(planted_csrf)), (planted_unknown, None)] {
        // The login form the victim loaded carries the planted session's
        // CSRF token, if it names one.
        let mut request = post_req("/login?user=alice").cookie(&planted);
        if let Some(csrf) = &csrf {
            request = request.csrf(csrf);
        }
        let reply = app.send(request.build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let issued = reply.session_cookie().unwrap();
        assert_ne!(issued, planted);
        let me = app.send(get_req("/me").cookie(&issued).build()).await;
        assert_eq!(me.json()["subject"], "alice");
    }
    // The planted session did not survive the victim's login.
    let reply = app.send(get_req("/me").cookie(&planted_session).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn logging_in_twice_gives_a_new_session_each_time() {
    let app = TestApp::new();
    let first = app.login("alice", false).await;
    let first_id = app.send(get_req("/me").cookie(&first).build()).await.json()["id"].clone();
    let reply = app.send(post_req("/login?user=alice").cookie(&first).build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    let csrf = app.csrf(&first).await;
    let reply = app
        .send(post_req("/login?user=alice").cookie(&first).csrf(&csrf).build())
        .await;
    let second = reply.session_cookie().unwrap();
    let second_id = app.send(get_req("/me").cookie(&second).build()).await.json()["id"].clone();
    assert_ne!(first_id, second_id);
    let reply = app.send(get_req("/me").cookie(&first).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn an_expired_cookie_does_not_block_a_new_login() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    app.clock.advance(Policy::default().absolute_timeout);
    let reply = app.send(post_req("/login?user=alice").cookie(&token).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_ne!(reply.session_cookie().unwrap(), token);
}

#[tokio::test]
async fn logout_then_replay_is_no_session() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/logout").cookie(&token).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::OK);
    // The browser would drop the cookie; an attacker replays it.
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // And the old CSRF token is useless too: no session, no authority.
    let reply = app.send(post_req("/rotate").cookie(&token).csrf(&csrf).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn a_failing_handler_writes_nothing() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/fail").cookie(&token).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.set_cookies().is_empty());
    // Alice's session survived (the login that would revoke it never ran)
    // and no session was created for mallory.
    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["subject"], "alice");
    let subject = sessiond_core::Subject::new("mallory").unwrap();
    assert!(app.manager.list_subject(&subject).await.unwrap().is_empty());
}

#[tokio::test]
async fn responses_that_touch_the_session_are_private() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.headers[header::VARY], "Cookie");
    // Also when the session turned out to be absent: the answer still
    // depends on the cookie.
    let reply = app.send(get_req("/me").build()).await;
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    // A route that never asks is left alone (and costs no verification).
    let reply = app.send(get_req("/public").cookie(&token).build()).await;
    assert!(reply.headers.get(header::CACHE_CONTROL).is_none());
    assert!(reply.headers.get(header::VARY).is_none());
    let login = app.send(post_req("/login?user=bob").build()).await;
    assert_eq!(login.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn elevate_raises_the_aal_and_rotates() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/elevate").cookie(&token).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let elevated = reply.session_cookie().unwrap();
    assert_ne!(elevated, token);
    let me = app.send(get_req("/me").cookie(&elevated).build()).await;
    assert_eq!(me.json()["aal"], 2);
    // Rotation grace is 0 by default: the old token is dead at once.
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

/// Issue 12, finding 10: a step-up to a lower level is refused, and a
/// re-authentication is its own operation.
#[tokio::test]
async fn elevate_refuses_a_lower_level_and_reauthenticate_resets_the_login_time() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/elevate?aal=3").cookie(&token).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let token = reply.session_cookie().unwrap();
    let csrf = app.csrf(&token).await;
    let before = app.send(get_req("/me").cookie(&token).build()).await.json();
    assert_eq!(before["aal"], 3);

    let reply = app
        .send(post_req("/elevate?aal=1").cookie(&token).csrf(&csrf).build())
        .await;
    reply.assert_problem(StatusCode::BAD_REQUEST, "aal_downgrade");
    assert!(reply.set_cookies().is_empty(), "a refused step-up keeps the cookie");
    let me = app.send(get_req("/me").cookie(&token).build()).await.json();
    assert_eq!(me["aal"], 3);

    app.clock.advance(Duration::from_secs(600));
    let reply = app
        .send(post_req("/reauthenticate").cookie(&token).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let token = reply.session_cookie().unwrap();
    let me = app.send(get_req("/me").cookie(&token).build()).await.json();
    assert_eq!(me["aal"], 3);
    assert_eq!(
        me["authenticated_at"].as_i64().unwrap() - before["authenticated_at"].as_i64().unwrap(),
        600
    );
}

#[tokio::test]
async fn session_data_is_written_after_the_handler_without_losing_updates() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    for item in ["socks", "hat"] {
        let reply = app
            .send(post_req("/cart").cookie(&token).csrf(&csrf).body(item).build())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(reply.set_cookies().is_empty(), "a data update keeps the cookie");
    }
    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["data"]["cart"], serde_json::json!(["socks", "hat"]));
}

#[tokio::test]
async fn a_concurrent_data_update_is_a_conflict_not_a_lost_write() {
    let mut app = TestApp::new();
    let manager = app.manager.clone();
    // A handler that reads the session, then loses a race: another request
    // writes the data before this one's write is applied.
    let racing = axum::routing::post(move |session: sessiond_http::Session| {
        let manager = manager.clone();
        async move {
            let current = session.require().await?;
            let mut theirs = serde_json::Map::new();
            theirs.insert("cart".into(), serde_json::json!(["theirs"]));
            manager.update_data(current.id(), theirs, None).await.unwrap();
            let mut ours = current.data().clone();
            ours.insert("cart".into(), serde_json::json!(["ours"]));
            session.update_data(ours).await?;
            Ok::<_, sessiond_http::HttpError>("written?")
        }
    });
    let layer = sessiond_http::SessionLayer::in_process(app.manager.clone())
        .build()
        .unwrap();
    app.router = routes().route("/race", racing).layer(layer);
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/race").cookie(&token).csrf(&csrf).build()).await;
    reply.assert_problem(StatusCode::PRECONDITION_FAILED, "version_conflict");
    // The other write stands; ours was not silently applied over it.
    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["data"]["cart"], serde_json::json!(["theirs"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_during_rotation_succeed_within_the_grace_period() {
    let app = TestApp::with(long_policy(), |b| b);
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;

    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let router = app.router.clone();
        let request = get_req("/me").cookie(&token).build();
        requests.spawn(async move { tower::ServiceExt::oneshot(router, request).await.unwrap().status() });
    }
    let rotation = app.send(post_req("/rotate").cookie(&token).csrf(&csrf).build()).await;
    let rotated = rotation.session_cookie().unwrap();
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }

    // Still within the grace: the old cookie reads, but cannot rotate again,
    // and that refusal must not delete the browser's newer cookie.
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = app.send(post_req("/rotate").cookie(&token).csrf(&csrf).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    let reply = app.send(get_req("/me").cookie(&rotated).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "nothing within the grace is theft");

    // After the grace the old cookie means two browsers hold the session
    // (theft detection): it is refused and the session ends for both.
    app.clock.advance(long_policy().rotation_grace + Duration::from_secs(1));
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    let reply = app.send(get_req("/me").cookie(&rotated).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn changes_without_a_session_are_unauthenticated() {
    let app = TestApp::with(Policy::default(), |b| b.allow_missing_origin(true));
    for path in ["/rotate", "/elevate", "/cart"] {
        let reply = app.send(post_req(path).build()).await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
}

#[tokio::test]
async fn oversized_session_data_is_refused_and_not_written() {
    let policy = Policy {
        max_data_bytes: 64,
        ..Policy::default()
    };
    let app = TestApp::with(policy, |b| b);
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let item = "x".repeat(100);
    let reply = app
        .send(post_req("/cart").cookie(&token).csrf(&csrf).body(&item).build())
        .await;
    reply.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["data"], serde_json::json!({}));
}
