//! Several sessiond nodes over one Redis act as one: revocation is seen at
//! once everywhere, limits and compare-and-set hold across nodes, and when
//! Redis goes away every answer is 503 or correct, never a wrong "valid",
//! and nothing acknowledged is lost when it comes back.
//!
//! The server comes from `TEST_REDIS_URL` (scripts/test starts one); the
//! fault test starts its own `redis-server` so it can kill it. Without them
//! a developer's run skips with a note and CI fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestServer, assert_problem};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `TEST_REDIS_URL`, or `None` (skip) outside CI; a failure in CI.
fn redis_url() -> Option<String> {
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
fn store_url(server: &str) -> String {
    let sep = if server.contains('?') { '&' } else { '?' };
    format!("{server}{sep}prefix={}&timeout_ms=1000", unique_prefix())
}

/// A node over `store`: its own directory and API key.
fn node(store: &str, env: &[(&str, &str)]) -> TestServer {
    TestServer::start_with(store, env)
}

async fn verify(node: &TestServer, token: &str) -> reqwest::Response {
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

/// A `redis-server` of this test's own, which it can kill and restart on
/// the same port and directory. `appendfsync always`: Redis answers a
/// write only after it is on disk, so "acknowledged" means durable and a
/// SIGKILL (a crash, nothing flushed on the way out) must lose nothing.
struct PrivateRedis {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// `None` (skip) when no redis-server is installed outside CI.
    fn start() -> Option<Self> {
        let bin = std::env::var_os("TEST_REDIS_SERVER_BIN")
            .map(PathBuf::from)
            .or_else(|| {
                let out = Command::new("which").arg("redis-server").output().ok()?;
                let path = String::from_utf8(out.stdout).ok()?;
                (!path.trim().is_empty()).then(|| PathBuf::from(path.trim()))
            });
        let Some(bin) = bin else {
            if in_ci() {
                panic!("no redis-server: set TEST_REDIS_SERVER_BIN or run scripts/test");
            }
            eprintln!("skipped: no redis-server installed: run scripts/test");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self {
            bin,
            dir: tempfile::tempdir().unwrap(),
            port,
            child: None,
        };
        redis.spawn();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Bounded wait until it answers PING with PONG (not LOADING).
        for _ in 0..200 {
            if self.pong() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    fn pong(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 5];
        stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG"
    }

    /// SIGKILL: a crash, not a shutdown.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn readyz(node: &TestServer) -> StatusCode {
    node.client.get(node.url("/readyz")).send().await.unwrap().status()
}

/// Verifies every token on `node`: live ones answer 200 with their own
/// session or 503; dead ones 401 or 503; never 200 for a dead one.
/// Returns how many answers were 503.
async fn check_answers(node: &TestServer, live: &[(String, String)], dead: &[String]) -> usize {
    let mut unavailable = 0;
    for (token, id) in live {
        let response = verify(node, token).await;
        match response.status() {
            StatusCode::OK => {
                let body: Value = response.json().await.unwrap();
                assert_eq!(
                    body["session"]["id"],
                    id.as_str(),
                    "a token verified as another session"
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("a live session answered {other}"),
        }
    }
    for token in dead {
        let response = verify(node, token).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("a revoked or unknown token answered {other}"),
        }
    }
    unavailable
}

/// What the load saw: sessions it created (acknowledged with 201) and how
/// many answers were 503.
#[derive(Default)]
struct LoadLog {
    acknowledged: std::sync::Mutex<Vec<(String, String)>>,
    unavailable: AtomicUsize,
    stop: AtomicBool,
}

impl LoadLog {
    fn acknowledged(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }
}

/// Logins on one node, each verified on the other, and a revoked token
/// tried on each, until told to stop (at most `rounds`). Every answer must
/// be correct or 503: a login is 201 or 503; a new session verifies as
/// itself or 503, never 401 (it was acknowledged); the revoked token is 401
/// or 503, never 200.
async fn load(nodes: [(Client, String, String); 2], revoked: String, log: Arc<LoadLog>, rounds: usize) {
    for i in 0..rounds {
        if log.stop.load(Ordering::SeqCst) {
            return;
        }
        let (client, base, key) = &nodes[i % 2];
        let (other_client, other_base, other_key) = &nodes[(i + 1) % 2];
        let login = client
            .post(format!("{base}/v1/sessions"))
            .bearer_auth(key)
            .json(&json!({ "subject": format!("load-{}", i % 5) }))
            .send()
            .await
            .unwrap();
        match login.status() {
            StatusCode::CREATED => {
                let body: Value = login.json().await.unwrap();
                let token = body["token"].as_str().unwrap().to_owned();
                let id = body["session"]["id"].as_str().unwrap().to_owned();
                log.acknowledged.lock().unwrap().push((token.clone(), id.clone()));
                let check = other_client
                    .post(format!("{other_base}/v1/sessions/verify"))
                    .bearer_auth(other_key)
                    .json(&json!({ "token": token }))
                    .send()
                    .await
                    .unwrap();
                match check.status() {
                    StatusCode::OK => {
                        let body: Value = check.json().await.unwrap();
                        assert_eq!(body["session"]["id"], id.as_str());
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        log.unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                    other => panic!("an acknowledged session answered {other}"),
                }
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                log.unavailable.fetch_add(1, Ordering::SeqCst);
                // Do not spin on a dead store.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("a login answered {other}"),
        }
        let dead = client
            .post(format!("{base}/v1/sessions/verify"))
            .bearer_auth(key)
            .json(&json!({ "token": revoked }))
            .send()
            .await
            .unwrap()
            .status();
        match dead {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                log.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            other => panic!("a revoked token answered {other}"),
        }
    }
}

/// Polls `done` every 50 ms, at most `tries` times.
async fn wait_for(what: &str, tries: usize, done: impl Fn() -> bool) {
    for _ in 0..tries {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_load_fails_closed_and_loses_nothing_acknowledged() {
    let Some(mut redis) = PrivateRedis::start() else { return };
    let store = store_url(&redis.url());
    let nodes = [node(&store, &[]), node(&store, &[])];

    // Before the fault: sessions created on both nodes, some revoked
    // (acknowledged with 204), and a token that was never issued.
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for i in 0..12 {
        let (token, session) = nodes[i % 2].login(&format!("user-{}", i % 4)).await;
        let id = session["id"].as_str().unwrap().to_owned();
        if i % 4 == 3 {
            let r = nodes[(i + 1) % 2]
                .post("/v1/sessions/revoke", json!({ "token": token }))
                .await;
            assert_eq!(r.status(), 204);
            dead.push(token);
        } else {
            live.push((token, id));
        }
    }
    dead.push(format!("sd_{}", "A".repeat(43)));
    assert_eq!(check_answers(&nodes[0], &live, &dead).await, 0);

    // Load on both nodes; the crash (SIGKILL) lands in the middle of it.
    let log = Arc::new(LoadLog::default());
    let handles = [0, 1].map(|i| (nodes[i].client.clone(), nodes[i].base.clone(), nodes[i].key.clone()));
    let running = tokio::spawn(load(handles, dead[0].clone(), Arc::clone(&log), 5000));
    wait_for("sessions created under load", 400, || log.acknowledged() >= 10).await;
    redis.kill();
    wait_for("503s under load", 400, || log.unavailable.load(Ordering::SeqCst) >= 20).await;
    let mut saw_unavailable = 0;
    for n in &nodes {
        saw_unavailable += check_answers(n, &live, &dead).await;
        assert_eq!(readyz(n).await, StatusCode::SERVICE_UNAVAILABLE);
        assert_problem(verify(n, &live[0].0).await, 503, "store_unavailable").await;
    }
    assert!(saw_unavailable > 0, "no answer noticed the store was gone");

    // Back on the same port and files: the nodes recover by themselves
    // (bounded wait) while the load goes on.
    redis.spawn();
    let before_restart = log.acknowledged();
    wait_for("logins after the restart", 400, || {
        log.acknowledged() >= before_restart + 10
    })
    .await;
    log.stop.store(true, Ordering::SeqCst);
    running.await.expect("the load saw a wrong answer");
    for n in &nodes {
        assert_eq!(readyz(n).await, StatusCode::OK);
    }

    // Everything acknowledged, before the fault and during the load, is there.
    let acknowledged = log.acknowledged.lock().unwrap().clone();
    eprintln!(
        "{} sessions acknowledged under load, {} answers were 503",
        acknowledged.len(),
        log.unavailable.load(Ordering::SeqCst)
    );
    live.extend(acknowledged);
    for n in &nodes {
        assert_eq!(check_answers(n, &live, &dead).await, 0);
    }
}
