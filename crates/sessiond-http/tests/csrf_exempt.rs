//! Per-route CSRF exemption (`SessionLayerBuilder::csrf_exempt`): exempt
//! unsafe requests skip both CSRF checks and carry no session; every other
//! route is checked exactly as before.

use axum::Router;
use axum::routing::post;
use http::StatusCode;
use serde_json::json;
use sessiond_core::Policy;
use sessiond_http::{ConfigError, HttpError, Session, SessionLayer};

use crate::support::*;

/// Answers the body and the subject of the session the handler sees.
async fn hook(session: Session, body: String) -> Result<String, HttpError> {
    let subject = session.current().await?.map(|s| s.subject().as_str().to_owned());
    Ok(json!({"body": body, "subject": subject}).to_string())
}

fn app() -> TestApp {
    let hooks = Router::new()
        .route("/webhooks/{*rest}", post(hook).get(hook))
        .route("/webhooks", post(hook))
        .route("/webhooksX", post(hook))
        .route("/saml/acs", post(hook))
        .route("/saml/acs/more", post(hook));
    TestApp::with_routes(Policy::default(), hooks, |b| {
        b.csrf_exempt("/webhooks/*").csrf_exempt("/saml/acs")
    })
}

#[tokio::test]
async fn an_exempt_route_accepts_a_post_without_provenance_or_token() {
    let app = app();
    let token = app.login("alice", false).await;
    for path in ["/webhooks/stripe", "/webhooks/git/push", "/saml/acs"] {
        // No Origin, no Sec-Fetch-Site, no CSRF token.
        let reply = app.send(bare_post(path).body("event").build()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(reply.json(), json!({"body": "event", "subject": null}));
        // Declared cross-site, with the session cookie and no token.
        let reply = app
            .send(
                bare_post(path)
                    .header("sec-fetch-site", "cross-site")
                    .header("origin", "https://evil.example")
                    .cookie(&token)
                    .body("forged?")
                    .build(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        // The cookie is not read: a forged request carries no authority.
        assert_eq!(reply.json(), json!({"body": "forged?", "subject": null}));
        assert!(reply.set_cookies().is_empty());
    }
    // The session the cookie names is untouched.
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(reply.json()["subject"], "alice");
    // Safe methods are never CSRF-checked and keep their session.
    let reply = app.send(get_req("/webhooks/status").cookie(&token).build()).await;
    assert_eq!(reply.json()["subject"], "alice");
}

#[tokio::test]
async fn routes_not_exempt_are_checked_exactly_as_before() {
    let app = app();
    let token = app.login("alice", false).await;
    // The prefix is whole segments: neither /webhooks nor /webhooksX, and
    // an exact path is not a prefix.
    for path in ["/webhooks", "/webhooksX", "/saml/acs/more", "/echo"] {
        let reply = app.send(bare_post(path).build()).await;
        reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
        let reply = app
            .send(
                bare_post(path)
                    .header("sec-fetch-site", "cross-site")
                    .cookie(&token)
                    .build(),
            )
            .await;
        reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
        let reply = app.send(post_req(path).cookie(&token).build()).await;
        reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    }
    // Paths are compared as sent: another case or an encoding is another path.
    for path in ["/Webhooks/stripe", "/%77ebhooks/stripe"] {
        let reply = app.send(bare_post(path).build()).await;
        reply.assert_problem(StatusCode::FORBIDDEN, "cross_site_request");
    }
}

#[test]
fn malformed_patterns_are_refused_at_build() {
    for pattern in [
        "webhooks/*",
        "/*",
        "/web*",
        "/webhooks/*/x",
        "/a?x=1",
        "/a//b",
        "/a/../b",
        "",
    ] {
        let manager = manager(&sessiond_testkit::FakeClock::default(), Policy::default());
        let error = SessionLayer::in_process(manager)
            .csrf_exempt("/ok/*")
            .csrf_exempt(pattern)
            .build()
            .unwrap_err();
        assert!(
            matches!(&error, ConfigError::CsrfExempt { pattern: p, .. } if p == pattern),
            "{pattern:?}: {error}"
        );
        assert!(error.to_string().contains("invalid CSRF exemption"), "{error}");
    }
}
