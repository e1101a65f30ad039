//! `/openapi.json` describes the routes the server really has, is valid
//! OpenAPI 3.1 (openapi-spec-validator), and describes what the server
//! really answers (schemathesis). Both tools are found through
//! `TEST_OPENAPI_SPEC_VALIDATOR` and `TEST_SCHEMATHESIS`, which
//! scripts/test sets (scripts/servers/openapi_tools.sh).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use sessiond_testkit::env;
use sessiond_testkit::server::TestServer;

use crate::support::launch;

/// Every endpoint of API.md, the portal's included.
const API_MD: &[(&str, &str)] = &[
    ("post", "/v1/sessions"),
    ("post", "/v1/sessions/login"),
    ("post", "/v1/sessions/verify"),
    ("post", "/v1/sessions/rotate"),
    ("post", "/v1/sessions/revoke"),
    ("get", "/v1/sessions/{id}"),
    ("patch", "/v1/sessions/{id}"),
    ("delete", "/v1/sessions/{id}"),
    ("get", "/v1/subjects/{subject}/sessions"),
    ("delete", "/v1/subjects/{subject}/sessions"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    ("post", "/v1/sessions/refresh"),
    ("post", "/v1/sessions/access-token"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/v1/revocations"),
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
    ("post", "/v1/admin/keys"),
    ("get", "/v1/admin/keys"),
    ("delete", "/v1/admin/keys/{id}"),
    ("post", "/v1/admin/users"),
    ("get", "/v1/admin/users"),
    ("put", "/v1/admin/users/{username}/password"),
    ("post", "/v1/admin/users/{username}/disable"),
    ("post", "/v1/admin/users/{username}/enable"),
    ("delete", "/v1/admin/users/{username}"),
    ("get", "/v1/admin/webhooks/failures"),
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
            .replace("{subject}", "alice")
            .replace("{username}", "alice");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = s.req(method.clone(), &concrete).send().await.unwrap();
        let status = response.status().as_u16();
        // A stream stays open: its answer is its status and media type.
        if response
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "text/event-stream")
        {
            assert_eq!(status, 200, "{method} {path}");
            continue;
        }
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

/// The document as served, in a file in `dir`.
async fn served_document(s: &TestServer, dir: &Path) -> PathBuf {
    let text = s.text("/openapi.json").await;
    let file = dir.join("openapi.json");
    std::fs::write(&file, text).unwrap();
    file
}

/// Runs `program args` in `dir` on loopback only (no proxies), killed after
/// `limit`; returns whether it exited 0 and everything it wrote.
fn run_tool(program: &str, args: &[&str], dir: &Path, limit: Duration) -> (bool, String) {
    let out = dir.join("tool.out");
    let output = File::create(&out).unwrap();
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::from(output.try_clone().unwrap()))
        .stderr(Stdio::from(output));
    let status = crate::support::run_bounded(command, b"", limit);
    let mut text = std::fs::read_to_string(&out).unwrap_or_default();
    if status.is_none() {
        text.push_str(&format!("\n(killed after {limit:?})"));
    }
    (status.is_some_and(|s| s.success()), text)
}

/// openapi-spec-validator: the served document is valid OpenAPI 3.1.
#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let Some(validator) = env::required(
        "TEST_OPENAPI_SPEC_VALIDATOR",
        "openapi::the_document_is_valid_openapi_3_1",
    ) else {
        return;
    };
    let s = launch().start();
    let dir = tempfile::tempdir().unwrap();
    let file = served_document(&s, dir.path()).await;
    let file = file.to_str().unwrap();
    let (ok, output) = run_tool(
        &validator,
        &["--schema", "3.1", "--validation-errors", "all", file],
        dir.path(),
        Duration::from_secs(60),
    );
    assert!(ok, "openapi-spec-validator refused /openapi.json:\n{output}");
}

/// schemathesis: generated requests, valid and invalid, against the real
/// server; every answer must be what the document says (statuses, media
/// types, schemas, headers), schema-valid requests accepted and invalid
/// ones refused. The exceptions, each explained, are in
/// tests/schemathesis.toml.
#[tokio::test]
async fn schemathesis_finds_the_server_as_documented() {
    let Some(schemathesis) = env::required(
        "TEST_SCHEMATHESIS",
        "openapi::schemathesis_finds_the_server_as_documented",
    ) else {
        return;
    };
    let s = launch().start();
    let dir = tempfile::tempdir().unwrap();
    let file = served_document(&s, dir.path()).await;
    let auth = format!("Authorization: Bearer {}", s.key);
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    #[rustfmt::skip]
    let args = [
        "--config-file", config,
        "--no-color",
        "run", file.to_str().unwrap(),
        "--url", &s.base,
        "--header", &auth,
        // The JSON API and the operations endpoints; the portal is
        // browser-driven (cookies, CSRF) and has its own tests.
        "--include-path-regex", r"^/(v1/|healthz$|readyz$|metrics$|openapi\.json$)",
        "--checks", "all",
        "--max-examples", "100",
        // How long fuzzing runs (about 1,800 cases): the test's time budget.
        "--max-time", "60",
        "--continue-on-failure",
        "--seed", "1",
        "--generation-database", "none",
        "--workers", "1",
        "--request-timeout", "5",
        "--output-truncate", "false",
    ];
    let (ok, output) = run_tool(&schemathesis, &args, dir.path(), Duration::from_secs(150));
    assert!(ok, "schemathesis found the server other than documented:\n{output}");
}

/// Without the tools: unique operation ids, every `/v1` failure as
/// problem+json, and session ids and subjects as strict as the server.
#[tokio::test]
async fn operations_are_unique_and_their_failures_and_ids_are_declared() {
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
    let resolve = |response: &Value| -> Value {
        match response["$ref"].as_str() {
            Some(name) => doc["components"]["responses"][name.rsplit('/').next().unwrap()].clone(),
            None => response.clone(),
        }
    };
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} used twice");
            let v1 = path.starts_with("/v1/");
            // `/v1` inherits the document's `api_key`; the rest is public.
            let public = op["security"] == serde_json::json!([]);
            assert_eq!(public, !v1, "{method} {path} security");
            let json_body = op["requestBody"]["content"]["application/json"].is_object();
            let mut needed = vec!["431", "503"];
            if v1 {
                needed.extend(["400", "401", "500"]);
            }
            if json_body {
                needed.extend(["413", "415"]);
            }
            for status in needed {
                let response = resolve(&op["responses"][status]);
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                let response = resolve(response);
                assert!(
                    response["content"].get("application/json").is_none() || status.starts_with('2'),
                    "{method} {path} {status} is documented as application/json"
                );
            }
            for param in op["parameters"].as_array().into_iter().flatten() {
                let expected = match param["name"].as_str().unwrap() {
                    "id" if path.starts_with("/v1/admin/keys/") => "^[A-Za-z0-9_-]{1,32}$",
                    "id" | "except" | "session_id" => sessiond_wire::SESSION_ID_PATTERN,
                    "subject" | "username" => sessiond_wire::SUBJECT_PATTERN,
                    _ => continue,
                };
                assert_eq!(
                    param["schema"]["pattern"], expected,
                    "{method} {path} {}",
                    param["name"]
                );
            }
        }
    }
    // utoipa takes a pattern only as a literal, so each body schema with a
    // subject repeats it: every copy must be the one the server enforces.
    let mut subjects = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let subject = &schema["properties"]["subject"];
        if subject["pattern"].is_string() {
            subjects += 1;
            assert_eq!(subject["pattern"], sessiond_wire::SUBJECT_PATTERN, "{name}.subject");
        }
    }
    assert!(subjects >= 2, "CreateRequest and LoginRequest name a subject");
    assert_eq!(doc["servers"][0]["url"], "/");
    assert_eq!(doc["security"], serde_json::json!([{"api_key": []}]));
}
