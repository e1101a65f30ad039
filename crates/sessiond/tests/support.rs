//! What this crate's tests share beyond sessiond-testkit: its binary
//! (`CARGO_BIN_EXE_sessiond`) in the shared server harness, its CLI, and
//! the shape of a problem answer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Response;
use serde_json::Value;
pub use sessiond_testkit::server::{Launch, TestServer};

pub const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

/// Runs a sessiond subcommand in `dir` and returns its stdout.
pub fn sessiond(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run sessiond")
}

/// `sessiond users ARGS --store STORE` in `dir`, with `stdin` as its input.
pub fn users_command(dir: &Path, store: &str, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .arg("users")
        .args(args)
        .args(["--store", store])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(sessiond_testkit::server::shared_store_env(store, dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sessiond users");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// `sessiond users add NAME --password-stdin --store STORE` in `dir`.
pub fn add_user(dir: &Path, store: &str, name: &str, password: &str) {
    let out = users_command(dir, store, &["add", name, "--password-stdin"], &format!("{password}\n"));
    assert!(
        out.status.success(),
        "users add {name} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cargo target directory this test binary was built in (the binary
/// under test is `<target>/<profile>/sessiond`).
pub fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("sessiond binary inside a target directory")
        .to_path_buf()
}

/// A free loopback port: the kernel picks one, we release it (a tiny race
/// before the caller binds it, acceptable in tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sessiond keys create` in `dir`: the key on the last line.
pub fn create_key(dir: &Path, tenant: &str, store: &str) -> String {
    sessiond_testkit::server::create_key(Path::new(BIN), dir, tenant, store)
}

/// A server run from this crate's binary (see [`Launch`] for the options).
pub fn launch() -> Launch {
    Launch::new(BIN)
}

/// Runs `sessiond serve --store STORE`, which must exit with an error
/// within 10 s; returns its stderr. A server that started anyway is killed
/// and the test fails.
pub fn serve_must_fail(store: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    serve_must_fail_in(dir.path(), store)
}

/// [`serve_must_fail`] in `dir`.
pub fn serve_must_fail_in(dir: &Path, store: &str) -> String {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", store])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(sessiond_testkit::server::shared_store_env(store, dir))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..200 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("sessiond started over {store}");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "sessiond exited successfully over {store}");
    stderr
}

/// Asserts a problem+json answer with this status and code.
pub async fn assert_problem(response: Response, status: u16, code: &str) {
    assert_eq!(response.status(), status, "status for expected code {code}");
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string() && body["title"].is_string());
}

/// Runs `command` on loopback only (every proxy variable removed), with
/// `stdin` written to it, killed after `limit`: its exit status, `None`
/// when it was killed. Stdout and stderr go where `command` says.
pub fn run_bounded(mut command: Command, stdin: &[u8], limit: Duration) -> Option<std::process::ExitStatus> {
    for proxy in [
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ] {
        command.env_remove(proxy);
    }
    let mut child = command
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()));
    // Small inputs (a token): the pipe takes them without a reader.
    let mut pipe = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut pipe, stdin).unwrap();
    drop(pipe);
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
