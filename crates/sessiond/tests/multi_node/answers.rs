//! Judging a node's answers while its engine fails (the fault and failover
//! tests): what is known about each token, and the tally of what came back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use reqwest::Method;
use serde_json::Value;
use sessiond_testkit::server::Api;

/// What the test knows about a token: only acknowledged outcomes are known.
#[derive(Clone)]
pub enum Known {
    /// Created (201) and not revoked: must verify as this session id.
    Live(String),
    /// Revoked (204) or never created: must never verify.
    Dead,
}

/// Answers counted while the event runs, and when 503s were seen.
#[derive(Default)]
pub struct Tally {
    pub valid: AtomicUsize,
    pub refused: AtomicUsize,
    pub unavailable: AtomicUsize,
    pub first_unavailable: Mutex<Option<Instant>>,
    pub last_unavailable: Mutex<Option<Instant>>,
}

impl Tally {
    fn unavailable_now(&self) {
        let now = Instant::now();
        self.unavailable.fetch_add(1, Ordering::Relaxed);
        self.first_unavailable.lock().unwrap().get_or_insert(now);
        *self.last_unavailable.lock().unwrap() = Some(now);
    }
}

/// POSTs `body` to `path` on `node`: (status, answer).
pub async fn post(node: &Api, path: &str, body: Value) -> (u16, Value) {
    let (status, body) = node.json(Method::POST, path, Some(body)).await;
    (status.as_u16(), body)
}

/// A 503 must say why; these are the reasons a node may give.
pub fn assert_unavailable(body: &Value) {
    let code = body["code"].as_str().unwrap_or_default();
    assert!(
        ["store_unavailable", "timeout", "overloaded"].contains(&code),
        "a 503 with code {code:?}: {body}"
    );
}

/// Checks one verify answer against what is known about the token.
pub fn check(known: &Known, status: u16, body: &Value, tally: &Tally) {
    match (status, known) {
        (200, Known::Live(id)) => {
            assert_eq!(body["session"]["id"], id.as_str(), "valid, but for the wrong session");
            tally.valid.fetch_add(1, Ordering::Relaxed);
        }
        (200, Known::Dead) => panic!("a revoked or unknown token verified as valid: {body}"),
        (401, Known::Dead) => {
            tally.refused.fetch_add(1, Ordering::Relaxed);
        }
        (401, Known::Live(id)) => panic!("acknowledged session {id} answered 401: {body}"),
        (503, _) => {
            assert_unavailable(body);
            tally.unavailable_now();
        }
        (other, _) => panic!("unexpected status {other}: {body}"),
    }
}
