//! CSRF: provenance checks and the per-session synchronizer token.

use http::StatusCode;
use sessiond_core::Policy;

use crate::support::*;

/// The answer to an unsafe request depends on where it came from: caches
/// are told so.
fn assert_vary_provenance(reply: &Reply) {
    let vary: Vec<String> = reply
        .headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect();
    for name in ["sec-fetch-site", "origin"] {
        assert!(vary.iter().any(|v| v.split(',').any(|n| n.trim() == name)), "{vary:?}");
    }
}

#[tokio::test]
async fn same_origin_post_with_the_token_is_accepted() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/echo").cookie(&token).csrf(&csrf).body("hi").build())
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "hi"));
    assert_vary_provenance(&reply);
    // Origin alone (no Fetch Metadata, as older browsers send) also works.
    let reply = app
        .send(
            bare_post("/echo")
                .header("origin", ORIGIN)
                .cookie(&token)
                .csrf(&csrf)
                .build(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn form_field_token_is_accepted_and_the_body_reaches_the_handler() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let form = format!("item=socks&csrf_token={csrf}&qty=2");
    let reply = app.send(post_req("/echo").cookie(&token).form(&form).build()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, form.as_str()));
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let cases = [
        bare_post("/echo").header("sec-fetch-site", "cross-site"),
        // Same-site (a sibling subdomain) is refused by default.
        bare_post("/echo").header("sec-fetch-site", "same-site"),
        bare_post("/echo").header("sec-fetch-site", "bogus"),
        bare_post("/echo").header("origin", "https://evil.example"),
        bare_post("/echo").header("origin", "http://shop.example"),
        bare_post("/echo").header("origin", "null"),
        // No provenance at all.
        bare_post("/echo"),
    ];
    for request in cases {
        // Even with a valid token: provenance is checked independently.
        let reply = app.send(request.cookie(&token).csrf(&csrf).build()).await;
        reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
        assert_vary_provenance(&reply);
    }
    // Also without any session: a cross-site login attempt.
    let reply = app
        .send(
            bare_post("/login?user=mallory")
                .header("sec-fetch-site", "cross-site")
                .build(),
        )
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
}

#[tokio::test]
async fn a_session_request_without_a_valid_token_is_refused() {
    let app = TestApp::new();
    let alice = app.login("alice", false).await;
    let bob = app.login("bob", false).await;
    let bobs_csrf = app.csrf(&bob).await;
    let alices_csrf = app.csrf(&alice).await;
    let cases = [
        post_req("/logout").cookie(&alice),
        post_req("/logout").cookie(&alice).csrf(&bobs_csrf),
        post_req("/logout").cookie(&alice).csrf("not-a-token"),
        post_req("/logout").cookie(&alice).csrf(&alices_csrf[1..]),
        post_req("/logout")
            .cookie(&alice)
            .form(&format!("csrf_token={bobs_csrf}")),
        post_req("/logout")
            .cookie(&alice)
            .form(&format!("csrf_token={alices_csrf}&csrf_token={alices_csrf}")),
        // A JSON body is not searched for a token.
        post_req("/logout")
            .cookie(&alice)
            .header("content-type", "application/json")
            .body(&format!("{{\"csrf_token\":\"{alices_csrf}\"}}")),
    ];
    for request in cases {
        let reply = app.send(request.build()).await;
        reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    }
    // Alice is still signed in: nothing above took effect.
    let reply = app.send(get_req("/me").cookie(&alice).build()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_from_before_rotation_is_refused() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let old_csrf = app.csrf(&token).await;
    let reply = app
        .send(post_req("/rotate").cookie(&token).csrf(&old_csrf).build())
        .await;
    let rotated = reply.session_cookie().unwrap();
    let new_csrf = app.csrf(&rotated).await;
    assert_ne!(new_csrf, old_csrf);
    let reply = app
        .send(post_req("/echo").cookie(&rotated).csrf(&old_csrf).build())
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    let reply = app
        .send(post_req("/echo").cookie(&rotated).csrf(&new_csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_forms_are_refused_before_the_handler() {
    let app = TestApp::with(Policy::default(), |b| b.max_form_bytes(1024));
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    let form = format!("pad={}&csrf_token={csrf}", "x".repeat(2000));
    let reply = app.send(post_req("/echo").cookie(&token).form(&form).build()).await;
    reply.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn provenance_rules_are_configurable() {
    let app = TestApp::with(Policy::default(), |b| {
        b.allow_missing_origin(true)
            .allow_same_site(true)
            .allowed_origin("https://www.shop.example")
    });
    let token = app.login("alice", false).await;
    let csrf = app.csrf(&token).await;
    for request in [
        bare_post("/echo"),
        bare_post("/echo").header("sec-fetch-site", "same-site"),
        bare_post("/echo").header("origin", "https://www.shop.example"),
    ] {
        let reply = app.send(request.cookie(&token).csrf(&csrf).build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    // The configured list replaces the Host-derived origin; the token still applies.
    let reply = app
        .send(
            bare_post("/echo")
                .header("origin", ORIGIN)
                .cookie(&token)
                .csrf(&csrf)
                .build(),
        )
        .await;
    reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
    let reply = app.send(bare_post("/echo").cookie(&token).build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
}

#[tokio::test]
async fn safe_methods_need_no_token() {
    let app = TestApp::new();
    let token = app.login("alice", false).await;
    let reply = app
        .send(
            get_req("/me")
                .header("sec-fetch-site", "cross-site")
                .cookie(&token)
                .build(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
}
