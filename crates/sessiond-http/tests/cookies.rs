//! The session cookie: attributes on every Set-Cookie, strict parsing,
//! configuration refused at startup, development mode.

use std::time::Duration;

use http::StatusCode;
use sessiond_core::Policy;
use sessiond_http::{ConfigError, CookieConfigError, MAX_COOKIE_HEADER_BYTES, SameSite, SessionLayer};

use crate::support::*;

const ATTRIBUTES: &str = "; Path=/; Secure; HttpOnly; SameSite=Lax";

#[tokio::test]
async fn login_sets_a_host_prefixed_browser_session_cookie() {
    let app = TestApp::new();
    let reply = app.send(post_req("/login?user=alice").build()).await;
    let cookies = reply.set_cookies();
    assert_eq!(cookies.len(), 1);
    let token = reply.session_cookie().unwrap();
    assert!(token.starts_with("sd_"));
    // Exactly these attributes: no Domain, no Max-Age/Expires (browser session).
    assert_eq!(cookies[0], format!("{COOKIE}={token}{ATTRIBUTES}"));
}

#[tokio::test]
async fn remember_me_cookie_lives_as_long_as_the_absolute_lifetime() {
    let policy = Policy {
        remember_me_absolute_timeout: Duration::from_secs(30 * 86_400),
        ..Policy::default()
    };
    let app = TestApp::with(policy, |b| b);
    let reply = app.send(post_req("/login?user=alice&remember=true").build()).await;
    let token = reply.session_cookie().unwrap();
    assert_eq!(
        reply.set_cookies(),
        vec![format!("{COOKIE}={token}{ATTRIBUTES}; Max-Age={}", 30 * 86_400)]
    );

    // A day later a rotation re-issues the cookie with what is left, not more.
    app.clock.advance(Duration::from_secs(86_400));
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/rotate").cookie(&token).csrf(&csrf).build()).await;
    let rotated = reply.session_cookie().unwrap();
    assert_eq!(
        reply.set_cookies(),
        vec![format!("{COOKIE}={rotated}{ATTRIBUTES}; Max-Age={}", 29 * 86_400)]
    );
}

#[tokio::test]
async fn rotation_and_logout_cookies_carry_the_same_attributes() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/rotate").cookie(&token).csrf(&csrf).build()).await;
    let rotated = reply.session_cookie().unwrap();
    assert_ne!(rotated, token);
    assert_eq!(reply.set_cookies(), vec![format!("{COOKIE}={rotated}{ATTRIBUTES}")]);

    let csrf = app.csrf(&rotated).await;
    let reply = app.send(post_req("/logout").cookie(&rotated).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.set_cookies(),
        vec![format!(
            "{COOKIE}={ATTRIBUTES}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        )]
    );
}

#[tokio::test]
async fn duplicate_session_cookies_mean_no_session() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let other = app.login("bob", false).await;
    // Same value twice, two values, and the same split over two headers.
    for header in [
        format!("{COOKIE}={token}; {COOKIE}={token}"),
        format!("{COOKIE}={other}; {COOKIE}={token}"),
    ] {
        let reply = app.send(get_req("/me").header("cookie", &header).build()).await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let reply = app
        .send(
            get_req("/me")
                .header("cookie", &format!("{COOKIE}={token}"))
                .header("cookie", &format!("{COOKIE}={other}"))
                .build(),
        )
        .await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // The single cookie alone still works.
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(reply.json()["subject"], "alice");
}

#[tokio::test]
async fn look_alike_cookie_names_are_not_the_session_cookie() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    for name in [
        "%5F%5FHost-sessiond",
        "__Host-sessiond%00",
        "__host-sessiond",
        "__Secure-sessiond",
        "sessiond",
    ] {
        let reply = app
            .send(get_req("/me").header("cookie", &format!("{name}={token}")).build())
            .await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    // A look-alike next to the real one does not count as a duplicate.
    let header = format!("%5F%5FHost-sessiond=x; {COOKIE}={token}");
    let reply = app.send(get_req("/me").header("cookie", &header).build()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_cookie_headers_are_not_parsed() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let padding = "x".repeat(MAX_COOKIE_HEADER_BYTES);
    let header = format!("{COOKIE}={token}; pad={padding}");
    let reply = app.send(get_req("/me").header("cookie", &header).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    // An oversized session cookie value is just not a token.
    let reply = app.send(get_req("/me").cookie(&"A".repeat(5000)).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn malformed_values_are_no_session() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    for value in [
        format!("\"{token}\""),
        format!("{token}x"),
        String::new(),
        "sd_".to_owned(),
    ] {
        let reply = app.send(get_req("/me").cookie(&value).build()).await;
        reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");
    }
}

#[test]
fn contradicting_configuration_is_refused_at_startup() {
    let clock = sessiond_testkit::FakeClock::default();
    let build = |f: fn(sessiond_http::SessionLayerBuilder) -> sessiond_http::SessionLayerBuilder| {
        f(SessionLayer::in_process(manager(&clock, Policy::default())))
            .build()
            .err()
    };
    let cookie_error = |e: Option<ConfigError>| match e {
        Some(ConfigError::Cookie(e)) => e,
        other => panic!("expected a cookie error, got {other:?}"),
    };
    assert_eq!(
        cookie_error(build(|b| b.cookie_domain("shop.example"))),
        CookieConfigError::HostPrefixWithDomain
    );
    assert_eq!(
        cookie_error(build(|b| b.cookie_path("/app"))),
        CookieConfigError::HostPrefixWithPath
    );
    assert_eq!(
        cookie_error(build(|b| b
            .dev_mode(true)
            .same_site(SameSite::None)
            .allow_cross_site_cookie(true))),
        CookieConfigError::SameSiteNoneWithoutSecure
    );
    assert_eq!(
        cookie_error(build(|b| b.dev_mode(true).cookie_name("__Host-dev"))),
        CookieConfigError::PrefixWithoutSecure
    );
    assert!(matches!(
        build(|b| b.dev_mode(true).allowed_origin("http://shop.example")),
        Some(ConfigError::DevModeNotLocal(_))
    ));
    assert!(matches!(
        build(|b| b.allowed_origin("https://shop.example/path")),
        Some(ConfigError::Origin(_))
    ));
    // SameSite=None is a choice made explicitly, never a default or typo.
    assert!(matches!(
        build(|b| b.same_site(SameSite::None)),
        Some(ConfigError::CrossSiteCookieNotAllowed)
    ));
    // A non-prefixed name may have a Domain; SameSite=None is fine with
    // Secure and the opt-in.
    assert!(build(|b| b.cookie_name("sid").cookie_domain("shop.example")).is_none());
    assert!(build(|b| b.same_site(SameSite::None).allow_cross_site_cookie(true)).is_none());
}

#[tokio::test]
async fn dev_mode_drops_secure_and_the_prefix_on_localhost_only() {
    let app = TestApp::with(Policy::default(), |b| b.dev_mode(true));
    let request = http::Request::post("/login?user=alice")
        .header("host", "localhost:3000")
        .header("origin", "http://localhost:3000")
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let cookie = &reply.set_cookies()[0];
    assert!(cookie.starts_with("sessiond=sd_"), "{cookie}");
    assert!(cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"), "{cookie}");

    let request = http::Request::post("/login?user=alice")
        .header("host", "shop.example")
        .header("origin", "http://shop.example")
        .body(axum::body::Body::empty())
        .unwrap();
    app.send(request)
        .await
        .assert_problem(StatusCode::FORBIDDEN, "dev_mode_not_local");
}
