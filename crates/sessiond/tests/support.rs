//! Starts the real `sessiond` binary on 127.0.0.1:0 in a temporary
//! directory and talks to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, Method, Response};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

/// A running server; killed on drop.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub key: String,
    pub client: Client,
    child: Child,
}

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

/// The value of an environment variable naming a tool a test needs
/// (`TEST_CHROMIUM`, `TEST_NGINX_BIN`, …), which `scripts/test` sets. Unset:
/// `None` after a note on stderr, so the test returns early; with
/// `CI=true` the test fails instead.
pub fn tool_or_skip(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set and CI=true: {test} cannot run (scripts/test sets it)")
        }
        _ => {
            eprintln!("SKIPPED {test}: {var} is not set (scripts/test sets it)");
            None
        }
    }
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
    let out = sessiond(dir, &["keys", "create", "--tenant", tenant, "--store", store], &[]);
    assert!(
        out.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(key.starts_with("sdk_"), "last line is not a key: {stdout}");
    key
}

impl TestServer {
    /// A server on `store` with extra environment (e.g. policy overrides).
    pub fn start_with(store: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, store, env)
    }

    /// A server on a fresh memory store.
    pub fn start() -> Self {
        Self::start_with("memory:", &[])
    }

    /// A server in an existing directory (restarts).
    pub fn start_in(dir: tempfile::TempDir, store: &str, env: &[(&str, &str)]) -> Self {
        Self::start_in_with_args(dir, store, env, &[])
    }

    /// A server in an existing directory with extra `serve` arguments
    /// (e.g. `--dev`).
    pub fn start_in_with_args(dir: tempfile::TempDir, store: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        let key = create_key(dir.path(), "default", store);
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", store])
            .args(args)
            .current_dir(dir.path())
            .env("SESSIOND_SERVER_DATA_DIR", dir.path().join("sessiond-data"))
            .env("SESSIOND_LOG_LEVEL", "warn")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn sessiond");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("sessiond exited before listening")
                .expect("read stdout");
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let client = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        Self {
            dir,
            base: format!("http://{addr}"),
            key,
            client,
            child,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("sessiond-data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with this server's API key.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(&self.key)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.req(Method::POST, path).json(&body).send().await.unwrap()
    }

    /// Creates a session for `subject`; returns (token, session).
    pub async fn login(&self, subject: &str) -> (String, Value) {
        let response = self.post("/v1/sessions", serde_json::json!({"subject": subject})).await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (body["token"].as_str().unwrap().to_owned(), body["session"].clone())
    }

    /// Stops the server with SIGTERM and waits; returns the directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sessiond serve --store STORE`, which must exit with an error
/// within 10 s; returns its stderr. A server that started anyway is killed
/// and the test fails.
pub fn serve_must_fail(store: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", store])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
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
