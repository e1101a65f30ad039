//! kill -9 at random moments loses no acknowledged write.
//!
//! The child is this same test binary, re-run with `CRASH_CHILD_DIR` set so
//! that only [`crash_child_writes_until_killed`] does anything: it writes as
//! fast as it can from many tasks and prints a line for each write only
//! after the store acknowledged it. The parent kills it with SIGKILL at a
//! random moment, reopens the store and checks every acknowledged write.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use sessiond_core::{Audit, Revocation, RevokeReason, SessionId, SessionStore, SubjectLimit};
use sessiond_store_embedded::{EmbeddedStore, OpenError};
use sessiond_testkit::conformance::{NOW, sample};

const CHILD_ENV: &str = "CRASH_CHILD_DIR";
const ROUNDS: usize = 6;
const WRITERS: usize = 32;

fn revocation() -> Revocation {
    Revocation {
        at: NOW,
        reason: RevokeReason::Logout,
    }
}

/// The child's body; a no-op in a normal test run.
#[test]
fn crash_child_writes_until_killed() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(EmbeddedStore::open(&dir).unwrap());
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let s = sample("crash", &format!("user-{writer}"), NOW);
                    store
                        .insert(&s, SubjectLimit::Unlimited, NOW, revocation(), &Audit::NONE)
                        .await
                        .unwrap();
                    ack("INS", &s.id);
                    if n % 4 == 0 {
                        store.revoke(&s.id, revocation(), &Audit::NONE).await.unwrap();
                        ack("REV", &s.id);
                    }
                    // A touch is not a durable write: no ack, but it must
                    // not disturb the records or the indexes.
                    let later = NOW + Duration::from_secs(60);
                    let _ = store
                        .touch(&s.id, later, later + Duration::from_secs(1800), &s.client)
                        .await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// One line per acknowledged write, flushed at once: the parent may kill
/// us right after.
fn ack(what: &str, id: &SessionId) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{what} {id}").unwrap();
    out.flush().unwrap();
}

#[derive(Default)]
struct Acked {
    inserted: Vec<SessionId>,
    revoked: Vec<SessionId>,
}

fn random_below(bound: u64) -> u64 {
    RandomState::new().build_hasher().finish() % bound
}

/// Runs one child until a random moment after its first ack; returns what
/// it acknowledged before it died.
fn run_and_kill(dir: &Path) -> Acked {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::crash_child_writes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // A line cut by the kill has no newline and is not an ack.
        while stdout.read_line(&mut line).unwrap_or(0) > 0 && line.ends_with('\n') {
            if lines.send(line.trim_end().to_owned()).is_err() {
                break;
            }
            line.clear();
        }
    });
    let mut lines = Vec::new();
    // Wait for the first ack: the store is open and writing from then on.
    while let Ok(line) = received.recv_timeout(Duration::from_secs(60)) {
        let started = parse(&line).is_some();
        lines.push(line);
        if started {
            break;
        }
    }
    // While the child runs, a second opener is refused at once.
    assert!(matches!(EmbeddedStore::open(dir), Err(OpenError::InUse { .. })));
    std::thread::sleep(Duration::from_millis(random_below(1500)));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap();
    let mut acked = Acked::default();
    for line in lines.into_iter().chain(received.try_iter()) {
        match parse(&line) {
            Some(("INS", id)) => acked.inserted.push(id),
            Some(("REV", id)) => acked.revoked.push(id),
            _ => {}
        }
    }
    acked
}

/// The ack at the end of a line (the harness may print before it).
fn parse(line: &str) -> Option<(&str, SessionId)> {
    let mut words = line.split_whitespace().rev();
    let id = SessionId::parse(words.next()?)?;
    let what = words.next()?;
    Some((what, id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut inserted, mut revoked) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let acked = run_and_kill(dir.path());
        assert!(
            !acked.inserted.is_empty(),
            "round {round}: the child acknowledged nothing"
        );
        inserted.extend(acked.inserted);
        revoked.extend(acked.revoked);

        let store = EmbeddedStore::open(dir.path()).unwrap();
        let report = store.check().unwrap();
        assert!(report.is_consistent(), "round {round}: {:?}", report.problems);
        for id in &inserted {
            let session = store.get_by_id(id).await.unwrap();
            let session = session.unwrap_or_else(|| panic!("round {round}: acknowledged {id} was lost"));
            let by_token = store.get_by_token(&session.token_hash).await.unwrap();
            assert_eq!(by_token.as_deref(), Some(&*session));
        }
        for id in &revoked {
            let session = store.get_by_id(id).await.unwrap().unwrap();
            assert!(
                session.revoked.is_some(),
                "round {round}: acknowledged revoke of {id} was lost"
            );
        }
        eprintln!(
            "round {round}: {} sessions in store, {} acknowledged inserts and {} revokes so far",
            report.sessions,
            inserted.len(),
            revoked.len()
        );
        store.close().unwrap();
    }
}
