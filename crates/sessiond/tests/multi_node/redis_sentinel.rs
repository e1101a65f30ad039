//! Redis Sentinel: the primary is killed (SIGKILL) under load. Meanwhile
//! every answer is correct or 503 (never "valid" for a revoked token, never
//! "unknown" for an acknowledged session); the nodes find the promoted
//! replica by themselves; every write acknowledged before or during the
//! fault (each waited for one replica with `WAIT`) is still there.
//!
//! The sentinel set is the one scripts/test starts (`start_redis_sentinel`
//! in scripts/servers/redis.sh): its primary can be killed once, so a second
//! run needs a fresh set (run scripts/test again).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sessiond_testkit::env::required;
use sessiond_testkit::server::Api;

use super::{Engine, nodes, readyz, wait_for};
use crate::support::TestServer;

/// The reply lines of one inline command to a Redis or Sentinel on
/// loopback (the test's own tiny client: enough for ROLE and one SENTINEL
/// query). `None` if nothing answers.
fn ask(port: u16, command: &str, lines: usize) -> Option<Vec<String>> {
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

/// The port of the master the sentinel on `sentinel` names.
fn master_port(sentinel: u16) -> Option<u16> {
    let reply = ask(sentinel, "SENTINEL get-master-addr-by-name sessiond-test", 5)?;
    reply.get(4)?.parse().ok()
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

/// Logins on one node, each verified on the other, every third revoked
/// there and then verified again, until told to stop (at most `rounds`).
/// Every answer must be correct or 503.
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
        let (status, body) = other.json(Method::POST, "/v1/sessions/verify", verify.clone()).await;
        match status {
            StatusCode::OK => assert_eq!(body["session"]["id"], id.as_str()),
            StatusCode::SERVICE_UNAVAILABLE => {
                log.unavailable.fetch_add(1, Ordering::SeqCst);
            }
            other => panic!("an acknowledged session answered {other}"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_fails_over_under_load_and_loses_nothing_acknowledged() {
    let what = "the Redis Sentinel failover test";
    let Some(url) = required("TEST_REDIS_SENTINEL_URL", what) else {
        return;
    };
    let Some(pid) = required("TEST_REDIS_SENTINEL_PRIMARY_PID", what) else {
        return;
    };
    let Some(primary) = required("TEST_REDIS_SENTINEL_PRIMARY_PORT", what) else {
        return;
    };
    let primary: u16 = primary.parse().unwrap();
    let sentinel: u16 = url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ask(primary, "ROLE", 3).map(|reply| reply[2].clone()).as_deref(),
        Some("master"),
        "the sentinel set's first primary is gone: a failover test needs a fresh set (run scripts/test)"
    );
    assert_eq!(master_port(sentinel), Some(primary));

    // Every write waits for one replica (the set has two); the command
    // timeout (1 s) bounds each call while the master is gone.
    let store = format!("{}&wait_replicas=1&wait_timeout_ms=500", Engine::Redis.isolated(&url));
    let nodes = nodes(&store, 2, &[]);

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
    let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(killed.success(), "kill -KILL {pid} failed");
    let killed_at = Instant::now();
    let before = log.created();

    // The nodes recover alone: logins are acknowledged again (through the
    // promoted replica, waiting for the other one), within 60 s.
    wait_for("a login after the failover", 1200, async || log.created() > before + 1).await;
    let unavailable_for = killed_at.elapsed();
    wait_for("logins after the failover", 400, async || log.created() >= before + 20).await;
    log.stop.store(true, Ordering::SeqCst);
    running.await.expect("the load saw a wrong answer");
    let new_primary = master_port(sentinel);
    assert!(
        new_primary.is_some_and(|port| port != primary),
        "the sentinels still name {new_primary:?}"
    );
    assert!(
        log.unavailable.load(Ordering::SeqCst) > 0,
        "no answer noticed the primary was gone"
    );
    for n in &nodes {
        assert_eq!(readyz(&n.api()).await, StatusCode::OK);
    }

    // Everything acknowledged, before the fault and under load, is there.
    live.extend(log.live.lock().unwrap().iter().cloned());
    revoked.extend(log.revoked.lock().unwrap().iter().cloned());
    eprintln!(
        "failover: logins answered 503 for {:.1} s after the kill; {} sessions and {} revocations acknowledged under load, {} answers were 503",
        unavailable_for.as_secs_f64(),
        log.created(),
        log.revoked.lock().unwrap().len(),
        log.unavailable.load(Ordering::SeqCst)
    );
    for n in &nodes {
        all_answer_right(n, &live, &revoked).await;
    }
}
