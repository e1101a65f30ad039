//! The shop example in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/browser/shop.test.mjs`) against
//! `target/<profile>/examples/shop`, which this test starts on
//! `127.0.0.1:0` and stops. A visitor's cart before sign-in, kept by
//! signing in (new cookie, the old one dead), gone at sign-out; a crawler's
//! page reads start no session.
//!
//! Needs `TEST_CHROMIUM` and `TEST_BROWSER_DIR` (set by `scripts/test`
//! through `scripts/servers/chromium.sh`); without them the test says it is
//! skipped, and with `CI=true` it fails. The example must be built (`cargo
//! test --all-targets`, as `scripts/test` runs, builds it); this test never
//! builds it itself. The run's log and failure screenshots go to
//! `<target>/shop-browser-artifacts`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sessiond_testkit::env::required;

/// The node script bounds itself at 60 s; this is the backstop.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// Kills the child when dropped, so a failing test leaves no server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/<profile>`: this test binary lives in its `deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Starts the shop on a free loopback port; answers it and its base URL.
fn start_shop(bin: &Path) -> (Running, String) {
    let mut child = Command::new(bin)
        .env("SHOP_ADDR", "127.0.0.1:0")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
    let stdout = child.stdout.take().unwrap();
    let shop = Running(child);
    let (sender, receiver) = mpsc::channel();
    // Reads the whole output (a full pipe would block the server's logging).
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("shop listening on ") {
                let _ = sender.send(url.trim().to_owned());
            }
        }
    });
    let base = receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("the shop example did not say where it listens within 20 s");
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    (shop, base)
}

#[test]
fn the_shop_in_chromium() {
    let Some(chromium) = required("TEST_CHROMIUM", "the browser tests") else {
        return;
    };
    let Some(browser_dir) = required("TEST_BROWSER_DIR", "the browser tests") else {
        return;
    };
    let script = Path::new(&browser_dir).join("shop.test.mjs");
    assert!(
        Path::new(&browser_dir).join("node_modules/playwright-core").is_dir(),
        "{browser_dir}/node_modules has no playwright-core: run `npm ci` there (scripts/test does)"
    );
    let bin = profile_dir().join("examples").join("shop");
    assert!(
        bin.is_file(),
        "{} is missing: build the example (`cargo test --all-targets` or `cargo build -p sessiond-http --example shop`)",
        bin.display()
    );
    let (_shop, base) = start_shop(&bin);

    let artifacts = profile_dir().join("shop-browser-artifacts");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let log_path = artifacts.join("browser.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(&browser_dir)
        .env("BASE_URL", &base)
        .env("ARTIFACTS_DIR", &artifacts)
        .env("TEST_CHROMIUM", &chromium)
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
            assert!(output.contains("2 passed, 0 failed"), "{output}");
        }
        Some(status) => panic!(
            "the shop browser tests failed ({status}); artifacts in {}:\n{output}",
            artifacts.display()
        ),
        None => panic!(
            "the shop browser tests ran over {RUN_LIMIT:?} and were killed; artifacts in {}:\n{output}",
            artifacts.display()
        ),
    }
}
