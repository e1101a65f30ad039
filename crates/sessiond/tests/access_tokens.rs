//! Access tokens over the real server: minting, refresh with theft
//! detection, the JWKS and the revocation feed (API.md, "Access tokens,
//! refresh and theft detection").
//!
//! Signatures are checked here with ring, not with the jsonwebtoken crate
//! that made them; `interop.rs` checks them with Python and JavaScript
//! libraries.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{assert_problem, launch};

/// The header and claims of a compact JWS, after checking its signature
/// against the server's JWKS with ring.
pub async fn decode_verified(s: &sessiond_testkit::server::TestServer, token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let jwks: Value = reqwest::get(s.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap_or_else(|| panic!("kid {} not in {jwks}", header["kid"]));
    let public = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let input = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public)
        .verify(input.as_bytes(), &signature)
        .expect("the signature verifies with the JWKS key");
    (header, claims)
}

fn unix(rfc3339: &Value) -> i64 {
    time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp()
}

#[tokio::test]
async fn an_access_token_carries_the_session_and_verifies_with_the_jwks() {
    let s = launch()
        .env(&[
            ("SESSIOND_TOKENS_ISSUER", "https://auth.example"),
            ("SESSIOND_TOKENS_AUDIENCE", "api"),
        ])
        .start();
    let (token, session) = s.login("alice").await;
    let (status, body) = s
        .json(Method::POST, "/v1/sessions/access-token", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (header, claims) = decode_verified(&s, body["access_token"].as_str().unwrap()).await;
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["iss"], "https://auth.example");
    assert_eq!(claims["aud"], "api");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["sid"], session["id"]);
    assert_eq!(claims["tid"], "default");
    assert_eq!(claims["aal"], session["aal"]);
    assert_eq!(
        claims["auth_time"].as_i64().unwrap(),
        unix(&session["authenticated_at"])
    );
    let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 300, "the default lifetime is 5 minutes");
    assert_eq!(exp, unix(&body["access_token_expires_at"]));
    assert_eq!(
        URL_SAFE_NO_PAD.decode(claims["jti"].as_str().unwrap()).unwrap().len(),
        16
    );
    // Minting does not rotate: the session token still verifies.
    assert_eq!(
        s.post("/v1/sessions/verify", json!({"token": token})).await.status(),
        200
    );
}

#[tokio::test]
async fn an_access_token_never_outlives_its_session() {
    let s = launch()
        .env(&[
            ("SESSIOND_POLICY_IDLE_TIMEOUT", "2m"),
            ("SESSIOND_TOKENS_ACCESS_TOKEN_TTL", "1h"),
        ])
        .start();
    let (token, _) = s.login("alice").await;
    let (status, body) = s
        .json(Method::POST, "/v1/sessions/access-token", Some(json!({"token": token})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = decode_verified(&s, body["access_token"].as_str().unwrap()).await;
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(
        (119..=120).contains(&lifetime),
        "capped by the idle deadline: {lifetime}"
    );
}

#[tokio::test]
async fn no_token_for_an_unknown_malformed_or_revoked_session() {
    let s = launch().start();
    let (token, _) = s.login("alice").await;
    assert_eq!(
        s.post("/v1/sessions/revoke", json!({"token": token})).await.status(),
        204
    );
    let unknown = format!("sd_{}", "A".repeat(43));
    for token in [token.as_str(), "garbage", unknown.as_str()] {
        for route in ["/v1/sessions/access-token", "/v1/sessions/refresh"] {
            assert_problem(s.post(route, json!({"token": token})).await, 401, "invalid_token").await;
        }
    }
    // Wrong types are 400, not 401.
    assert_problem(
        s.post("/v1/sessions/refresh", json!({"token": 42})).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn refresh_rotates_the_session_token_and_a_replayed_one_ends_the_session_as_theft() {
    let s = launch().start();
    let (old, session) = s.login("alice").await;
    let (status, body) = s
        .json(Method::POST, "/v1/sessions/refresh", Some(json!({"token": old})))
        .await;
    assert_eq!(status, 200, "{body}");
    let new = body["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(body["session"]["id"], session["id"]);
    let (_, claims) = decode_verified(&s, body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sid"], session["id"]);
    assert_eq!(s.post("/v1/sessions/verify", json!({"token": new})).await.status(), 200);

    // The thief (or the victim) refreshes with the rotated-out token.
    assert_problem(
        s.post("/v1/sessions/refresh", json!({"token": old})).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        s.post("/v1/sessions/refresh", json!({"token": new})).await,
        401,
        "invalid_token",
    )
    .await;
    let id = session["id"].as_str().unwrap();
    let (_, events) = s
        .json(Method::GET, &format!("/v1/events?session_id={id}&kind=revoked"), None)
        .await;
    assert_eq!(events["events"][0]["reason"], "theft", "{events}");
    // And the revocation reaches stateless verifiers through the feed.
    let (status, feed) = s.json(Method::GET, "/v1/revocations", None).await;
    assert_eq!(status, 200);
    assert_eq!(feed["revoked"][0]["session_id"], session["id"], "{feed}");
}

#[tokio::test]
async fn the_jwks_is_public_cacheable_and_lists_the_signing_key() {
    let s = launch().start();
    let response = reqwest::get(s.url("/.well-known/jwks.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=150");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!((key["use"].as_str(), key["alg"].as_str()), (Some("sig"), Some("EdDSA")));
    assert_eq!(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().len(), 32);
    // No private part is ever published.
    assert!(key.get("d").is_none());
}

#[tokio::test]
async fn the_signing_keys_survive_a_restart() {
    let s = launch().store("embedded:./data").start();
    let before: Value = reqwest::get(s.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dir = s.stop();
    let s = launch().store("embedded:./data").dir(dir).start();
    let after: Value = reqwest::get(s.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn the_revocation_feed_pages_by_cursor_and_keeps_tenants_apart() {
    let (s, other) = crate::api::launch_with_other_tenant(&[]);
    let (status, empty) = s.json(Method::GET, "/v1/revocations", None).await;
    assert_eq!(status, 200);
    assert_eq!(empty, json!({"revoked": [], "cursor": null}));

    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let (token, session) = s.login(name).await;
        assert_eq!(
            s.post("/v1/sessions/revoke", json!({"token": token})).await.status(),
            204
        );
        ids.push(session["id"].clone());
    }
    let (_, feed) = s.json(Method::GET, "/v1/revocations", None).await;
    let entries = feed["revoked"].as_array().unwrap();
    assert_eq!(
        entries.iter().map(|e| e["session_id"].clone()).collect::<Vec<_>>(),
        ids,
        "oldest first"
    );
    let entry = &entries[0];
    assert_eq!(entry["tenant"], "default");
    assert_eq!(
        unix(&entry["access_tokens_valid_until"]) - unix(&entry["revoked_at"]),
        300,
        "one access-token lifetime"
    );
    // Entries under a second old may still be joined by an earlier one
    // (a slower commit on another node): no cursor passes them yet.
    assert_eq!(feed["cursor"], Value::Null, "{feed}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, settled) = s.json(Method::GET, "/v1/revocations", None).await;
    let cursor = settled["cursor"].as_str().unwrap();
    assert_eq!(settled["revoked"], feed["revoked"]);
    let (_, later) = s
        .json(Method::GET, &format!("/v1/revocations?after={cursor}"), None)
        .await;
    assert_eq!(later["revoked"], json!([]));
    assert_eq!(later["cursor"], cursor, "an empty page keeps the caller's cursor");

    // Another tenant's key sees none of them.
    let response = reqwest::Client::new()
        .get(s.url("/v1/revocations"))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["revoked"], json!([]), "{body}");

    assert_problem(
        s.api()
            .req(Method::GET, "/v1/revocations?after=nonsense")
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn the_revocation_stream_delivers_a_revocation_within_a_second() {
    let s = launch().start();
    let mut stream = s
        .api()
        .req(Method::GET, "/v1/revocations")
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let (token, session) = s.login("alice").await;
    assert_eq!(
        s.post("/v1/sessions/revoke", json!({"token": token})).await.status(),
        204
    );
    let revoked = Instant::now();
    let mut received = String::new();
    while !received.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
        received = received.trim_start_matches(": keep-alive\n\n").to_owned();
    }
    let elapsed = revoked.elapsed();
    assert!(received.contains("event: revoked\n"), "{received}");
    assert!(received.contains("\nid: "), "{received}");
    let data = received.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let entry: Value = serde_json::from_str(data).unwrap();
    assert_eq!(entry["session_id"], session["id"]);
    // The contract: a verifier following the feed learns of it within 1 s
    // (the stream polls every 250 ms).
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn a_revocation_stream_ends_when_its_key_is_deleted() {
    let s = launch().start();
    let (status, made) = s
        .json(Method::POST, "/v1/admin/keys", Some(json!({"name": "verifier"})))
        .await;
    assert_eq!(status, 201, "{made}");
    let mut stream = reqwest::Client::new()
        .get(s.url("/v1/revocations"))
        .bearer_auth(made["key"].as_str().unwrap())
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let id = made["id"].as_str().unwrap();
    let deleted = s
        .api()
        .req(Method::DELETE, &format!("/v1/admin/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // Keep-alive comments may come first; the stream must then end.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            assert!(!String::from_utf8_lossy(&chunk).contains("event:"), "{chunk:?}");
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its key");
}
