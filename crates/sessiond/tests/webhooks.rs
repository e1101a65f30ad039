//! Webhooks (issue 16), driven through the real binary: signatures checked
//! by the independent `standardwebhooks` library, retries that a receiver
//! de-duplicates to exactly once, delivery after the node that accepted a
//! revocation is killed, the config refusals, and the admin failures route.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use sessiond::config::Config;

use crate::multi_node::{Engine, wait_for};
use crate::support::launch;

/// A secret of 32 bytes, as `whsec_` + base64.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo=";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HashMap<String, String>,
    body: Bytes,
    answered: u16,
}

/// A receiver on 127.0.0.1:0 that answers 500 to the first `fail_first`
/// requests of each `webhook-id`, then 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
    fail_first: usize,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Self, SocketAddr) {
        let receiver = Self {
            got: Arc::default(),
            fail_first,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, addr)
    }

    fn all(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// The accepted deliveries, de-duplicated on `webhook-id` as a
    /// receiver must: id -> body.
    fn accepted(&self) -> HashMap<String, Value> {
        self.all()
            .into_iter()
            .filter(|d| d.answered == 200)
            .map(|d| {
                (
                    d.headers["webhook-id"].clone(),
                    serde_json::from_slice(&d.body).unwrap(),
                )
            })
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let mut got = receiver.got.lock().unwrap();
    let id = headers.get("webhook-id").cloned().unwrap_or_default();
    let earlier = got.iter().filter(|d| d.headers.get("webhook-id") == Some(&id)).count();
    let answered = if earlier < receiver.fail_first { 500 } else { 200 };
    got.push(Delivery {
        headers,
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

/// A config file in `dir` with one endpoint at `addr`.
fn config_file(dir: &std::path::Path, addr: SocketAddr, extra: &str) -> String {
    let path = dir.join("webhooks.toml");
    let text = format!(
        "[[webhooks]]\nurl = \"http://{addr}/hook\"\nsecret = \"{SECRET}\"\nretry_initial = \"100ms\"\n\
         timeout = \"2s\"\n{extra}"
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Verifies every accepted delivery with the `standardwebhooks` library,
/// and that a tampered body fails (`verify.py`).
fn verify_with_standardwebhooks(deliveries: &[Delivery]) {
    let Some(python) = sessiond_testkit::env::required("TEST_WEBHOOK_PYTHON", "the webhook signature test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (i, d) in deliveries.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:04}.body")), &d.body).unwrap();
        std::fs::write(
            dir.path().join(format!("{i:04}.headers")),
            serde_json::to_vec(&d.headers).unwrap(),
        )
        .unwrap();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhooks/verify.py");
    let out = std::process::Command::new(python)
        .args([script, SECRET])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify.py: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), format!("verified {}", deliveries.len()));
}

/// A receiver that fails three times per event gets each event exactly
/// once after de-duplication, after at least four attempts with one
/// `webhook-id`; every delivery verifies with `standardwebhooks`; the
/// failures are listed by the admin route without the secret, and counted
/// in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_deliveries_verify_and_dedupe_to_exactly_once() {
    let (receiver, addr) = Receiver::start(3).await;
    let outside = tempfile::tempdir().unwrap();
    let config = config_file(outside.path(), addr, "events = [\"created\", \"revoked\"]\n");
    let server = launch().args(&["--dev", "--config", &config]).start();
    let (token, session) = server.login("alice").await;
    let id = session["id"].as_str().unwrap().to_owned();
    let revoked = server.post("/v1/sessions/revoke", json!({ "token": token })).await;
    assert_eq!(revoked.status(), 204);

    wait_for("both events accepted", 600, async || receiver.accepted().len() == 2).await;
    let accepted = receiver.accepted();
    let mut kinds: Vec<&str> = accepted.values().map(|b| b["type"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["created", "revoked"]);
    for (webhook_id, body) in &accepted {
        assert_eq!(body["data"]["id"], *webhook_id);
        assert_eq!(body["data"]["session_id"], id.as_str());
        assert_eq!(body["tenant"], "default");
        let attempts = receiver
            .all()
            .into_iter()
            .filter(|d| d.headers["webhook-id"] == *webhook_id)
            .count();
        assert!(attempts >= 4, "{attempts} attempts of {webhook_id}");
    }
    verify_with_standardwebhooks(&receiver.all());

    let (status, failures) = server.json(Method::GET, "/v1/admin/webhooks/failures", None).await;
    assert_eq!(status, 200, "{failures}");
    let listed = failures["failures"].as_array().unwrap();
    assert!(listed.len() >= 6, "{failures}");
    assert!(
        listed.iter().all(|f| f["error"] == "HTTP 500" && f["gave_up"] == false),
        "{failures}"
    );
    assert_eq!(listed[0]["url"], format!("http://{addr}/hook"));
    let text = failures.to_string();
    assert!(!text.contains("whsec_") && !text.contains(&SECRET[6..20]), "{text}");

    let metrics = server.text("/metrics").await;
    assert!(
        metrics.contains("sessiond_webhook_deliveries_total{outcome=\"delivered\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sessiond_webhook_deliveries_total{outcome=\"failed\"} 6"),
        "{metrics}"
    );
}

/// The node that accepted a revocation is killed right after its 204: the
/// other node, over the same Redis, still delivers the `revoked` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_delivered_after_the_node_that_accepted_it_is_killed() {
    delivered_after_the_accepting_node_is_killed(Engine::Redis).await;
}

/// The same over PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_delivered_after_the_node_that_accepted_it_is_killed_postgres() {
    delivered_after_the_accepting_node_is_killed(Engine::Postgres).await;
}

async fn delivered_after_the_accepting_node_is_killed(engine: Engine) {
    let Some(store) = engine.store() else {
        return;
    };
    let (receiver, addr) = Receiver::start(0).await;
    let outside = tempfile::tempdir().unwrap();
    let config = config_file(outside.path(), addr, "events = [\"revoked\"]\n");
    let args = ["--dev", "--config", config.as_str()];
    let mut a = launch().store(&store).args(&args).start();
    let b = launch().store(&store).args(&args).start();
    let (token, session) = a.login("bob").await;
    let id = session["id"].as_str().unwrap().to_owned();
    let revoked = a.post("/v1/sessions/revoke", json!({ "token": token })).await;
    assert_eq!(revoked.status(), 204);
    a.kill();
    let delivered = async || {
        receiver
            .accepted()
            .values()
            .any(|body| body["data"]["session_id"] == id.as_str())
    };
    // Lease (5 s) + timeout (2 s) + settling, with room: bounded, not slept.
    wait_for("the revoked event from the surviving node", 400, delivered).await;
    assert!(receiver.accepted().values().all(|body| body["type"] == "revoked"));
    drop(b);
}

fn load(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path), Vec::new()).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
}

/// Plain HTTP only to loopback and only in `--dev`; secrets only
/// `whsec_` + base64 of 24 to 64 bytes; the secret never printed.
#[test]
fn webhook_configs_are_refused_with_clear_errors() {
    let entry = |url: &str, secret: &str| format!("[[webhooks]]\nurl = \"{url}\"\nsecret = \"{secret}\"\n");
    let dev = "[server]\ndev = true\nlisten = \"127.0.0.1:0\"\n";
    assert_eq!(
        load(&format!("{dev}{}", entry("http://192.0.2.1/hook", SECRET))).unwrap_err(),
        "webhooks[0]: plain http:// is allowed only to a loopback address (127.0.0.1, ::1, localhost) with --dev; \
         use https://"
    );
    assert_eq!(
        load(&entry("https://hooks.example.com/x", "whsec_c2hvcnQ=")).unwrap_err(),
        "webhooks[0]: secret must be whsec_ followed by base64 of 24 to 64 random bytes"
    );
    assert_eq!(
        load(&format!(
            "{}events = [\"nope\"]\n",
            entry("https://hooks.example.com/x", SECRET)
        ))
        .unwrap_err(),
        "webhooks[0]: events: unknown kind \"nope\" (kinds: created, verify_failed, touched, rotated, elevated, \
         data_updated, revoked, expired_purged, anomaly)"
    );
    let accepted = load(&format!("{dev}{}", entry("http://[::1]:9/hook", SECRET))).unwrap();
    assert!(!format!("{accepted:?}").contains(&SECRET[6..]));
    assert!(!toml::to_string(&accepted).unwrap().contains(&SECRET[6..]));
    load(&entry("https://hooks.example.com/x", SECRET)).unwrap();

    // The binary says so and stops, before serving anything.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, entry("http://127.0.0.1:9/hook", SECRET)).unwrap();
    let out = std::process::Command::new(crate::support::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory:", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "sessiond: webhooks[0]: plain http:// to a loopback address is allowed only with --dev; use https://"
    );
    assert!(!stderr.contains(&SECRET[6..]), "{stderr}");
}
