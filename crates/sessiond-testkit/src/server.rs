//! The real `sessiond` binary as a test's server: started on 127.0.0.1:0 in
//! a temporary directory with an API key of its own, driven over HTTP, and
//! killed when the test drops it (also when the test panics).
//!
//! The binary's path is a parameter: inside the sessiond crate it is
//! `env!("CARGO_BIN_EXE_sessiond")`; other crates take it from
//! `TEST_SESSIOND_BIN` (see [`crate::env::required`]), which `scripts/test`
//! sets after building it. No test builds the binary itself.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

/// The data key every sessiond of this test process seals a shared store
/// with, as a key file's text: made once, so nodes over one store agree.
fn shared_data_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| sessiond_core::sealing::Keyring::generate_key_text().expect("randomness for a data key"))
}

/// The environment a `sessiond` command over `store` needs: for a shared
/// store (Redis, PostgreSQL), `[store.encryption] key_files` naming a file
/// in `dir` that holds this process's data key. Nothing for the embedded
/// and memory stores, which need no configuration to seal.
pub fn shared_store_env(store: &str, dir: &Path) -> Vec<(String, String)> {
    if !(store.starts_with("redis") || store.starts_with("postgres")) {
        return Vec::new();
    }
    let file = dir.join("test-data-key");
    if !file.exists() {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .expect("create the test data key file");
        std::io::Write::write_all(&mut out, shared_data_key().as_bytes()).expect("write the test data key");
    }
    vec![(
        "SESSIOND_STORE_ENCRYPTION_KEY_FILES".to_owned(),
        format!("[{:?}]", file.display().to_string()),
    )]
}

/// `sessiond keys create --role admin --tenant TENANT --store STORE` in
/// `dir`: the new key (the last line of its output). Fails the test if the
/// command does. An admin key can call every route of its tenant.
pub fn create_key(bin: &Path, dir: &Path, tenant: &str, store: &str) -> String {
    create_key_with(bin, dir, tenant, store, &shared_store_env(store, dir))
}

/// [`create_key`] with this environment (the server's own, so both see the
/// same configuration).
fn create_key_with(bin: &Path, dir: &Path, tenant: &str, store: &str, env: &[(String, String)]) -> String {
    let out = Command::new(bin)
        .args([
            "keys", "create", "--role", "admin", "--tenant", tenant, "--store", store,
        ])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().cloned())
        .output()
        .expect("run sessiond keys create");
    assert!(
        out.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("keys create prints UTF-8");
    let key = stdout.lines().last().unwrap_or_default().to_owned();
    assert!(key.starts_with("sdk_"), "last line is not a key: {stdout}");
    key
}

/// How to start a [`TestServer`]: which binary, store, environment, extra
/// `serve` arguments and directory. Defaults: a memory store, nothing
/// extra, a fresh temporary directory.
#[must_use = "nothing starts until `start`"]
pub struct Launch {
    bin: PathBuf,
    store: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    dir: Option<tempfile::TempDir>,
}

impl Launch {
    /// A server run from the binary at `bin`.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Self {
            bin: bin.into(),
            store: "memory:".to_owned(),
            env: Vec::new(),
            args: Vec::new(),
            dir: None,
        }
    }

    /// Over this store URL (`--store`).
    pub fn store(mut self, store: &str) -> Self {
        store.clone_into(&mut self.store);
        self
    }

    /// With these extra environment variables (e.g. policy overrides).
    pub fn env(mut self, env: &[(&str, &str)]) -> Self {
        self.env
            .extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// With these extra `serve` arguments (e.g. `--dev`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// In an existing directory (a restart over the same files).
    pub fn dir(mut self, dir: tempfile::TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Starts `sessiond serve` on 127.0.0.1:0 and waits until it says where
    /// it listens, with an admin key for tenant `default`: made with
    /// `sessiond keys create` before the start, or, on a `memory:` store
    /// (which no other process can reach), the first key the server makes
    /// and writes to its data directory.
    pub fn start(self) -> TestServer {
        let dir = match self.dir {
            Some(dir) => dir,
            None => tempfile::tempdir().expect("a temporary directory"),
        };
        let memory = self.store.starts_with("memory:");
        // The test's own [store.encryption] settings replace the shared key.
        let outside = tempfile::tempdir().expect("a temporary directory");
        let mut env = match self
            .env
            .iter()
            .any(|(k, _)| k.starts_with("SESSIOND_STORE_ENCRYPTION_"))
        {
            true => Vec::new(),
            false => shared_store_env(&self.store, outside.path()),
        };
        env.extend(self.env);
        let made = (!memory).then(|| create_key_with(&self.bin, dir.path(), "default", &self.store, &env));
        let mut cmd = Command::new(&self.bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", &self.store])
            .args(&self.args)
            .current_dir(dir.path())
            .env("SESSIOND_SERVER_DATA_DIR", dir.path().join("sessiond-data"))
            .env("SESSIOND_LOG_LEVEL", "warn")
            .env_remove("RUST_LOG")
            .envs(env)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn sessiond serve");
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
        std::thread::spawn(move || lines.for_each(drop));
        let key = made.unwrap_or_else(|| {
            let file = dir.path().join("sessiond-data").join("first-api-key");
            let text = std::fs::read_to_string(&file).expect("the first key's file");
            text.trim().to_owned()
        });
        let client = Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        TestServer {
            dir,
            base: format!("http://{addr}"),
            key,
            client,
            child,
            _outside: outside,
        }
    }
}

/// A running `sessiond serve`; killed on drop.
pub struct TestServer {
    /// Its working directory (config, keys, embedded data).
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An API key of tenant `default`.
    pub key: String,
    /// A client with a 10 s timeout.
    pub client: Client,
    child: Child,
    /// Files the test gives the server from outside its directory (the
    /// shared store's data key), so the directory holds only what the
    /// server writes.
    _outside: tempfile::TempDir,
}

impl TestServer {
    /// Where the server keeps its data (`SESSIOND_SERVER_DATA_DIR`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("sessiond-data")
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A handle on the API that tasks may own (clone it per task).
    pub fn api(&self) -> Api {
        Api {
            base: self.base.clone(),
            key: self.key.clone(),
            client: self.client.clone(),
        }
    }

    /// A request with this server's API key.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(&self.key)
    }

    /// POSTs `body` as JSON with the API key; the raw response.
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.req(Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("the server answers")
    }

    /// The text of a GET of `path` without a key (`/metrics`,
    /// `/openapi.json`).
    pub async fn text(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the server answers")
            .text()
            .await
            .expect("a text body")
    }

    /// [`Api::json`] on this server.
    pub async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        send_json(self.req(method, path), body).await
    }

    /// Creates a session for `subject` (which must answer 201); returns
    /// (token, session).
    pub async fn login(&self, subject: &str) -> (String, Value) {
        let (status, body) = self
            .json(
                Method::POST,
                "/v1/sessions",
                Some(serde_json::json!({ "subject": subject })),
            )
            .await;
        assert_eq!(status, 201, "login of {subject}: {body}");
        let token = body["token"].as_str().expect("a token").to_owned();
        (token, body["session"].clone())
    }

    /// Kills the server with SIGKILL, as a crash would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM and waits (5 s at most, then SIGKILL);
    /// returns its directory for a restart.
    pub fn stop(mut self) -> tempfile::TempDir {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        let empty = tempfile::tempdir().expect("a temporary directory");
        std::mem::replace(&mut self.dir, empty)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a task needs to call one server's API: its address, key and client.
#[derive(Clone, Debug)]
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An API key of tenant `default`.
    pub key: String,
    /// The server's client.
    pub client: Client,
}

impl Api {
    /// A request to `path` with the API key.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
    }

    /// Sends `body` (if any) as JSON to `path` with the API key; returns
    /// the status and the answer parsed as JSON ([`Value::Null`] when
    /// empty). The server must answer, and in JSON.
    pub async fn json(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        send_json(self.req(method, path), body).await
    }
}

/// Sends `request` (with `body` as JSON, if any); returns the status and the
/// answer parsed as JSON ([`Value::Null`] when empty). For requests that
/// need more than [`Api::json`] gives, e.g. an `If-Match` header.
pub async fn send_json(request: RequestBuilder, body: Option<Value>) -> (StatusCode, Value) {
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let bytes = response.bytes().await.expect("read the answer");
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "a {status} answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body)
}
