//! `/openapi.json` describes the routes the server really has.

use serde_json::Value;

use crate::support::launch;

/// Every endpoint of API.md, the portal's included.
const API_MD: &[(&str, &str)] = &[
    ("post", "/v1/sessions"),
    ("post", "/v1/sessions/verify"),
    ("post", "/v1/sessions/rotate"),
    ("post", "/v1/sessions/revoke"),
    ("get", "/v1/sessions/{id}"),
    ("patch", "/v1/sessions/{id}"),
    ("delete", "/v1/sessions/{id}"),
    ("get", "/v1/subjects/{subject}/sessions"),
    ("delete", "/v1/subjects/{subject}/sessions"),
    ("get", "/v1/events"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/login"),
    ("post", "/login"),
    ("post", "/logout"),
    ("get", "/account"),
    ("post", "/account/password"),
    ("post", "/account/sessions/{id}/revoke"),
    ("post", "/account/sessions/revoke-others"),
    ("get", "/auth/verify"),
];

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let s = launch().start();
    let doc: Value = s
        .client
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys().filter(|m| *m != "parameters") {
            documented.push((method.clone(), path.clone()));
        }
    }
    for (method, path) in API_MD {
        assert!(
            documented.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} of API.md is not in /openapi.json"
        );
    }
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "AAAAAAAAAAAAAAAAAAAAAA")
            .replace("{subject}", "alice");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = s.req(method.clone(), &concrete).send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        assert!(
            status != 405 && body["code"] != "no_such_route",
            "{method} {path} is documented but not served"
        );
    }
    assert_eq!(
        documented.len(),
        API_MD.len(),
        "documented routes beyond API.md: {documented:?}"
    );
}
