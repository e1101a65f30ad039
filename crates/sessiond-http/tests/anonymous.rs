//! Issue 18, sessions from the first visit: a data write without a session
//! starts an anonymous one, reads never do, login promotes it (new token,
//! new id, data carried), logout ends it. In process over a MemoryStore
//! whose record count shows every store write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::post;
use http::{StatusCode, header};
use serde_json::json;
use sessiond_core::{CarryData, CounterRule, MemoryStore, Policy, SessionData, SessionManager, Subject};
use sessiond_http::{HttpError, Session, SessionLayer};
use sessiond_testkit::FakeClock;

use crate::support::*;
use crate::typed_data::kv_routes;

/// Logins that choose what to carry, and a logout that keeps a preference.
pub fn visitor_routes() -> Router {
    Router::new()
        .route(
            "/login-nothing",
            post(|session: Session| async move {
                session.login_carrying(subject("alice")?, false, CarryData::Nothing);
                Ok::<_, HttpError>("logged in")
            }),
        )
        .route(
            "/login-hook",
            post(|session: Session| async move {
                // Keep the cart only, and add a key of this request's own.
                let keep_cart = |visitor: &SessionData| {
                    visitor
                        .iter()
                        .filter(|(key, _)| key.as_str() == "cart")
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect::<SessionData>()
                };
                session.login_carrying(subject("alice")?, false, CarryData::With(Arc::new(keep_cart)));
                session.insert("welcome", true).await?;
                Ok::<_, HttpError>("logged in")
            }),
        )
        .route(
            "/logout-keep",
            post(|session: Session| async move {
                session.logout_to_anonymous();
                session.insert("lang", "fr").await?;
                Ok::<_, HttpError>("bye")
            }),
        )
        .route(
            "/logout-to-anonymous",
            post(|session: Session| async move {
                session.logout_to_anonymous();
                "bye"
            }),
        )
        .route(
            "/whoami",
            axum::routing::get(|session: Session| async move {
                let any = session.current_or_anonymous().await?;
                Ok::<_, HttpError>(
                    json!({
                        "signed_in": session.current().await?.map(|s| s.subject().as_str().to_owned()),
                        "anonymous": any.as_ref().map(|s| s.is_anonymous()),
                        "id": any.map(|s| s.id().as_str().to_owned()),
                    })
                    .to_string(),
                )
            }),
        )
}

fn subject(name: &str) -> Result<Subject, HttpError> {
    Subject::new(name).map_err(|_| HttpError::BadRequest)
}

/// The app, its store (to count records) and its manager.
pub struct Shop {
    pub app: TestApp,
    pub store: Arc<MemoryStore>,
}

fn shop_with(
    configure: impl FnOnce(sessiond_core::SessionManagerBuilder) -> sessiond_core::SessionManagerBuilder,
) -> Shop {
    let clock = FakeClock::default();
    let store = Arc::new(MemoryStore::new());
    let builder = SessionManager::builder(store.clone())
        .clock(Arc::new(clock.clone()))
        .policy(Policy::default());
    let manager = configure(builder).build().unwrap();
    let layer = SessionLayer::in_process(manager.clone()).build().unwrap();
    let router = routes().merge(kv_routes()).merge(visitor_routes()).layer(layer);
    Shop {
        app: TestApp { router, manager, clock },
        store,
    }
}

fn shop() -> Shop {
    shop_with(|b| b)
}

/// Puts `socks` in the cart of a visitor without a session; answers the
/// new anonymous session's cookie.
pub async fn visitor_with_cart(app: &TestApp) -> String {
    let reply = app.send(post_req("/kv/cart").body(r#"["socks"]"#).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, r#"["socks"]"#);
    let cookie = reply.set_cookies();
    assert_eq!(cookie.len(), 1, "{cookie:?}");
    // A browser-session cookie: no Max-Age.
    assert!(
        cookie[0].ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "{cookie:?}"
    );
    reply.session_cookie().unwrap()
}

async fn whoami(app: &TestApp, cookie: &str) -> serde_json::Value {
    let reply = app.send(get_req("/whoami").cookie(cookie).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

#[tokio::test]
async fn a_write_without_a_session_starts_an_anonymous_one() {
    let Shop { app, store } = shop();
    let visitor = visitor_with_cart(&app).await;
    assert_eq!(store.len(), 1);
    let reply = app.send(get_req("/kv/cart").cookie(&visitor).build()).await;
    assert_eq!(reply.body, r#"["socks"]"#);
    // Anonymous: nobody's identity.
    let me = app.send(get_req("/me").cookie(&visitor).build()).await;
    me.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    let who = whoami(&app, &visitor).await;
    assert_eq!(who["signed_in"], json!(null));
    assert_eq!(who["anonymous"], json!(true));
    for path in ["/rotate", "/elevate", "/reauthenticate"] {
        let csrf = app.csrf(&visitor).await;
        let reply = app.send(post_req(path).cookie(&visitor).csrf(&csrf).build()).await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }

    // Its next write goes to the same session: no new cookie, no new record.
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
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());
    assert_eq!(store.len(), 1);
    let reply = app.send(get_req("/kv/lang").cookie(&visitor).build()).await;
    assert_eq!(reply.body, r#""fr""#);
}

#[tokio::test]
async fn reads_without_a_cookie_write_nothing() {
    let Shop { app, store } = shop();
    for path in ["/kv/cart", "/public", "/whoami"] {
        let reply = app.send(get_req(path).build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert!(reply.set_cookies().is_empty(), "{path}: {:?}", reply.set_cookies());
    }
    for path in ["/me", "/csrf"] {
        let reply = app.send(get_req(path).build()).await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    // Unsafe requests that leave nothing to keep write nothing either.
    let reply = app.send(post_req("/kv/cart/remove").build()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "null"));
    let reply = app.send(post_req("/own-changes").build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(store.len(), 1, "own-changes keeps b: one session");
    let reply_cookie = reply.session_cookie();
    assert!(reply_cookie.is_some());

    // The count is what catches a write: a fresh store, reads only.
    let Shop { app, store } = shop();
    for _ in 0..3 {
        app.send(get_req("/kv/cart").build()).await;
        app.send(get_req("/whoami").build()).await;
    }
    assert_eq!(store.len(), 0);
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_cross_site_write_starts_no_session() {
    let Shop { app, store } = shop();
    let reply = app
        .send(
            bare_post("/kv/cart")
                .header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site")
                .body(r#"["bomb"]"#)
                .build(),
        )
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
    let reply = app.send(bare_post("/kv/cart").body(r#"["bomb"]"#).build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
    assert_eq!(store.len(), 0);

    // A visitor's session is guarded by its CSRF token like any other.
    let visitor = visitor_with_cart(&app).await;
    let reply = app.send(post_req("/kv/cart").cookie(&visitor).body("[]").build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    let reply = app
        .send(post_req("/kv/cart").cookie(&visitor).csrf("AAAA").body("[]").build())
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    let reply = app.send(get_req("/kv/cart").cookie(&visitor).build()).await;
    assert_eq!(reply.body, r#"["socks"]"#);
}

#[tokio::test]
async fn login_promotes_the_visitor_and_carries_the_cart() {
    let Shop { app, store } = shop();
    let visitor = visitor_with_cart(&app).await;
    let anonymous_id = whoami(&app, &visitor).await["id"].clone();
    let csrf = app.csrf(&visitor).await;
    // Without the visitor's CSRF token, no login from their session.
    let reply = app.send(post_req("/login?user=alice").cookie(&visitor).build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");

    let reply = app
        .send(post_req("/login?user=alice").cookie(&visitor).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let alice = reply.session_cookie().unwrap();
    assert_ne!(alice, visitor);
    let me = app.send(get_req("/me").cookie(&alice).build()).await.json();
    assert_eq!(me["subject"], "alice");
    assert_eq!(me["data"], json!({"cart": ["socks"]}));
    assert_ne!(me["id"], anonymous_id);
    assert!(anonymous_id.is_string());

    // The visitor's token is dead, in the layer and in the manager.
    let who = whoami(&app, &visitor).await;
    assert_eq!(who, json!({"signed_in": null, "anonymous": null, "id": null}));
    let reply = app.send(get_req("/kv/cart").cookie(&visitor).build()).await;
    assert_eq!(reply.body, "null");
    assert!(app.manager.verify(&visitor, None).await.is_err());
    // The ended record stays until purged; the new one is the only live one.
    assert_eq!(store.len(), 2);
    // Its CSRF token does not work for the new session either.
    let reply = app
        .send(post_req("/kv/x").cookie(&alice).csrf(&csrf).body("1").build())
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
}

#[tokio::test]
async fn login_carrying_nothing_leaves_the_visitor_data_behind() {
    let Shop { app, .. } = shop();
    let visitor = visitor_with_cart(&app).await;
    let csrf = app.csrf(&visitor).await;
    let reply = app
        .send(post_req("/login-nothing").cookie(&visitor).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let alice = reply.session_cookie().unwrap();
    assert_ne!(alice, visitor);
    assert_eq!(app.data(&alice).await, json!({}));
    assert!(app.manager.verify(&visitor, None).await.is_err());
}

#[tokio::test]
async fn a_carry_hook_and_writes_after_login_shape_the_new_data() {
    let Shop { app, .. } = shop();
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
}

#[tokio::test]
async fn login_from_a_signed_in_session_carries_nothing() {
    let Shop { app, .. } = shop();
    let bob = app.login("bob", false).await;
    let csrf = app.csrf(&bob).await;
    app.send(
        post_req("/kv/cart")
            .cookie(&bob)
            .csrf(&csrf)
            .body(r#"["bob's"]"#)
            .build(),
    )
    .await;
    let reply = app
        .send(post_req("/login?user=alice").cookie(&bob).csrf(&csrf).build())
        .await;
    let alice = reply.session_cookie().unwrap();
    assert_eq!(app.data(&alice).await, json!({}));
    let me = app.send(get_req("/me").cookie(&bob).build()).await;
    me.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn logout_ends_the_cart_and_the_next_write_starts_afresh() {
    let Shop { app, .. } = shop();
    let visitor = visitor_with_cart(&app).await;
    let csrf = app.csrf(&visitor).await;
    let reply = app
        .send(post_req("/login?user=alice").cookie(&visitor).csrf(&csrf).build())
        .await;
    let alice = reply.session_cookie().unwrap();
    let csrf = app.csrf(&alice).await;
    let alice_id = app.send(get_req("/me").cookie(&alice).build()).await.json()["id"].clone();

    let reply = app.send(post_req("/logout").cookie(&alice).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.session_cookie(), None);
    assert!(
        reply.set_cookies()[0].contains("Max-Age=0"),
        "{:?}",
        reply.set_cookies()
    );
    let reply = app.send(get_req("/kv/cart").cookie(&alice).build()).await;
    assert_eq!(reply.body, "null");

    // The browser still sends the dead cookie: a write replaces it.
    let reply = app
        .send(post_req("/kv/cart").cookie(&alice).body(r#"["hat"]"#).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let fresh = reply.session_cookie().unwrap();
    let who = whoami(&app, &fresh).await;
    assert_eq!(who["anonymous"], json!(true));
    assert_ne!(who["id"], alice_id);
}

#[tokio::test]
async fn logout_to_anonymous_keeps_only_what_the_request_writes() {
    let Shop { app, store } = shop();
    let alice = app.login("alice", false).await;
    let csrf = app.csrf(&alice).await;
    app.send(
        post_req("/kv/cart")
            .cookie(&alice)
            .csrf(&csrf)
            .body(r#"["socks"]"#)
            .build(),
    )
    .await;
    let reply = app
        .send(post_req("/logout-keep").cookie(&alice).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let fresh = reply.session_cookie().unwrap();
    assert_ne!(fresh, alice);
    let me = app.send(get_req("/me").cookie(&alice).build()).await;
    me.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(whoami(&app, &fresh).await["anonymous"], json!(true));
    assert_eq!(
        app.send(get_req("/kv/lang").cookie(&fresh).build()).await.body,
        r#""fr""#
    );
    assert_eq!(app.send(get_req("/kv/cart").cookie(&fresh).build()).await.body, "null");

    // Without a write it is a plain logout: the cookie is deleted, no record.
    let bob = app.login("bob", false).await;
    let before = store.len();
    let csrf = app.csrf(&bob).await;
    let reply = app
        .send(post_req("/logout-to-anonymous").cookie(&bob).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.session_cookie(), None);
    assert!(reply.set_cookies()[0].contains("Max-Age=0"));
    assert_eq!(store.len(), before);
}

#[tokio::test]
async fn a_visitor_session_idles_out_after_the_anonymous_timeout() {
    let Shop { app, .. } = shop();
    let visitor = visitor_with_cart(&app).await;
    let idle = Policy::default().anonymous_idle_timeout;
    app.clock.advance(idle - Duration::from_secs(60));
    assert_eq!(
        app.send(get_req("/kv/cart").cookie(&visitor).build()).await.body,
        r#"["socks"]"#
    );
    app.clock.advance(idle + Duration::from_secs(1));
    assert_eq!(
        app.send(get_req("/kv/cart").cookie(&visitor).build()).await.body,
        "null"
    );
}

#[tokio::test]
async fn too_many_visitor_sessions_from_one_address_are_429() {
    // One free creation; the second sets a lock, which refuses the third.
    let rule = CounterRule {
        free: 1,
        base_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(60),
        forget_after: Duration::from_secs(3600),
    };
    let counters = Arc::new(MemoryStore::new());
    let Shop { app, store } = shop_with(|b| b.anonymous_limit(counters.clone(), rule));
    let from = |ip: &str| {
        let mut request = post_req("/kv/cart").body(r#"["x"]"#).build();
        let addr: SocketAddr = format!("{ip}:4711").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        request
    };
    for _ in 0..2 {
        let reply = app.send(from("192.0.2.7")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let reply = app.send(from("192.0.2.7")).await;
    reply.assert_problem(StatusCode::TOO_MANY_REQUESTS, "too_many_sessions");
    let retry: u64 = reply.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(store.len(), 2);
    // Another address is not held back.
    let reply = app.send(from("198.51.100.1")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn a_visitor_session_gets_no_access_token_until_sign_in() {
    use crate::access_tokens::{AT_COOKIE, cookie_value, issuer, signing_keys};

    let clock = FakeClock::default();
    let manager = manager(&clock, Policy::default());
    let keys = signing_keys(&clock).await;
    let layer = SessionLayer::in_process(manager.clone())
        .access_tokens(issuer(&keys))
        .build()
        .unwrap();
    let app = TestApp {
        router: routes().merge(kv_routes()).layer(layer),
        manager,
        clock,
    };
    let reply = app.send(post_req("/kv/cart").body(r#"["socks"]"#).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let visitor = reply.session_cookie().unwrap();
    assert_eq!(reply.set_cookies().len(), 1, "{:?}", reply.set_cookies());
    assert_eq!(cookie_value(&reply, AT_COOKIE), None);
    let reply = app.send(get_req("/kv/cart").cookie(&visitor).build()).await;
    assert!(reply.set_cookies().is_empty(), "{:?}", reply.set_cookies());

    let csrf = app.csrf(&visitor).await;
    let reply = app
        .send(post_req("/login?user=alice").cookie(&visitor).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(cookie_value(&reply, AT_COOKIE).is_some(), "{:?}", reply.set_cookies());
}
