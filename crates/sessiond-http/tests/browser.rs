//! The shop example in a real browser: Debian's Chromium driven by
//! playwright-core (`tests/browser/shop.test.mjs`) against the example's
//! router (`examples/shop.rs`, compiled into this test), which this test
//! serves on `127.0.0.1:0` and stops. A visitor's cart before sign-in, kept
//! by signing in (new cookie, the old one dead), gone at sign-out; a
//! crawler's page reads start no session.
//!
//! Needs `TEST_CHROMIUM` and `TEST_BROWSER_DIR` (set by `scripts/test`
//! through `scripts/servers/chromium.sh`); without them the test says it is
//! skipped, and with `CI=true` it fails. The run's log and failure
//! screenshots go to `<target>/shop-browser-artifacts`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sessiond_testkit::env::required;

/// The example itself, compiled into this test: the router under test is
/// the one `cargo run --example shop` serves.
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/shop.rs"]
mod shop;

/// The node script bounds itself at 60 s; this is the backstop.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// `target/<profile>`: this test binary lives in its `deps`.
fn profile_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Serves the shop on a free loopback port until `runtime` is dropped;
/// answers its base URL.
fn start_shop(runtime: &tokio::runtime::Runtime) -> String {
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = shop::app().unwrap();
    runtime.spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    base
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = start_shop(&runtime);

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
