//! The admin routes (`/v1/admin/…`): keys and portal users managed on a
//! running server, by admin keys only.

use reqwest::Method;
use serde_json::json;

use crate::support::{assert_problem, launch};

/// A key made through the admin API works at once; an `app` key may not
/// call admin routes; a deleted key stops working; expired keys are refused.
#[tokio::test]
async fn keys_are_administered_online() {
    let s = launch().start();
    let (status, made) = s
        .json(Method::POST, "/v1/admin/keys", Some(json!({"name": "shop"})))
        .await;
    assert_eq!(status, 201, "{made}");
    let (key, id) = (
        made["key"].as_str().unwrap().to_owned(),
        made["id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(made["role"], "app");
    let as_app = |method: Method, path: &str| s.client.request(method, s.url(path)).bearer_auth(&key);
    let used = as_app(Method::GET, "/v1/events").send().await.unwrap();
    assert_eq!(used.status(), 200);
    let forbidden = as_app(Method::GET, "/v1/admin/keys").send().await.unwrap();
    assert_problem(forbidden, 403, "forbidden").await;
    let (status, listed) = s.json(Method::GET, "/v1/admin/keys", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "shop"]);
    assert!(!listed.to_string().contains(&key[4..]), "a listing holds a key");
    let deleted = s
        .req(Method::DELETE, &format!("/v1/admin/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // The node that deleted it knows at once.
    let refused = as_app(Method::GET, "/v1/events").send().await.unwrap();
    assert_problem(refused, 401, "unauthorized").await;
    let gone = s
        .req(Method::DELETE, &format!("/v1/admin/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_problem(gone, 404, "not_found").await;
    for bad in [
        json!({"role": "root"}),
        json!({"expires_at": "2000-01-01T00:00:00Z"}),
        json!({"name": "a\nb"}),
        json!({"name": "local-cli"}),
        json!({"scope": "all"}),
    ] {
        let refused = s.post("/v1/admin/keys", bad.clone()).await;
        assert_problem(refused, 400, "invalid_request").await;
    }
}

/// Users are added, listed, disabled (ending their sessions), given a new
/// password and deleted through the API; refusals carry their codes.
#[tokio::test]
async fn users_are_administered_online() {
    let s = launch().start();
    let (status, added) = s
        .json(
            Method::POST,
            "/v1/admin/users",
            Some(json!({"username": "alice", "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["user"]["username"], "alice");
    assert_eq!(added["user"]["disabled"], false);
    assert!(!added.to_string().contains("argon2"), "a password hash in an answer");
    let again = s
        .post(
            "/v1/admin/users",
            json!({"username": "alice", "password": "another one"}),
        )
        .await;
    assert_problem(again, 409, "user_exists").await;
    let weak = s
        .post("/v1/admin/users", json!({"username": "bob", "password": "short"}))
        .await;
    assert_problem(weak, 400, "weak_password").await;
    let bad_name = s
        .post(
            "/v1/admin/users",
            json!({"username": " bob", "password": "long enough"}),
        )
        .await;
    assert_problem(bad_name, 400, "invalid_request").await;

    s.login("alice").await;
    s.login("alice").await;
    let disabled = s
        .req(Method::POST, "/v1/admin/users/alice/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 204);
    let (_, sessions) = s.json(Method::GET, "/v1/subjects/alice/sessions", None).await;
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(0),
        "disable left sessions"
    );
    let (_, listed) = s.json(Method::GET, "/v1/admin/users", None).await;
    assert_eq!(listed["users"][0]["disabled"], true);
    let enabled = s
        .req(Method::POST, "/v1/admin/users/alice/enable")
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 204);

    s.login("alice").await;
    let set = s
        .req(Method::PUT, "/v1/admin/users/alice/password")
        .json(&json!({"password": "battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 204);
    let (_, sessions) = s.json(Method::GET, "/v1/subjects/alice/sessions", None).await;
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(0),
        "a new password left sessions"
    );

    let deleted = s.req(Method::DELETE, "/v1/admin/users/alice").send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let (_, listed) = s.json(Method::GET, "/v1/admin/users", None).await;
    assert_eq!(listed["users"], json!([]));
    for (method, path) in [
        (Method::DELETE, "/v1/admin/users/alice"),
        (Method::POST, "/v1/admin/users/alice/disable"),
        (Method::POST, "/v1/admin/users/nobody/enable"),
    ] {
        let missing = s.req(method, path).send().await.unwrap();
        assert_problem(missing, 404, "not_found").await;
    }
    let (_, app) = s.json(Method::POST, "/v1/admin/keys", Some(json!({}))).await;
    let app_key = app["key"].as_str().unwrap();
    let forbidden = s
        .client
        .get(s.url("/v1/admin/users"))
        .bearer_auth(app_key)
        .send()
        .await
        .unwrap();
    assert_problem(forbidden, 403, "forbidden").await;
}
