//! Hostile and malformed input: a clear 4xx with a stable code, and no
//! change to stored data.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_problem, launch};

async fn raw(
    s: &TestServer,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = s.req(Method::POST, path).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

/// Path, content type, body, expected status and code.
type Case = (&'static str, Option<&'static str>, Vec<u8>, u16, &'static str);

#[tokio::test]
async fn malformed_bodies_are_400_415_or_413_and_change_nothing() {
    let s = launch().env(&[("SESSIOND_SERVER_BODY_LIMIT", "65536")]).start();
    let (token, session) = s.login("alice").await;
    let json_ct = Some("application/json");
    let cases: Vec<Case> = vec![
        ("/v1/sessions", json_ct, b"{".to_vec(), 400, "invalid_request"),
        ("/v1/sessions", json_ct, b"".to_vec(), 400, "invalid_request"),
        ("/v1/sessions", json_ct, b"[]".to_vec(), 400, "invalid_request"),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": 42}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a", "remember_me": "yes"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a", "data": [1]}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a", "aal": 4}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a", "aal": 0}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a", "aal": "2"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": ""}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a\u0000b"}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            format!(r#"{{"subject": "{}"}}"#, "x".repeat(257)).into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a", "isAdmin": true}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"subject": "a", "client": {"ip": "not-an-ip"}}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            json_ct,
            br#"{"remember_me": true}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions",
            None,
            br#"{"subject": "a"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "/v1/sessions",
            Some("text/plain"),
            br#"{"subject": "a"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "/v1/sessions",
            Some("application/x-www-form-urlencoded"),
            b"subject=a".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "/v1/sessions",
            json_ct,
            format!(r#"{{"subject": "a", "data": {{"b": "{}"}}}}"#, "x".repeat(17_000)).into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            "/v1/sessions",
            json_ct,
            format!(r#"{{"subject": "{}"}}"#, "x".repeat(70_000)).into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            "/v1/sessions/verify",
            json_ct,
            br#"{"token": 5}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions/verify",
            json_ct,
            br#"{"token": null}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions/verify",
            json_ct,
            br#"{}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions/rotate",
            json_ct,
            br#"{"token": ["x"]}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "/v1/sessions/revoke",
            json_ct,
            br#"{"token": {}}"#.to_vec(),
            400,
            "invalid_request",
        ),
    ];
    for (path, ct, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let response = raw(&s, path, ct, body).await;
        assert_eq!(response.status(), status, "{path} {shown}");
        assert_problem(response, status, code).await;
    }
    // A token sent in the wrong field is never echoed back.
    let echoed = raw(
        &s,
        "/v1/sessions",
        json_ct,
        format!(r#"{{"subject": "a", "aal": "{token}"}}"#),
    )
    .await;
    let text = echoed.text().await.unwrap();
    assert!(!text.contains(&token[3..]), "error echoed the token: {text}");

    // Nothing changed: one session, still valid, and only one creation logged.
    let list: Value = s
        .req(Method::GET, "/v1/subjects/a/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({"sessions": []}));
    let verified: Value = s
        .post("/v1/sessions/verify", json!({"token": token}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(verified["session"]["version"], session["version"]);
    let events: Value = s
        .req(Method::GET, "/v1/events")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "created")
        .count();
    assert_eq!(created, 1);
}

#[tokio::test]
async fn invalid_tokens_of_every_shape_are_401_invalid_token() {
    let s = launch().start();
    let (token, _) = s.login("alice").await;
    let mut flipped = token.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let shapes = vec![
        String::new(),
        " ".into(),
        "sd_".into(),
        format!(" {token}"),
        format!("{token} "),
        format!("Bearer {token}"),
        token.to_uppercase(),
        token.replacen("sd_", "sk_", 1),
        format!("{token}A"),
        token[..token.len() - 1].to_owned(),
        String::from_utf8(flipped).unwrap(),
        format!("sd_{}", "é".repeat(21)),
        format!("sd_{}", "/".repeat(43)),
        "x".repeat(50_000),
        "sd_\u{0000}".repeat(11),
    ];
    for shape in shapes {
        for path in ["/v1/sessions/verify", "/v1/sessions/rotate"] {
            assert_problem(s.post(path, json!({"token": shape})).await, 401, "invalid_token").await;
        }
        assert_eq!(
            s.post("/v1/sessions/revoke", json!({"token": shape})).await.status(),
            204
        );
    }
    assert_eq!(
        s.post("/v1/sessions/verify", json!({"token": token})).await.status(),
        200,
        "untouched"
    );
}

#[tokio::test]
async fn bad_paths_queries_and_headers() {
    let s = launch().start();
    let (_, session) = s.login("alice").await;
    let id = session["id"].as_str().unwrap();
    for bad_id in ["nope", "%00", &"A".repeat(200), &format!("{id}x")] {
        let response = s
            .req(Method::GET, &format!("/v1/sessions/{bad_id}"))
            .send()
            .await
            .unwrap();
        assert_problem(response, 404, "not_found").await;
    }
    // A malformed If-Match fails the condition (RFC 9110 13.1.1): 412.
    let bad_match = s
        .req(Method::PATCH, &format!("/v1/sessions/{id}"))
        .header("if-match", "1")
        .json(&json!({"data": {}}));
    assert_problem(bad_match.send().await.unwrap(), 412, "version_conflict").await;
    let bad_except = s
        .req(Method::DELETE, "/v1/subjects/alice/sessions?except=garbage")
        .send()
        .await
        .unwrap();
    assert_problem(bad_except, 400, "invalid_request").await;
    assert_eq!(
        s.req(Method::GET, "/v1/subjects/alice/sessions")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "a bad except revoked nothing"
    );
    for query in ["limit=0", "limit=5000", "limit=x", "session_id=zzz", "colour=red"] {
        let response = s.req(Method::GET, &format!("/v1/events?{query}")).send().await.unwrap();
        assert_problem(response, 400, "invalid_request").await;
    }
    assert_problem(
        s.client.get(s.url("/v2/anything")).send().await.unwrap(),
        404,
        "no_such_route",
    )
    .await;
    assert_problem(
        s.req(Method::PUT, "/v1/sessions").send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    let huge = s
        .req(Method::GET, "/v1/subjects/alice/sessions")
        .header("x-padding", "p".repeat(20_000));
    assert_problem(huge.send().await.unwrap(), 431, "headers_too_large").await;
}

/// Found by schemathesis: serde's derives read a JSON array as a struct
/// (fields in order), so `["alice", false, 1, {}, null]` created a session
/// and `"client": [null, null]` was taken for an empty client.
#[tokio::test]
async fn regression_arrays_in_place_of_objects_are_400() {
    let s = launch().start();
    let (token, _) = s.login("alice").await;
    let json_ct = Some("application/json");
    let cases: [(&str, String); 6] = [
        ("/v1/sessions", r#"["alice", false, 1, {}, null]"#.to_owned()),
        ("/v1/sessions", r#"["alice"]"#.to_owned()),
        ("/v1/sessions", r#"{"subject": "a", "client": [null, null]}"#.to_owned()),
        (
            "/v1/sessions",
            r#"{"subject": "a", "client": ["10.0.0.1", "curl"]}"#.to_owned(),
        ),
        ("/v1/sessions/verify", format!(r#"["{token}"]"#)),
        (
            "/v1/sessions/verify",
            format!(r#"{{"token": "{token}", "client": []}}"#),
        ),
    ];
    for (path, body) in cases {
        let response = raw(&s, path, json_ct, body.clone()).await;
        assert_eq!(response.status(), 400, "{path} {body}");
        assert_problem(response, 400, "invalid_request").await;
    }
    let listed: Value = s
        .req(Method::GET, "/v1/subjects/a/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!({"sessions": []}), "no session was created");
}

/// Found by schemathesis: `2.0` is a JSON Schema integer, and the server
/// refused it as an `aal`.
#[tokio::test]
async fn regression_integral_float_aal_is_accepted() {
    let s = launch().start();
    let created = s.post("/v1/sessions", json!({"subject": "a", "aal": 2.0})).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["session"]["aal"], 2);
    let token = created["token"].as_str().unwrap();
    let rotated = raw(
        &s,
        "/v1/sessions/rotate",
        Some("application/json"),
        format!(r#"{{"token": "{token}", "aal": 3e0}}"#),
    )
    .await;
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.json::<Value>().await.unwrap()["session"]["aal"], 3);
    for aal in ["1.5", "4.0", "0.0", "-1.0", "1e300"] {
        let response = raw(
            &s,
            "/v1/sessions",
            Some("application/json"),
            format!(r#"{{"subject": "a", "aal": {aal}}}"#),
        )
        .await;
        assert_problem(response, 400, "invalid_request").await;
    }
}

/// The authentication scheme is case-insensitive (RFC 9110 11.1): `bearer`
/// and `BEARER` were refused with 401.
#[tokio::test]
async fn regression_bearer_scheme_is_case_insensitive() {
    let s = launch().start();
    for scheme in ["bearer", "BEARER", "bEaReR", "Bearer"] {
        let response = s
            .client
            .post(s.url("/v1/sessions"))
            .header("authorization", format!("{scheme} {}", s.key))
            .json(&json!({"subject": "a"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{scheme}");
    }
    for bad in [format!("Bearer{}", s.key), format!("Bearerx {}", s.key), s.key.clone()] {
        let response = s
            .client
            .post(s.url("/v1/sessions"))
            .header("authorization", bad)
            .json(&json!({"subject": "a"}))
            .send()
            .await
            .unwrap();
        assert_problem(response, 401, "unauthorized").await;
    }
}
