//! The public edge under slow clients (issue 12, finding 1): anonymous
//! connections that send their request heads or bodies a byte at a time
//! must neither take the API's capacity nor keep their sockets.
//!
//! The review's reproduction: 1,100 `POST /login` whose bodies never finish
//! made every `/v1/sessions/verify` and `/healthz` answer 503 `overloaded`
//! (one budget of 1,024 for everything), and 300 half-sent heads held their
//! sockets for 45 s and more (no header-read timeout).

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::{add_user, launch};

const STORE: &str = "embedded:sessiond-data";
/// More slow bodies than the old single budget (1,024) had room for.
const SLOW_BODIES: usize = 1_100;
const SLOW_HEADS: usize = 400;
/// Longer than the default header- and body-read timeouts (5 s each).
const ATTACK: Duration = Duration::from_secs(8);

async fn connect(addr: SocketAddr, first: &[u8]) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(first).await.ok()?;
    Some(stream)
}

/// What the server did with an attacking connection by now: the status
/// line it answered, `closed` if it closed the connection without one, or
/// `open` if it is still waiting for more.
async fn fate(stream: &mut TcpStream) -> String {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
        Err(_) => "open".to_owned(),
        Ok(Ok(0) | Err(_)) => "closed".to_owned(),
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_portal_clients_take_neither_verify_nor_health_and_are_cut_off() {
    // 1,500 attacking sockets and their peers, in this process.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= 4_000,
        "this test needs 4,000 open files; the hard limit is {limit}"
    );

    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), STORE, "alice", "correct horse battery");
    let server = launch().dir(dir).store(STORE).args(&["--dev"]).start();
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let (token, _) = server.login("alice").await;
    let verify = serde_json::json!({ "token": token });

    // A browser's form post whose body will never be finished, from the
    // very address the legitimate API caller uses.
    let body_head = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nSec-Fetch-Site: same-origin\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=al"
    );
    let mut bodies = Vec::new();
    for _ in 0..SLOW_BODIES {
        bodies.extend(connect(addr, body_head.as_bytes()).await);
    }
    let mut heads = Vec::new();
    for _ in 0..SLOW_HEADS {
        heads.extend(connect(addr, format!("POST /login HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).await);
    }
    assert_eq!(
        bodies.len() + heads.len(),
        SLOW_BODIES + SLOW_HEADS,
        "every attacker connected"
    );
    let attack_started = Instant::now();

    let mut calls = 0;
    while attack_started.elapsed() < ATTACK {
        // A byte a connection every round: no idle timeout would fire.
        for stream in bodies.iter_mut() {
            let _ = stream.write_all(b"i").await;
        }
        for stream in heads.iter_mut() {
            let _ = stream.write_all(b"X").await;
        }
        let response = server.post("/v1/sessions/verify", verify.clone()).await;
        assert_eq!(response.status(), StatusCode::OK, "verify during the attack");
        let health = server.client.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK, "healthz during the attack");
        let ready = server.client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK, "readyz during the attack");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(calls >= 10, "only {calls} rounds of calls in {ATTACK:?}");

    // The slow heads were closed (header-read timeout); the slow bodies
    // were answered: at once with 429 beyond the per-address share, or
    // with 408 when their body deadline passed.
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for stream in heads.iter_mut() {
        *seen.entry(format!("head: {}", fate(stream).await)).or_default() += 1;
    }
    for stream in bodies.iter_mut() {
        *seen.entry(format!("body: {}", fate(stream).await)).or_default() += 1;
    }
    let count = |what: &str| seen.get(what).copied().unwrap_or(0);
    assert_eq!(count("head: closed"), SLOW_HEADS, "{seen:?}");
    let timed_out = count("body: HTTP/1.1 408 Request Timeout");
    let refused = count("body: HTTP/1.1 429 Too Many Requests");
    assert_eq!(timed_out + refused, SLOW_BODIES, "{seen:?}");
    // The per-address share (16 by default) was admitted and held to its
    // deadline; everything beyond it was refused.
    assert!((16..=64).contains(&timed_out), "{seen:?}");
}
