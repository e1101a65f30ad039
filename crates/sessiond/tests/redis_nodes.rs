//! Several sessiond nodes over one Redis act as one: revocation is seen at
//! once everywhere, limits and compare-and-set hold across nodes, and when
//! Redis goes away every answer is 503 or correct, never a wrong "valid",
//! and nothing acknowledged is lost when it comes back.
//!
//! The server comes from `TEST_REDIS_URL` (scripts/test starts one); the
//! fault test starts its own `redis-server` so it can kill it. Without them
//! a developer's run skips with a note and CI fails.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_problem, launch};

mod fault;

pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `TEST_REDIS_URL`, or `None` (skip) outside CI; a failure in CI.
pub(crate) fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if in_ci() => panic!("TEST_REDIS_URL is not set: run scripts/test"),
        _ => {
            eprintln!("skipped: TEST_REDIS_URL is not set: run scripts/test to test against a real Redis");
            None
        }
    }
}

/// A key prefix no other test uses.
fn unique_prefix() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sd-nodes-{hex}:")
}

/// The store URL of an isolated keyspace on `server`.
pub(crate) fn store_url(server: &str) -> String {
    let sep = if server.contains('?') { '&' } else { '?' };
    format!("{server}{sep}prefix={}&timeout_ms=1000", unique_prefix())
}

/// A node over `store`: its own directory and API key.
pub(crate) fn node(store: &str, env: &[(&str, &str)]) -> TestServer {
    launch().store(store).env(env).start()
}

pub(crate) async fn verify(node: &TestServer, token: &str) -> reqwest::Response {
    node.post("/v1/sessions/verify", json!({ "token": token })).await
}

#[tokio::test]
async fn create_on_one_verify_on_another_revoke_on_a_third() {
    let Some(server) = redis_url() else { return };
    let store = store_url(&server);
    let nodes = [node(&store, &[]), node(&store, &[]), node(&store, &[])];

    let (token, session) = nodes[0].login("alice").await;
    let id = session["id"].as_str().unwrap();
    let verified: Value = verify(&nodes[1], &token).await.json().await.unwrap();
    assert_eq!(verified["session"]["id"], id);

    let revoked = nodes[2].post("/v1/sessions/revoke", json!({ "token": token })).await;
    assert_eq!(revoked.status(), 204);
    for n in &nodes {
        assert_problem(verify(n, &token).await, 401, "invalid_token").await;
    }

    // Rotation on one node kills the old token on every node.
    let (old, _) = nodes[1].login("bob").await;
    let rotated: Value = nodes[2]
        .post("/v1/sessions/rotate", json!({ "token": old }))
        .await
        .json()
        .await
        .unwrap();
    let new = rotated["token"].as_str().unwrap();
    assert_problem(verify(&nodes[0], &old).await, 401, "invalid_token").await;
    assert_eq!(verify(&nodes[0], new).await.status(), 200);

    // "Sign out everywhere else" on one node, seen by the others.
    let (keep, kept) = nodes[0].login("carol").await;
    let (other, _) = nodes[1].login("carol").await;
    let kept_id = kept["id"].as_str().unwrap();
    let answer: Value = nodes[2]
        .req(Method::DELETE, &format!("/v1/subjects/carol/sessions?except={kept_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["revoked"], 1);
    assert_problem(verify(&nodes[0], &other).await, 401, "invalid_token").await;
    assert_eq!(verify(&nodes[1], &keep).await.status(), 200);
}

#[tokio::test]
async fn a_subjects_limit_holds_when_logins_race_across_nodes() {
    let Some(server) = redis_url() else { return };
    let store = store_url(&server);
    let policy = [("SESSIOND_POLICY_MAX_SESSIONS_PER_SUBJECT", "3")];
    let nodes = [node(&store, &policy), node(&store, &policy), node(&store, &policy)];

    let mut logins = Vec::new();
    for i in 0..24 {
        let n = &nodes[i % nodes.len()];
        let request = n.req(Method::POST, "/v1/sessions").json(&json!({ "subject": "dave" }));
        logins.push(tokio::spawn(async move { request.send().await.unwrap().status() }));
    }
    let mut created = 0;
    for login in logins {
        match login.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("login answered {other}"),
        }
    }
    assert_eq!(created, 3);
    let listed: Value = nodes[1]
        .req(Method::GET, "/v1/subjects/dave/sessions")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 3);
    let refused = nodes[2].post("/v1/sessions", json!({ "subject": "dave" })).await;
    assert_problem(refused, 409, "session_limit").await;
}

/// One read-modify-write of the counter in a session's data through `node`:
/// `Ok` when it landed, `Err` on a reported conflict.
async fn increment(client: &Client, base: &str, key: &str, id: &str) -> Result<(), ()> {
    let url = format!("{base}/v1/sessions/{id}");
    let current: Value = client
        .get(&url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = current["session"]["version"].as_u64().unwrap();
    let count = current["session"]["data"]["count"].as_u64().unwrap_or(0);
    let response = client
        .patch(&url)
        .bearer_auth(key)
        .header("If-Match", format!("\"{version}\""))
        .json(&json!({ "data": { "count": count + 1 } }))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::OK => Ok(()),
        StatusCode::PRECONDITION_FAILED => {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], "version_conflict");
            Err(())
        }
        other => panic!("PATCH answered {other}"),
    }
}

#[tokio::test]
async fn concurrent_data_updates_across_nodes_lose_nothing() {
    const WRITERS: usize = 6;
    const EACH: u64 = 8;
    let Some(server) = redis_url() else { return };
    let store = store_url(&server);
    let nodes = [node(&store, &[]), node(&store, &[]), node(&store, &[])];
    let (_, session) = nodes[0].login("erin").await;
    let id = session["id"].as_str().unwrap().to_owned();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let n = &nodes[w % nodes.len()];
        let (client, base, key, id) = (n.client.clone(), n.base.clone(), n.key.clone(), id.clone());
        writers.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..EACH {
                // Bounded: each attempt either lands or lost to one that did.
                let mut landed = false;
                for _ in 0..1000 {
                    if increment(&client, &base, &key, &id).await.is_ok() {
                        landed = true;
                        break;
                    }
                    conflicts += 1;
                }
                assert!(landed, "an increment never landed");
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for writer in writers {
        conflicts += writer.await.unwrap();
    }
    eprintln!("{conflicts} conflicts were reported and retried");
    let last: Value = nodes[2]
        .req(Method::GET, &format!("/v1/sessions/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total = WRITERS as u64 * EACH;
    assert_eq!(last["session"]["data"]["count"], total);
    assert_eq!(last["session"]["version"], 1 + total);
}

#[test]
fn an_unreachable_redis_fails_at_start_with_a_clear_message_and_no_password() {
    // Nothing listens on port 1; the password must not reach the message.
    let store = "redis://:hunter2@127.0.0.1:1/0?prefix=x:&timeout_ms=300";
    let stderr = crate::support::serve_must_fail(store);
    assert!(stderr.contains("redis://127.0.0.1:1/0"), "stderr: {stderr}");
    assert!(stderr.contains("does not answer"), "stderr: {stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}
