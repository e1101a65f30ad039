//! A store's primary killed (SIGKILL) under load, for every topology that
//! survives one (Sentinel, Cluster): the load, the checks, the verdict.
//! Meanwhile every answer is correct or 503 (never "valid" for a revoked
//! token, never "unknown" for an acknowledged session); the nodes find the
//! promoted replica by themselves; every write acknowledged before or
//! during the fault (each waited for one replica with `WAIT`) is still
//! there.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sessiond_testkit::server::Api;

use super::{readyz, wait_for};
use crate::support::TestServer;

/// The reply lines of one inline command to a Redis or Sentinel on
/// loopback (the test's own tiny client: enough for ROLE and one SENTINEL
/// query). `None` if nothing answers.
pub(super) fn ask(port: u16, command: &str, lines: usize) -> Option<Vec<String>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut reply = Vec::new();
    for _ in 0..lines {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        reply.push(line.trim_end().to_owned());
    }
    Some(reply)
}

/// The text of a bulk-string reply (`CLUSTER INFO`, `INFO replication`)
/// to one inline command to a Redis on loopback; `None` if nothing answers
/// or the reply is not a bulk string.
pub(super) fn ask_text(port: u16, command: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).ok()?;
    let len: usize = header.trim_end().strip_prefix('$')?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

/// What the load saw.
#[derive(Default)]
struct LoadLog {
    /// Sessions whose creation was acknowledged (201): token, id.
    live: Mutex<Vec<(String, String)>>,
    /// Tokens whose revocation was acknowledged (204).
    revoked: Mutex<Vec<String>>,
    unavailable: AtomicUsize,
    stop: AtomicBool,
}

impl LoadLog {
    fn created(&self) -> usize {
        self.live.lock().unwrap().len()
    }
}

/// Logins on one node, each verified on the other and then on the first
/// (so a node that caches records holds it), every third revoked on the
/// other and then verified again on the first, until told to stop (at
/// most `rounds`). Every answer must be correct or 503.
async fn load(nodes: [Api; 2], log: Arc<LoadLog>, rounds: usize) {
    for i in 0..rounds {
        if log.stop.load(Ordering::SeqCst) {
            return;
        }
        let (node, other) = (&nodes[i % 2], &nodes[(i + 1) % 2]);
        let subject = json!({ "subject": format!("load-{}", i % 5) });
        let (status, body) = node.json(Method::POST, "/v1/sessions", Some(subject)).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            log.unavailable.fetch_add(1, Ordering::SeqCst);
            // Do not spin on a store that is failing over.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(status, StatusCode::CREATED, "a login answered {status}: {body}");
        let token = body["token"].as_str().unwrap().to_owned();
        let id = body["session"]["id"].as_str().unwrap().to_owned();
        let verify = Some(json!({ "token": token }));
        for reader in [other, node] {
            let (status, body) = reader.json(Method::POST, "/v1/sessions/verify", verify.clone()).await;
            match status {
                StatusCode::OK => assert_eq!(body["session"]["id"], id.as_str()),
                StatusCode::SERVICE_UNAVAILABLE => {
                    log.unavailable.fetch_add(1, Ordering::SeqCst);
                }
                other => panic!("an acknowledged session answered {other}"),
            }
        }
        if i % 3 != 0 {
            log.live.lock().unwrap().push((token, id));
            continue;
        }
        let revoke = Some(json!({ "token": token }));
        match other.json(Method::POST, "/v1/sessions/revoke", revoke).await.0 {
            StatusCode::NO_CONTENT => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                // Unknown whether it landed: the session is checked no more.
                log.unavailable.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            other => panic!("a revocation answered {other}"),
        }
        match node.json(Method::POST, "/v1/sessions/verify", verify).await.0 {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                log.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            other => panic!("a revoked token answered {other}"),
        }
        log.revoked.lock().unwrap().push(token);
    }
}

/// Verifies every token on `node`, which must answer (no 503 any more):
/// live ones 200 as their own session, revoked ones 401.
async fn all_answer_right(node: &TestServer, live: &[(String, String)], revoked: &[String]) {
    for (token, id) in live {
        let response = node.post("/v1/sessions/verify", json!({ "token": token })).await;
        assert_eq!(response.status(), StatusCode::OK, "an acknowledged session was lost");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["session"]["id"], id.as_str());
    }
    for token in revoked {
        let response = node.post("/v1/sessions/verify", json!({ "token": token })).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "an acknowledged revocation was lost"
        );
    }
}

/// Kills a primary of the store with `kill` in the middle of a load on
/// `nodes` (two), waits (at most 60 s) until `recovered` says the engine
/// is whole again, and checks everything above. Returns how long that took.
pub(super) async fn kill_under_load(
    nodes: &[TestServer],
    kill: impl FnOnce(),
    recovered: impl AsyncFnMut() -> bool,
) -> Duration {
    // Before the fault: sessions on both nodes, every fourth revoked.
    let mut live = Vec::new();
    let mut revoked = Vec::new();
    for i in 0..12 {
        let (token, session) = nodes[i % 2].login(&format!("user-{}", i % 4)).await;
        if i % 4 == 3 {
            let r = nodes[(i + 1) % 2]
                .post("/v1/sessions/revoke", json!({ "token": token }))
                .await;
            assert_eq!(r.status(), 204);
            revoked.push(token);
        } else {
            live.push((token, session["id"].as_str().unwrap().to_owned()));
        }
    }
    all_answer_right(&nodes[0], &live, &revoked).await;

    // Load on both nodes; the primary is killed in the middle of it.
    let log = Arc::new(LoadLog::default());
    let running = tokio::spawn(load([nodes[0].api(), nodes[1].api()], Arc::clone(&log), 20_000));
    wait_for("sessions created under load", 400, async || log.created() >= 20).await;
    kill();
    let killed_at = Instant::now();
    let before = log.created();

    // The engine recovers (a replica promoted, and what else `recovered`
    // asks), and the nodes with it, alone: logins are acknowledged again.
    wait_for("the engine after the failover", 1200, recovered).await;
    let unavailable_for = killed_at.elapsed();
    let after = log.created();
    wait_for("logins after the failover", 400, async || {
        log.created() >= after.max(before) + 20
    })
    .await;
    log.stop.store(true, Ordering::SeqCst);
    running.await.expect("the load saw a wrong answer");
    assert!(
        log.unavailable.load(Ordering::SeqCst) > 0,
        "no answer noticed the primary was gone"
    );
    for n in nodes {
        assert_eq!(readyz(&n.api()).await, StatusCode::OK);
    }

    // Everything acknowledged, before the fault and under load, is there.
    live.extend(log.live.lock().unwrap().iter().cloned());
    revoked.extend(log.revoked.lock().unwrap().iter().cloned());
    eprintln!(
        "failover: the engine recovered {:.1} s after the kill; {} sessions and {} revocations acknowledged under load, {} answers were 503",
        unavailable_for.as_secs_f64(),
        log.created(),
        log.revoked.lock().unwrap().len(),
        log.unavailable.load(Ordering::SeqCst)
    );
    for n in nodes {
        all_answer_right(n, &live, &revoked).await;
    }
    unavailable_for
}
