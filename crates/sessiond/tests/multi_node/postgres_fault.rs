//! The engine crashes under load: meanwhile every answer is a 503 or
//! correct (never "valid" for a revoked or unknown token), the nodes notice
//! and recover by themselves when it is back, and every session (and every
//! revocation) acknowledged before or during the fault is still there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use sessiond_testkit::server::Api;

use super::answers::{Known, Tally, assert_unavailable, check, post};
use super::cluster::{Cluster, bin_dir};
use super::{nodes, readyz, wait_for};
use crate::support::{TestServer, serve_must_fail};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_crash_under_load_never_yields_a_wrong_valid_and_loses_nothing() {
    let Some(bin) = bin_dir() else { return };
    let cluster = Cluster::start(&bin);
    let servers = nodes(&cluster.url(), 2, &[]);
    let n: Vec<Api> = servers.iter().map(TestServer::api).collect();

    // Before the fault: acknowledged sessions, some revoked, one made up.
    let tokens: Arc<Mutex<Vec<(String, Known)>>> = Arc::default();
    for i in 0..20 {
        let (status, body) = post(&n[i % 2], "/v1/sessions", json!({"subject": format!("u{i}")})).await;
        assert_eq!(status, 201);
        let token = body["token"].as_str().unwrap().to_owned();
        let known = if i % 4 == 0 {
            assert_eq!(
                post(&n[1 - i % 2], "/v1/sessions/revoke", json!({"token": token}))
                    .await
                    .0,
                204
            );
            Known::Dead
        } else {
            Known::Live(body["session"]["id"].as_str().unwrap().to_owned())
        };
        tokens.lock().unwrap().push((token, known));
    }
    tokens
        .lock()
        .unwrap()
        .push((format!("sd_{}", "A".repeat(43)), Known::Dead));

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = tokio::task::JoinSet::new();
    for (v, node) in n.iter().enumerate() {
        let (node, tokens, stop, tally) = (node.clone(), tokens.clone(), stop.clone(), tally.clone());
        tasks.spawn(async move {
            // Bounded: stops when told, or after this many verifies at most.
            for i in 0..50_000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (token, known) = {
                    let tokens = tokens.lock().unwrap();
                    tokens[(i * 7 + v) % tokens.len()].clone()
                };
                let (status, body) = post(&node, "/v1/sessions/verify", json!({"token": token})).await;
                check(&known, status, &body, &tally);
            }
        });
    }
    {
        // Logins and logouts keep coming during the fault; only what was
        // acknowledged is recorded, so only that is checked afterwards.
        let (creator, revoker, tokens, stop) = (n[0].clone(), n[1].clone(), tokens.clone(), stop.clone());
        tasks.spawn(async move {
            for i in 0..5_000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (status, body) = post(&creator, "/v1/sessions", json!({"subject": format!("w{i}")})).await;
                match status {
                    201 => {}
                    503 => {
                        assert_unavailable(&body);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    other => panic!("login answered {other}: {body}"),
                }
                let token = body["token"].as_str().unwrap().to_owned();
                if i % 3 == 0 {
                    let (status, body) = post(&revoker, "/v1/sessions/revoke", json!({"token": token})).await;
                    match status {
                        204 => tokens.lock().unwrap().push((token, Known::Dead)),
                        // Unknown outcome: the token is neither known live nor known dead.
                        503 => assert_unavailable(&body),
                        other => panic!("revoke answered {other}: {body}"),
                    }
                } else {
                    let id = body["session"]["id"].as_str().unwrap().to_owned();
                    tokens.lock().unwrap().push((token, Known::Live(id)));
                }
            }
        });
    }

    wait_for("verifies before the fault", 600, async || {
        tally.valid.load(Ordering::Relaxed) >= 200
    })
    .await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.crash();
        cluster
    })
    .await
    .unwrap();
    for node in &n {
        wait_for("readyz to fail", 600, async || readyz(node).await == 503).await;
    }
    wait_for("503s under load", 600, async || {
        tally.unavailable.load(Ordering::Relaxed) >= 20
    })
    .await;
    let acknowledged_before_restart = tokens.lock().unwrap().len();

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_again();
        cluster
    })
    .await
    .unwrap();
    for node in &n {
        wait_for("readyz to recover", 1200, async || readyz(node).await == 200).await;
    }
    let valid_at_restart = tally.valid.load(Ordering::Relaxed);
    wait_for("verifies after recovery", 1200, async || {
        tally.valid.load(Ordering::Relaxed) >= valid_at_restart + 200
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    eprintln!(
        "during the run: {} valid, {} refused, {} unavailable; {} tokens acknowledged before the restart",
        tally.valid.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
        acknowledged_before_restart
    );

    // Everything acknowledged, before or during the fault, is as it was.
    let known = tokens.lock().unwrap().clone();
    let after = Tally::default();
    for (token, known) in &known {
        for node in &n {
            let (status, body) = post(node, "/v1/sessions/verify", json!({"token": token})).await;
            assert_ne!(status, 503, "still unavailable after recovery: {body}");
            check(known, status, &body, &after);
        }
    }
    drop(servers);
    drop(cluster);
}

#[test]
fn an_unreachable_postgres_fails_at_start_with_its_location_and_no_password() {
    // Nothing listens on port 1; the password must not reach the message.
    let store = "postgres://sessiond:hunter2@127.0.0.1:1/app?schema=s1&connect_timeout=2";
    let stderr = serve_must_fail(store);
    assert!(
        stderr.contains("postgres://127.0.0.1:1/app (schema s1)"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("cannot connect to PostgreSQL"), "stderr: {stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}
