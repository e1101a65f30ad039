//! Anonymous sessions over HTTP (API.md, "Anonymous sessions (v0.2)").

use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{assert_problem, launch};

fn at(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

#[tokio::test]
async fn a_visitor_gets_a_session_and_keeps_its_data_across_sign_in() {
    let s = launch().start();
    let (status, created) = s
        .json(
            Method::POST,
            "/v1/sessions",
            Some(json!({"data": {"cart": ["sku-1"]}, "client": {"ip": "203.0.113.9"}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let visitor = created["token"].as_str().unwrap().to_owned();
    let session = &created["session"];
    assert!(session.get("subject").is_some_and(Value::is_null), "{session}");
    assert_eq!(session["aal"], 1);
    assert_eq!(session["remember_me"], false);
    let created_at = at(&session["created_at"]);
    assert_eq!(
        at(&session["idle_expires_at"]) - created_at,
        time::Duration::minutes(30)
    );
    assert_eq!(
        at(&session["absolute_expires_at"]) - created_at,
        time::Duration::hours(24)
    );
    let anonymous_id = session["id"].as_str().unwrap().to_owned();

    let (status, verified) = s
        .json(Method::POST, "/v1/sessions/verify", Some(json!({"token": visitor})))
        .await;
    assert_eq!(status, 200);
    assert!(verified["session"]["subject"].is_null());

    // An anonymous session gets no access token and no step-up.
    assert_problem(
        s.post("/v1/sessions/access-token", json!({"token": visitor})).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        s.post("/v1/sessions/rotate", json!({"token": visitor, "aal": 2})).await,
        401,
        "invalid_token",
    )
    .await;

    let (status, signed_in) = s
        .json(
            Method::POST,
            "/v1/sessions/login",
            Some(json!({"token": visitor, "subject": "alice", "aal": 2})),
        )
        .await;
    assert_eq!(status, 200, "{signed_in}");
    let token = signed_in["token"].as_str().unwrap();
    assert_ne!(token, visitor);
    assert_ne!(signed_in["session"]["id"], anonymous_id.as_str());
    assert_eq!(signed_in["session"]["subject"], "alice");
    assert_eq!(signed_in["session"]["aal"], 2);
    assert_eq!(signed_in["session"]["data"], json!({"cart": ["sku-1"]}));
    // The visitor's token is dead, and its session listed nowhere.
    assert_problem(
        s.post("/v1/sessions/verify", json!({"token": visitor})).await,
        401,
        "invalid_token",
    )
    .await;
    let (_, listed) = s.json(Method::GET, "/v1/subjects/alice/sessions", None).await;
    let ids: Vec<&Value> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(ids, vec![&signed_in["session"]["id"]]);

    // A signed-in session cannot sign in again; nor can the dead visitor.
    for token in [token, visitor.as_str()] {
        assert_problem(
            s.post("/v1/sessions/login", json!({"token": token, "subject": "bob"}))
                .await,
            401,
            "invalid_token",
        )
        .await;
    }

    // carry_data false: the new session starts empty.
    let (_, other) = s
        .json(Method::POST, "/v1/sessions", Some(json!({"data": {"cart": ["sku-2"]}})))
        .await;
    let (status, bob) = s
        .json(
            Method::POST,
            "/v1/sessions/login",
            Some(json!({"token": other["token"], "subject": "bob", "carry_data": false})),
        )
        .await;
    assert_eq!(status, 200, "{bob}");
    assert_eq!(bob["session"]["data"], json!({}));

    // Or with keys set over what is carried, in one call.
    let (_, over) = s
        .json(
            Method::POST,
            "/v1/sessions",
            Some(json!({"data": {"cart": ["sku-4"], "theme": "dark"}})),
        )
        .await;
    let both = json!({"token": over["token"], "subject": "dave", "data": {"cart": ["saved", "sku-4"]}});
    let (status, dave) = s.json(Method::POST, "/v1/sessions/login", Some(both)).await;
    assert_eq!(status, 200, "{dave}");
    assert_eq!(
        dave["session"]["data"],
        json!({"cart": ["saved", "sku-4"], "theme": "dark"})
    );
    let (_, third) = s
        .json(Method::POST, "/v1/sessions", Some(json!({"data": {"cart": ["sku-3"]}})))
        .await;
    let merged = json!({"token": third["token"], "subject": "carol", "carry_data": false,
                        "data": {"cart": ["saved", "sku-3"]}});
    let (status, carol) = s.json(Method::POST, "/v1/sessions/login", Some(merged)).await;
    assert_eq!(status, 200, "{carol}");
    assert_eq!(carol["session"]["data"], json!({"cart": ["saved", "sku-3"]}));

    let metrics = s.text("/metrics").await;
    assert!(
        metrics.contains("sessiond_anonymous_sessions_created_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sessiond_sessions_verified_total{kind="anonymous"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_anonymous_session_takes_no_login_fields_and_a_small_data_object() {
    let s = launch().start();
    for body in [
        json!({"remember_me": true}),
        json!({"aal": 2}),
        json!({"subject": null, "aal": 3}),
    ] {
        assert_problem(s.post("/v1/sessions", body).await, 400, "invalid_request").await;
    }
    // What is true of every anonymous session may be said.
    let said = json!({"subject": null, "remember_me": false, "aal": 1});
    assert_eq!(s.post("/v1/sessions", said).await.status(), 201);
    let big = "x".repeat(5000);
    assert_problem(
        s.post("/v1/sessions", json!({"data": {"note": big}})).await,
        413,
        "payload_too_large",
    )
    .await;
    // The same data is fine for a signed-in session.
    let (status, _) = s
        .json(
            Method::POST,
            "/v1/sessions",
            Some(json!({"subject": "alice", "data": {"note": big}})),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn one_address_is_refused_past_its_anonymous_allowance() {
    let s = launch().env(&[("SESSIOND_POLICY_ANONYMOUS_PER_ADDRESS", "2")]).start();
    let from = |ip: &str| json!({"client": {"ip": ip}});
    for _ in 0..2 {
        let response = s.post("/v1/sessions", from("198.51.100.20")).await;
        assert_eq!(response.status(), 201);
    }
    let refused = s.post("/v1/sessions", from("198.51.100.20")).await;
    assert_eq!(refused.headers()["retry-after"], "60");
    assert_problem(refused, 429, "too_many_sessions").await;
    // Another address, and a login from this one, are not refused.
    assert_eq!(s.post("/v1/sessions", from("198.51.100.21")).await.status(), 201);
    let login = json!({"subject": "alice", "client": {"ip": "198.51.100.20"}});
    assert_eq!(s.post("/v1/sessions", login).await.status(), 201);
}
