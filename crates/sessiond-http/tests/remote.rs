//! Remote mode against a real `sessiond serve` process (crates/sessiond),
//! started on 127.0.0.1:0 with a memory store by the shared harness.
//!
//! The binary is `TEST_SESSIOND_BIN`, which `scripts/test` sets after
//! building it; without it these tests are skipped (a failure in CI). They
//! never build it themselves.

use http::StatusCode;
use sessiond_http::{RemoteBackend, SessionLayer};
use sessiond_testkit::env::required;
use sessiond_testkit::server::{Launch, TestServer};

use crate::support::*;

/// A `sessiond serve` over a memory store, or `None` (skipped, or a
/// failure in CI) when `TEST_SESSIOND_BIN` is not set.
fn sessiond() -> Option<TestServer> {
    let bin = required("TEST_SESSIOND_BIN", "the remote-mode tests against a real sessiond")?;
    Some(Launch::new(bin).start())
}

/// An app whose session layer talks to `server` with `key`.
fn remote_app(server: &TestServer, key: &str) -> TestApp {
    let remote = RemoteBackend::new(&server.base, key).unwrap();
    let layer = SessionLayer::remote(remote).build().unwrap();
    let mut app = TestApp::new();
    app.router = routes().layer(layer);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mode_against_a_real_sessiond() {
    let Some(mut server) = sessiond() else { return };
    let app = remote_app(&server, &server.key);

    // Fixation: a planted unknown cookie is not adopted.
    let planted = sessiond_core::Token::generate().unwrap().expose_secret().to_owned();
    let reply = app
        .send(post_req("/login?user=alice&remember=true").cookie(&planted).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let token = reply.session_cookie().unwrap();
    assert_ne!(token, planted);
    let cookie = &reply.set_cookies()[0];
    assert!(
        cookie.contains("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age="),
        "{cookie}"
    );

    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["subject"], "alice");
    assert_eq!(me.json()["aal"], 1);

    // CSRF and data through PATCH with If-Match.
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/cart").cookie(&token).body("socks").build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    for item in ["socks", "hat"] {
        let reply = app
            .send(post_req("/cart").cookie(&token).csrf(&csrf).body(item).build())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["data"]["cart"], serde_json::json!(["socks", "hat"]));

    // Step-up rotates; the old CSRF token no longer works.
    let reply = app.send(post_req("/elevate").cookie(&token).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let elevated = reply.session_cookie().unwrap();
    assert_ne!(elevated, token);
    let me = app.send(get_req("/me").cookie(&elevated).build()).await;
    assert_eq!(me.json()["aal"], 2);
    let reply = app.send(post_req("/echo").cookie(&elevated).csrf(&csrf).build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");

    // Logout, then replay.
    let csrf = app.csrf(&elevated).await;
    let reply = app
        .send(post_req("/logout").cookie(&elevated).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookies()[0].contains("Max-Age=0"));
    let reply = app.send(get_req("/me").cookie(&elevated).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Fail closed: with sessiond gone, a session read is 503, never "valid".
    let other = app.login("bob", false).await;
    server.kill();
    let reply = app.send(get_req("/me").cookie(&other).build()).await;
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
}

/// Key-level data over the API: a write that lost the race (412 from
/// `PATCH` with `If-Match`) is re-read and re-applied, as in process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_inserts_of_different_keys_both_survive_a_race() {
    let Some(server) = sessiond() else { return };
    let (extra, inserted, release) = crate::data_conflicts::race_routes();
    let mut app = TestApp::new();
    let remote = RemoteBackend::new(&server.base, &server.key).unwrap();
    app.router = routes()
        .merge(extra)
        .layer(SessionLayer::remote(remote).build().unwrap());
    let token = app.login("alice", false).await;
    crate::data_conflicts::race(&app, &token, &inserted, &release).await;
}

#[tokio::test]
async fn a_wrong_api_key_fails_closed() {
    let Some(server) = sessiond() else { return };
    let app = remote_app(&server, "sdk_wrong");
    let reply = app.send(post_req("/login?user=alice").build()).await;
    reply.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    let token = sessiond_core::Token::generate().unwrap().expose_secret().to_owned();
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.body);
}

/// Issue 15 in remote mode: sessiond signs (`POST /v1/sessions/access-token`)
/// and the layer keeps the cookie in step. Renewal on the clock is tested in
/// process (`access_tokens.rs`); the decision is the same code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mode_keeps_an_access_token_cookie() {
    use crate::access_tokens::{AT_COOKIE, at_deletion, both, cookie_value, decode, set_cookie_of, verify_with_ring};
    use sessiond_http::AccessTokenCookie;

    let Some(server) = sessiond() else { return };
    let remote = RemoteBackend::new(&server.base, &server.key).unwrap();
    let layer = SessionLayer::remote(remote)
        .access_tokens(AccessTokenCookie::from_backend())
        .build()
        .unwrap();
    let mut app = TestApp::new();
    app.router = routes().layer(layer);
    let jwks: serde_json::Value = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let reply = app.send(post_req("/login?user=alice").build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let session = reply.session_cookie().unwrap();
    let at = cookie_value(&reply, AT_COOKIE).unwrap();
    let cookie = set_cookie_of(&reply, AT_COOKIE).unwrap();
    let max_age: u64 = cookie
        .strip_prefix(&format!(
            "{AT_COOKIE}={at}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age="
        ))
        .unwrap_or_else(|| panic!("{cookie}"))
        .parse()
        .unwrap();
    assert!((290..=300).contains(&max_age), "{cookie}");
    let claims = verify_with_ring(&at, &jwks);
    let me = app.send(both(get_req("/me"), &session, Some(&at)).build()).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert!(me.set_cookies().is_empty(), "fresh: not minted again");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], me.json()["id"]);
    assert_eq!(claims["aal"], 1);

    // A lost cookie is replaced without a rotation.
    let reply = app.send(both(get_req("/me"), &session, None).build()).await;
    let minted = cookie_value(&reply, AT_COOKIE).unwrap();
    assert_eq!(verify_with_ring(&minted, &jwks)["sid"], claims["sid"]);
    assert!(reply.session_cookie().is_none());

    // A step-up re-mints with the new level.
    let csrf = app.csrf(&session).await;
    let reply = app
        .send(both(post_req("/elevate"), &session, Some(&at)).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let elevated = reply.session_cookie().unwrap();
    let elevated_at = cookie_value(&reply, AT_COOKIE).unwrap();
    assert_eq!(decode(&elevated_at).1["aal"], 2);

    // The rotated-out cookie again (rotation grace 0): theft, the session
    // ends for both holders, and each loses its access-token cookie.
    let thief = app.send(both(get_req("/me"), &session, Some(&at)).build()).await;
    assert_eq!(thief.status, StatusCode::UNAUTHORIZED, "{}", thief.body);
    let attributes = "; Path=/; Secure; HttpOnly; SameSite=Lax";
    assert_eq!(thief.set_cookies(), vec![at_deletion(AT_COOKIE, attributes)]);
    let victim = app
        .send(both(get_req("/me"), &elevated, Some(&elevated_at)).build())
        .await;
    assert_eq!(victim.status, StatusCode::UNAUTHORIZED, "{}", victim.body);
    assert_eq!(victim.set_cookies(), vec![at_deletion(AT_COOKIE, attributes)]);

    // Logout deletes both cookies.
    let reply = app.send(post_req("/login?user=bob").build()).await;
    let session = reply.session_cookie().unwrap();
    let at = cookie_value(&reply, AT_COOKIE).unwrap();
    let csrf = app.csrf(&session).await;
    let reply = app
        .send(both(post_req("/logout"), &session, Some(&at)).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.set_cookies(),
        vec![at_deletion(COOKIE, attributes), at_deletion(AT_COOKIE, attributes)]
    );
}

/// Issue 18 over the API: a write without a session starts an anonymous
/// one (`POST /v1/sessions` without subject), login promotes it
/// (`POST /v1/sessions/login`: new token, new id, the cart carried, or
/// not, or shaped by a hook run here), logout ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_visitor_sessions_start_on_write_and_sign_in_carries_them() {
    use crate::anonymous::{visitor_routes, visitor_with_cart};
    use serde_json::json;

    let Some(server) = sessiond() else { return };
    let remote = RemoteBackend::new(&server.base, &server.key).unwrap();
    let mut app = TestApp::new();
    app.router = routes()
        .merge(crate::typed_data::kv_routes())
        .merge(visitor_routes())
        .layer(SessionLayer::remote(remote).build().unwrap());
    let session_of = |token: String| {
        let server = &server;
        async move {
            let response = server
                .client
                .post(server.url("/v1/sessions/verify"))
                .bearer_auth(&server.key)
                .json(&json!({ "token": token }))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<serde_json::Value>().await.unwrap())
        }
    };

    // Reads start nothing.
    let reply = app.send(get_req("/kv/cart").build()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "null"));
    assert!(reply.set_cookies().is_empty());

    // The first write does; sessiond holds it as anonymous.
    let visitor = visitor_with_cart(&app).await;
    let (status, body) = session_of(visitor.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["session"]["subject"], json!(null));
    assert_eq!(body["session"]["data"], json!({"cart": ["socks"]}));
    let anonymous_id = body["session"]["id"].clone();
    let me = app.send(get_req("/me").cookie(&visitor).build()).await;
    me.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // CSRF holds for it; a key-level write goes through PATCH.
    let reply = app
        .send(post_req("/kv/lang").cookie(&visitor).body(r#""fr""#).build())
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    let csrf = app.csrf(&visitor).await;
    let reply = app
        .send(
            post_req("/kv/lang")
                .cookie(&visitor)
                .csrf(&csrf)
                .body(r#""fr""#)
                .build(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.set_cookies().is_empty());

    // Login carries all of it under a new token and id; the old token is dead.
    let reply = app
        .send(post_req("/login?user=alice").cookie(&visitor).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let alice = reply.session_cookie().unwrap();
    assert_ne!(alice, visitor);
    let me = app.send(get_req("/me").cookie(&alice).build()).await.json();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["data"], json!({"cart": ["socks"], "lang": "fr"}));
    assert_ne!(me["id"], anonymous_id);
    let (status, body) = session_of(visitor.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    // Logout ends the signed-in session and its cart.
    let csrf = app.csrf(&alice).await;
    let reply = app.send(post_req("/logout").cookie(&alice).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookies()[0].contains("Max-Age=0"));
    assert_eq!(app.send(get_req("/kv/cart").cookie(&alice).build()).await.body, "null");

    // carry_data false.
    let visitor = visitor_with_cart(&app).await;
    let csrf = app.csrf(&visitor).await;
    let reply = app
        .send(post_req("/login-nothing").cookie(&visitor).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let alice = reply.session_cookie().unwrap();
    assert_eq!(app.data(&alice).await, json!({}));
    assert_eq!(session_of(visitor).await.0, StatusCode::UNAUTHORIZED);

    // A hook, run in this process, and a write after the login.
    let visitor = visitor_with_cart(&app).await;
    let csrf = app.csrf(&visitor).await;
    app.send(
        post_req("/kv/lang")
            .cookie(&visitor)
            .csrf(&csrf)
            .body(r#""fr""#)
            .build(),
    )
    .await;
    let reply = app
        .send(post_req("/login-hook").cookie(&visitor).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let alice = reply.session_cookie().unwrap();
    assert_eq!(app.data(&alice).await, json!({"cart": ["socks"], "welcome": true}));
    assert_eq!(session_of(visitor).await.0, StatusCode::UNAUTHORIZED);
}
