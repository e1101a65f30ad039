//! The engine crashes under load: every answer meanwhile is 503 or correct,
//! never a wrong "valid"; the nodes recover by themselves when it is back,
//! and nothing acknowledged before or during the load is lost.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sessiond_testkit::env::required;
use sessiond_testkit::server::Api;

use super::{Engine, nodes, readyz, verify, wait_for};
use crate::support::{TestServer, assert_problem, serve_must_fail};

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
    /// `None` (skip, or a failure in CI) without `TEST_REDIS_SERVER_BIN`.
    fn start() -> Option<Self> {
        let bin = PathBuf::from(required("TEST_REDIS_SERVER_BIN", "the Redis crash test")?);
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
async fn load(nodes: [Api; 2], revoked: String, log: Arc<LoadLog>, rounds: usize) {
    for i in 0..rounds {
        if log.stop.load(Ordering::SeqCst) {
            return;
        }
        let (node, other) = (&nodes[i % 2], &nodes[(i + 1) % 2]);
        let subject = json!({ "subject": format!("load-{}", i % 5) });
        let (status, body) = node.json(Method::POST, "/v1/sessions", Some(subject)).await;
        match status {
            StatusCode::CREATED => {
                let token = body["token"].as_str().unwrap().to_owned();
                let id = body["session"]["id"].as_str().unwrap().to_owned();
                log.acknowledged.lock().unwrap().push((token.clone(), id.clone()));
                let verify = Some(json!({ "token": token }));
                let (status, body) = other.json(Method::POST, "/v1/sessions/verify", verify).await;
                match status {
                    StatusCode::OK => assert_eq!(body["session"]["id"], id.as_str()),
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
        let verify = Some(json!({ "token": revoked }));
        match node.json(Method::POST, "/v1/sessions/verify", verify).await.0 {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                log.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            other => panic!("a revoked token answered {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_load_fails_closed_and_loses_nothing_acknowledged() {
    let Some(mut redis) = PrivateRedis::start() else { return };
    let nodes = nodes(&Engine::Redis.isolated(&redis.url()), 2, &[]);

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
    let handles = [nodes[0].api(), nodes[1].api()];
    let running = tokio::spawn(load(handles, dead[0].clone(), Arc::clone(&log), 5000));
    wait_for("sessions created under load", 400, async || log.acknowledged() >= 10).await;
    redis.kill();
    wait_for("503s under load", 400, async || {
        log.unavailable.load(Ordering::SeqCst) >= 20
    })
    .await;
    let mut saw_unavailable = 0;
    for n in &nodes {
        saw_unavailable += check_answers(n, &live, &dead).await;
        assert_eq!(readyz(&n.api()).await, StatusCode::SERVICE_UNAVAILABLE);
        assert_problem(verify(n, &live[0].0).await, 503, "store_unavailable").await;
    }
    assert!(saw_unavailable > 0, "no answer noticed the store was gone");

    // Back on the same port and files: the nodes recover by themselves
    // (bounded wait) while the load goes on.
    redis.spawn();
    let before_restart = log.acknowledged();
    wait_for("logins after the restart", 400, async || {
        log.acknowledged() >= before_restart + 10
    })
    .await;
    log.stop.store(true, Ordering::SeqCst);
    running.await.expect("the load saw a wrong answer");
    for n in &nodes {
        assert_eq!(readyz(&n.api()).await, StatusCode::OK);
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

#[test]
fn an_unreachable_redis_fails_at_start_with_a_clear_message_and_no_password() {
    // Nothing listens on port 1; the password must not reach the message.
    let store = "redis://:hunter2@127.0.0.1:1/0?prefix=x:&timeout_ms=300";
    let stderr = serve_must_fail(store);
    assert!(stderr.contains("redis://127.0.0.1:1/0"), "stderr: {stderr}");
    assert!(stderr.contains("does not answer"), "stderr: {stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}
