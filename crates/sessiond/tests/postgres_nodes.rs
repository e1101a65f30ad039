//! Several sessiond nodes over one PostgreSQL acting as one: what one node
//! writes, every other node sees at once, and limits and compare-and-set
//! hold when requests race across nodes. Each test has a schema of its own
//! (`?schema=` in the store URL) on the server `scripts/test` starts.

mod cluster;
mod fault;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_problem, launch};

/// The test server's URL; `None` (after saying so) when it is not set and
/// this is not CI, where a missing server fails the run instead.
pub fn server_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("TEST_POSTGRES_URL is not set: run scripts/test")
        }
        _ => {
            eprintln!("skipped: TEST_POSTGRES_URL is not set (run scripts/test)");
            None
        }
    }
}

/// `url` with a schema no other test uses.
pub fn fresh_schema_url(url: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let suffix: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}schema=sd_test_{suffix}")
}

/// `count` nodes over the same store, each with its own directory and key.
pub fn nodes(store: &str, count: usize, env: &[(&str, &str)]) -> Vec<TestServer> {
    (0..count).map(|_| launch().store(store).env(env).start()).collect()
}

async fn verify(node: &TestServer, token: &str) -> reqwest::Response {
    node.post("/v1/sessions/verify", json!({"token": token})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_on_one_node_verified_on_another_revoked_on_a_third() {
    let Some(url) = server_url() else { return };
    let n = nodes(&fresh_schema_url(&url), 3, &[]);
    let (token, session) = n[0].login("alice").await;

    let verified = verify(&n[1], &token).await;
    assert_eq!(verified.status(), 200);
    let verified: Value = verified.json().await.unwrap();
    assert_eq!(verified["session"]["id"], session["id"]);

    assert_eq!(
        n[2].post("/v1/sessions/revoke", json!({"token": token})).await.status(),
        204
    );
    // No cache anywhere: the very next verify on the first node refuses it.
    assert_problem(verify(&n[0], &token).await, 401, "invalid_token").await;
    assert_problem(verify(&n[1], &token).await, 401, "invalid_token").await;

    // Subject-wide revocation on one node ends the sessions made on others,
    // except the one it was told to keep.
    let (on_first, _) = n[0].login("alice").await;
    let (on_second, kept) = n[1].login("alice").await;
    let (on_third, _) = n[2].login("alice").await;
    let kept = kept["id"].as_str().unwrap();
    let revoked: Value = n[2]
        .req(Method::DELETE, &format!("/v1/subjects/alice/sessions?except={kept}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 2);
    assert_problem(verify(&n[1], &on_first).await, 401, "invalid_token").await;
    assert_problem(verify(&n[0], &on_third).await, 401, "invalid_token").await;
    assert_eq!(verify(&n[0], &on_second).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_limit_holds_when_logins_race_across_nodes() {
    let Some(url) = server_url() else { return };
    let env = [
        ("SESSIOND_POLICY_MAX_SESSIONS_PER_SUBJECT", "3"),
        ("SESSIOND_POLICY_ON_SESSION_LIMIT", "deny"),
    ];
    let n = nodes(&fresh_schema_url(&url), 3, &env);
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (base, key, client) = (n[i % 3].base.clone(), n[i % 3].key.clone(), n[i % 3].client.clone());
        logins.spawn(async move {
            let response = client
                .post(format!("{base}/v1/sessions"))
                .bearer_auth(key)
                .json(&json!({"subject": "bob"}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["code"].as_str().map(str::to_owned))
        });
    }
    let mut created = 0;
    while let Some(answer) = logins.join_next().await {
        match answer.unwrap() {
            (201, _) => created += 1,
            (409, Some(code)) if code == "session_limit" => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(created, 3);
    for node in &n {
        let listed: Value = node
            .req(Method::GET, "/v1/subjects/bob/sessions")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["sessions"].as_array().unwrap().len(), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicting_the_oldest_keeps_the_limit_when_logins_race_across_nodes() {
    let Some(url) = server_url() else { return };
    let env = [
        ("SESSIOND_POLICY_MAX_SESSIONS_PER_SUBJECT", "2"),
        ("SESSIOND_POLICY_ON_SESSION_LIMIT", "evict_oldest"),
    ];
    let n = nodes(&fresh_schema_url(&url), 3, &env);
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..24 {
        let (base, key, client) = (n[i % 3].base.clone(), n[i % 3].key.clone(), n[i % 3].client.clone());
        logins.spawn(async move {
            let response = client
                .post(format!("{base}/v1/sessions"))
                .bearer_auth(key)
                .json(&json!({"subject": "carol"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let body: Value = response.json().await.unwrap();
            body["token"].as_str().unwrap().to_owned()
        });
    }
    let mut tokens = Vec::new();
    while let Some(token) = logins.join_next().await {
        tokens.push(token.unwrap());
    }
    let mut valid = 0;
    for (i, token) in tokens.iter().enumerate() {
        match verify(&n[i % 3], token).await.status().as_u16() {
            200 => valid += 1,
            401 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(valid, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_data_updates_across_nodes_lose_nothing() {
    let Some(url) = server_url() else { return };
    let n = nodes(&fresh_schema_url(&url), 3, &[]);
    let (_, session) = n[0].login("dave").await;
    let id = session["id"].as_str().unwrap().to_owned();
    let start_version = session["version"].as_u64().unwrap();
    const WRITERS: usize = 6;
    const EACH: usize = 5;

    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let node = &n[w % 3];
        let (base, key, client, id) = (node.base.clone(), node.key.clone(), node.client.clone(), id.clone());
        writers.spawn(async move {
            let mut conflicts = 0usize;
            for item in 0..EACH {
                // Read, add one entry, write back conditionally; a 412 means
                // someone else won the race: read again and retry (bounded).
                let mut written = false;
                for _attempt in 0..200 {
                    let read: Value = client
                        .get(format!("{base}/v1/sessions/{id}"))
                        .bearer_auth(&key)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let version = read["session"]["version"].as_u64().unwrap();
                    let mut data = read["session"]["data"].as_object().cloned().unwrap_or_default();
                    data.insert(format!("w{w}-{item}"), json!(true));
                    let response = client
                        .patch(format!("{base}/v1/sessions/{id}"))
                        .bearer_auth(&key)
                        .header("If-Match", format!("\"{version}\""))
                        .json(&json!({"data": data}))
                        .send()
                        .await
                        .unwrap();
                    match response.status().as_u16() {
                        200 => {
                            written = true;
                            break;
                        }
                        412 => {
                            let body: Value = response.json().await.unwrap();
                            assert_eq!(body["code"], "version_conflict");
                            conflicts += 1;
                        }
                        other => panic!("unexpected status {other}"),
                    }
                }
                assert!(written, "writer {w} never got item {item} in");
            }
            conflicts
        });
    }
    let mut conflicts = 0;
    while let Some(reported) = writers.join_next().await {
        conflicts += reported.unwrap();
    }
    eprintln!("{conflicts} conflicts reported and retried");

    let read: Value = n[1]
        .req(Method::GET, &format!("/v1/sessions/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: BTreeSet<String> = read["session"]["data"].as_object().unwrap().keys().cloned().collect();
    let expected: BTreeSet<String> = (0..WRITERS)
        .flat_map(|w| (0..EACH).map(move |i| format!("w{w}-{i}")))
        .collect();
    assert_eq!(keys, expected);
    let writes = u64::try_from(WRITERS * EACH).unwrap();
    assert_eq!(read["session"]["version"].as_u64().unwrap(), start_version + writes);
}

#[test]
fn an_unreachable_postgres_fails_at_start_with_its_location_and_no_password() {
    // Nothing listens on port 1; the password must not reach the message.
    let store = "postgres://sessiond:hunter2@127.0.0.1:1/app?schema=s1&connect_timeout=2";
    let stderr = crate::support::serve_must_fail(store);
    assert!(
        stderr.contains("postgres://127.0.0.1:1/app (schema s1)"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("cannot connect to PostgreSQL"), "stderr: {stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}
