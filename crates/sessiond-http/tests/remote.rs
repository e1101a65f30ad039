//! Remote mode against a real `sessiond serve` process (crates/sessiond),
//! started on 127.0.0.1:0 with a memory store.
//!
//! The binary is taken from `TEST_SESSIOND_BIN` if set; otherwise it is built
//! with the cargo that runs these tests, into this target directory.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use http::StatusCode;
use sessiond_http::{RemoteBackend, SessionLayer};

use crate::support::*;

/// A running `sessiond serve`, killed on drop.
struct Sessiond {
    _dir: tempfile::TempDir,
    base: String,
    key: String,
    child: Child,
}

impl Drop for Sessiond {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sessiond binary: `TEST_SESSIOND_BIN`, or built (once per test run) next
/// to this test binary.
fn sessiond_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(find_or_build).clone()
}

fn find_or_build() -> PathBuf {
    if let Some(bin) = std::env::var_os("TEST_SESSIOND_BIN") {
        return PathBuf::from(bin);
    }
    // target/<profile>/deps/tests-… → target/<profile>/sessiond
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_owned();
    let target_dir = profile_dir.parent().unwrap().to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The same profile directory as this test binary: `debug` is the dev
    // profile, any other directory is named after its profile.
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let status = Command::new(cargo)
        .args(["build", "-p", "sessiond", "--bin", "sessiond", "--profile", &profile])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build for sessiond");
    assert!(status.success(), "building sessiond failed");
    profile_dir.join("sessiond")
}

impl Sessiond {
    fn start() -> Self {
        let bin = sessiond_bin();
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(&bin)
            .args(["keys", "create", "--tenant", "default", "--store", "memory:"])
            .current_dir(dir.path())
            .env_remove("RUST_LOG")
            .output()
            .expect("run sessiond keys create");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_owned();
        let mut child = Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory:"])
            .current_dir(dir.path())
            .env("SESSIOND_LOG_LEVEL", "warn")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sessiond serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("sessiond exited before listening").unwrap();
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            _dir: dir,
            base: format!("http://{addr}"),
            key,
            child,
        }
    }

    fn app(&self) -> TestApp {
        let remote = RemoteBackend::new(&self.base, &self.key).unwrap();
        let layer = SessionLayer::remote(remote).build().unwrap();
        let mut app = TestApp::new();
        app.router = routes().layer(layer);
        app
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mode_against_a_real_sessiond() {
    let mut server = Sessiond::start();
    let app = server.app();

    // Fixation: a planted unknown cookie is not adopted.
    let planted = sessiond_core::Token::generate().unwrap().expose_secret().to_owned();
    let reply = app
        .send(post_req("/login?user=alice&remember=true").cookie(&planted).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let token = reply.session_cookie().unwrap();
    assert_ne!(token, planted);
    let cookie = &reply.set_cookies()[0];
    assert!(
        cookie.contains("; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age="),
        "{cookie}"
    );

    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["subject"], "alice");
    assert_eq!(me.json()["aal"], 1);

    // CSRF and data through PATCH with If-Match.
    let csrf = app.csrf(&token).await;
    let reply = app.send(post_req("/cart").cookie(&token).body("socks").build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");
    for item in ["socks", "hat"] {
        let reply = app
            .send(post_req("/cart").cookie(&token).csrf(&csrf).body(item).build())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let me = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(me.json()["data"]["cart"], serde_json::json!(["socks", "hat"]));

    // Step-up rotates; the old CSRF token no longer works.
    let reply = app.send(post_req("/elevate").cookie(&token).csrf(&csrf).build()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let elevated = reply.session_cookie().unwrap();
    assert_ne!(elevated, token);
    let me = app.send(get_req("/me").cookie(&elevated).build()).await;
    assert_eq!(me.json()["aal"], 2);
    let reply = app.send(post_req("/echo").cookie(&elevated).csrf(&csrf).build()).await;
    reply.assert_problem(StatusCode::FORBIDDEN, "csrf_failed");

    // Logout, then replay.
    let csrf = app.csrf(&elevated).await;
    let reply = app
        .send(post_req("/logout").cookie(&elevated).csrf(&csrf).build())
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.set_cookies()[0].contains("Max-Age=0"));
    let reply = app.send(get_req("/me").cookie(&elevated).build()).await;
    reply.assert_problem(StatusCode::UNAUTHORIZED, "unauthenticated");

    // Fail closed: with sessiond gone, a session read is 503, never "valid".
    let other = app.login("bob", false).await;
    let _ = server.child.kill();
    let _ = server.child.wait();
    let reply = app.send(get_req("/me").cookie(&other).build()).await;
    reply.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
}

#[tokio::test]
async fn a_wrong_api_key_fails_closed() {
    let server = Sessiond::start();
    let remote = RemoteBackend::new(&server.base, "sdk_wrong").unwrap();
    let mut app = TestApp::new();
    app.router = routes().layer(SessionLayer::remote(remote).build().unwrap());
    let reply = app.send(post_req("/login?user=alice").build()).await;
    reply.assert_problem(StatusCode::INTERNAL_SERVER_ERROR, "internal");
    let token = sessiond_core::Token::generate().unwrap().expose_secret().to_owned();
    let reply = app.send(get_req("/me").cookie(&token).build()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", reply.body);
}
