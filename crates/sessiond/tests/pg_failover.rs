//! PostgreSQL fails over under load: a node on a multi-host URL
//! (`target_session_attrs=read-write`) over a primary and its synchronous
//! standby, both started by `scripts/test` (`start_postgres_failover` in
//! scripts/servers/postgres.sh). The primary is stopped the hard way and the
//! standby promoted while verifies and writes keep coming:
//!
//! * every answer meanwhile is correct (200 live, 401 revoked) or 503;
//! * between the stop and the promotion the node answers 503, never from
//!   the standby (which would serve reads that may lag);
//! * the node finds the new primary by itself;
//! * every write acknowledged before or during the event survived
//!   (synchronous replication).
//!
//! The pair serves one run: afterwards its primary is stopped and its
//! standby promoted. The test says so if it finds the pair used.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sessiond_testkit::env::{required, unique_name};

use crate::multi_node::answers::{Known, Tally, assert_unavailable, check, post};
use crate::multi_node::readyz;
use crate::support::{BIN, launch};

/// The pair `scripts/test` started: its URL, data directories and programs.
struct Pair {
    url: String,
    primary: String,
    standby: String,
    bin: PathBuf,
}

impl Pair {
    /// `None` (skip, or a failure in CI) without the variables.
    fn from_env() -> Option<Self> {
        let what = "the PostgreSQL failover test";
        Some(Self {
            url: required("TEST_POSTGRES_FAILOVER_URL", what)?,
            primary: required("TEST_POSTGRES_FAILOVER_PRIMARY_DIR", what)?,
            standby: required("TEST_POSTGRES_FAILOVER_STANDBY_DIR", what)?,
            bin: PathBuf::from(required("TEST_POSTGRES_BIN_DIR", what)?),
        })
    }

    /// `pg_ctl ARGS`, as the `postgres` user when we are root (the server
    /// refuses to run as root, and its files are that user's).
    fn pg_ctl(&self, args: &[&str]) -> Output {
        let pg_ctl = self.bin.join("pg_ctl");
        let output = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(args)
                .output()
        } else {
            Command::new(&pg_ctl).args(args).output()
        };
        output.expect("run pg_ctl")
    }

    fn run(&self, what: &str, args: &[&str]) {
        let out = self.pg_ctl(args);
        assert!(
            out.status.success(),
            "pg_ctl {what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Polls `condition` every 50 ms until `deadline` from now; fails the test
/// if it never holds. Returns when it first held.
async fn within(what: &str, deadline: Duration, mut condition: impl AsyncFnMut() -> bool) -> Instant {
    let end = Instant::now() + deadline;
    loop {
        if condition().await {
            return Instant::now();
        }
        assert!(Instant::now() < end, "gave up after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_promoted_under_load_loses_no_acknowledged_write_and_the_node_follows() {
    let Some(pair) = Pair::from_env() else { return };
    assert!(
        Path::new(&pair.standby).join("standby.signal").exists()
            && pair.pg_ctl(&["-D", &pair.primary, "status"]).status.success(),
        "the failover pair was used already (it serves one run): rerun scripts/test"
    );
    let store = format!("{}&schema={}", pair.url, unique_name("sd_failover_"));
    let server = launch().store(&store).start();
    let node = server.api();

    // Before the event: acknowledged sessions, some revoked, one made up.
    let tokens: Arc<Mutex<Vec<(String, Known)>>> = Arc::default();
    for i in 0..30 {
        let (status, body) = post(&node, "/v1/sessions", json!({"subject": format!("u{i}")})).await;
        assert_eq!(status, 201, "{body}");
        let token = body["token"].as_str().unwrap().to_owned();
        let known = if i % 3 == 0 {
            let (status, body) = post(&node, "/v1/sessions/revoke", json!({"token": token})).await;
            assert_eq!(status, 204, "{body}");
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
    let (live_token, _) = tokens.lock().unwrap()[1].clone();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let written = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for v in 0..2usize {
        let (node, tokens, stop, tally) = (node.clone(), tokens.clone(), stop.clone(), tally.clone());
        tasks.spawn(async move {
            // Bounded: stops when told, or after this many verifies at most.
            for i in 0..200_000usize {
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
        // Logins and logouts keep coming through the event; only what was
        // acknowledged is recorded, so only that is checked afterwards.
        let (node, tokens, stop, written) = (node.clone(), tokens.clone(), stop.clone(), written.clone());
        tasks.spawn(async move {
            for i in 0..20_000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (status, body) = post(&node, "/v1/sessions", json!({"subject": format!("w{i}")})).await;
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
                    let (status, body) = post(&node, "/v1/sessions/revoke", json!({"token": token})).await;
                    match status {
                        204 => tokens.lock().unwrap().push((token, Known::Dead)),
                        // Unknown outcome: neither known live nor known dead.
                        503 => assert_unavailable(&body),
                        other => panic!("revoke answered {other}: {body}"),
                    }
                } else {
                    let id = body["session"]["id"].as_str().unwrap().to_owned();
                    tokens.lock().unwrap().push((token, Known::Live(id)));
                }
                written.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    within(
        "verifies and writes before the event",
        Duration::from_secs(60),
        async || tally.valid.load(Ordering::Relaxed) >= 200 && written.load(Ordering::Relaxed) >= 20,
    )
    .await;

    // The primary dies: every backend at once, nothing flushed on the way.
    let pair = Arc::new(pair);
    let stopping = pair.clone();
    let stopped_at = tokio::task::spawn_blocking(move || {
        stopping.run("stop", &["-D", &stopping.primary, "-m", "immediate", "-w", "stop"]);
        Instant::now()
    })
    .await
    .unwrap();
    // With no writable host the node must refuse, not read the standby.
    within(
        "readyz to fail with the primary gone",
        Duration::from_secs(30),
        async || readyz(&node).await == 503,
    )
    .await;
    let (status, body) = post(&node, "/v1/sessions/verify", json!({"token": live_token})).await;
    assert_eq!(status, 503, "a verify with only the standby up: {body}");
    assert_unavailable(&body);
    let written_before_promotion = written.load(Ordering::Relaxed);

    let promoting = pair.clone();
    let promoted_at = tokio::task::spawn_blocking(move || {
        promoting.run("promote", &["-D", &promoting.standby, "-w", "-t", "60", "promote"]);
        Instant::now()
    })
    .await
    .unwrap();
    let ready_at = within(
        "readyz to recover on the new primary",
        Duration::from_secs(60),
        async || readyz(&node).await == 200,
    )
    .await;
    let valid_at_promotion = tally.valid.load(Ordering::Relaxed);
    within(
        "verifies and writes on the new primary",
        Duration::from_secs(60),
        async || {
            tally.valid.load(Ordering::Relaxed) >= valid_at_promotion + 200
                && written.load(Ordering::Relaxed) >= written_before_promotion + 20
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    let first = tally.first_unavailable.lock().unwrap().unwrap_or(stopped_at);
    let last = tally.last_unavailable.lock().unwrap().unwrap_or(stopped_at);
    // For the README's figures. The first 503 may come before `pg_ctl
    // stop` returns (it waits for the shutdown), hence "from … to".
    eprintln!(
        "failover: {} valid, {} refused, {} unavailable (503 answers from {:?} before to {:?} after \
         the stop returned); standby promoted {:?} after the stop (after the 503 check); readyz 200 \
         {:?} after the promotion; {} writes acknowledged",
        tally.valid.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.unavailable.load(Ordering::Relaxed),
        stopped_at.saturating_duration_since(first),
        last.saturating_duration_since(stopped_at),
        promoted_at - stopped_at,
        ready_at.saturating_duration_since(promoted_at),
        written.load(Ordering::Relaxed),
    );

    // Everything acknowledged, before or during the event, is as it was.
    let known = tokens.lock().unwrap().clone();
    let after = Tally::default();
    for (token, known) in &known {
        let (status, body) = post(&node, "/v1/sessions/verify", json!({"token": token})).await;
        assert_ne!(status, 503, "still unavailable after the failover: {body}");
        check(known, status, &body, &after);
    }
    assert_eq!(
        after.valid.load(Ordering::Relaxed) + after.refused.load(Ordering::Relaxed),
        known.len()
    );
    drop(server);
}

/// A multi-host URL over a primary without a synchronous standby (the
/// plain test server, with a second host that is never reached) makes the
/// node warn at start that a failover could lose acknowledged writes.
#[test]
fn a_primary_without_a_synchronous_standby_is_warned_about() {
    let Some(server) = required("TEST_POSTGRES_URL", "the synchronous replication warning test") else {
        return;
    };
    // postgres://user@host:port/db?… → postgres://user@host:port,127.0.0.1:1/db?…
    let (authority, rest) = server.split_at(server.find("://").unwrap() + 3);
    let slash = rest.find('/').unwrap();
    let store = format!(
        "{authority}{},127.0.0.1:1{}&schema={}",
        &rest[..slash],
        &rest[slash..],
        unique_name("sd_warn_")
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", &store])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .envs(sessiond_testkit::server::shared_store_env(&store, dir.path()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Bounded: the warning comes right after the migrations, before the
    // server listens; give up after 30 s of silence or a minute in all.
    let end = Instant::now() + Duration::from_secs(60);
    let mut warning = None;
    while let Ok(line) = seen.recv_timeout(Duration::from_secs(30)) {
        if line.contains("PostgreSQL may acknowledge writes a failover loses") {
            warning = Some(line);
            break;
        }
        if Instant::now() > end {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let warning = warning.expect("no warning about asynchronous replication");
    assert!(warning.contains("synchronous_standby_names is empty"), "{warning}");
}
