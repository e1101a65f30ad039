//! The login portal in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/browser/portal.test.mjs`) against the real binary
//! in development mode on an embedded store.
//!
//! Needs `TEST_CHROMIUM` and `TEST_BROWSER_DIR` (set by `scripts/test` through
//! `scripts/servers/chromium.sh`); without them the test says it is skipped,
//! and with `CI=true` it fails. Screenshots (`login.png`, `account.png`, and
//! `failed-*.png` when a scenario fails) and the run's log (`browser.log`) go
//! to `<target>/browser-artifacts`.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sessiond_testkit::env::required;

use crate::support::{TestServer, add_user, launch, target_dir};

const STORE: &str = "embedded:./sessiond-data";
/// The idle server's idle timeout (the script waits past it once).
const IDLE_TIMEOUT_MS: u64 = 4000;
/// The node script bounds itself at 100 s; this is the backstop.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// A server in development mode over a fresh embedded store holding `users`.
fn portal(users: &[(&str, &str)], env: &[(&str, &str)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    for (name, password) in users {
        add_user(dir.path(), STORE, name, password);
    }
    launch().dir(dir).store(STORE).env(env).args(&["--dev"]).start()
}

#[test]
fn the_portal_in_chromium() {
    let Some(chromium) = required("TEST_CHROMIUM", "the browser tests") else {
        return;
    };
    let Some(browser_dir) = required("TEST_BROWSER_DIR", "the browser tests") else {
        return;
    };
    let script = Path::new(&browser_dir).join("portal.test.mjs");
    assert!(
        Path::new(&browser_dir).join("node_modules/playwright-core").is_dir(),
        "{browser_dir}/node_modules has no playwright-core: run `npm ci` there (scripts/test does)"
    );

    let users = [
        ("alice", "alice-Correct-Horse-1"),
        ("bob", "bob-Battery-Staple-2"),
        ("carol", "carol-Tr0ub4dor-and-3"),
        ("dave", "dave-Idle-Hands-4"),
    ];
    let main = portal(&users[..3], &[]);
    let idle_timeout = format!("{IDLE_TIMEOUT_MS}ms");
    let idle = portal(
        &users[3..],
        &[
            ("SESSIOND_POLICY_IDLE_TIMEOUT", &idle_timeout),
            ("SESSIOND_POLICY_TOUCH_INTERVAL", "1s"),
        ],
    );
    let users_json = serde_json::Value::Object(
        users
            .iter()
            .map(|(name, password)| ((*name).to_owned(), (*password).into()))
            .collect(),
    )
    .to_string();

    let artifacts = target_dir().join("browser-artifacts");
    // Stale screenshots of an earlier run must not pass for this one's.
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let log_path = artifacts.join("browser.log");
    let log = File::create(&log_path).unwrap();

    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(&browser_dir)
        .env("BASE_URL", &main.base)
        .env("IDLE_BASE_URL", &idle.base)
        .env("IDLE_TIMEOUT_MS", IDLE_TIMEOUT_MS.to_string())
        .env("TEST_USERS", users_json)
        .env("ARTIFACTS_DIR", &artifacts)
        .env("TEST_CHROMIUM", &chromium)
        // A plain log: no colour codes in browser.log or the panic message.
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run node (Node.js is needed for the browser tests)");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => {
            println!("{output}");
            for shot in ["login.png", "account.png"] {
                assert!(artifacts.join(shot).is_file(), "no {shot} in {}", artifacts.display());
            }
        }
        Some(status) => panic!(
            "the browser tests failed ({status}); artifacts in {}:\n{output}",
            artifacts.display()
        ),
        None => panic!(
            "the browser tests ran over {RUN_LIMIT:?} and were killed; artifacts in {}:\n{output}",
            artifacts.display()
        ),
    }
}
