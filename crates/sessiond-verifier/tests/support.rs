//! Test tokens signed here with aws-lc-rs, and a stand-in sessiond on
//! 127.0.0.1:0 serving the JWKS and the revocation feed (JSON and SSE),
//! counting what it is asked.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sessiond_verifier::{Verifier, VerifierBuilder};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const ISSUER: &str = "https://sessiond.test";
pub const AUDIENCE: &str = "orders-api";
pub const API_KEY: &str = "sk_test_key";

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// An Ed25519 key pair with a kid.
pub struct Signer {
    pub kid: String,
    pair: Ed25519KeyPair,
}

impl Signer {
    pub fn generate(kid: &str) -> anyhow::Result<Self> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).context("keygen")?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).context("key")?;
        Ok(Signer { kid: kid.into(), pair })
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(self.public_key()), "kid": self.kid, "use": "sig", "alg": "EdDSA"})
    }

    /// The standard header for this key.
    pub fn header(&self) -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": self.kid})
    }

    /// A compact JWS of exactly these header and claims.
    pub fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// A valid token with these claims.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.header(), claims)
    }
}

/// Claims of a valid token for session `sid` of tenant `tid`.
pub fn claims_for(tid: &str, sid: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "sid": sid, "tid": tid,
        "aal": 2, "auth_time": now - 600, "iat": now - 5, "exp": now + 295, "jti": "jti-1"
    })
}

pub fn claims() -> Value {
    claims_for("default", "sess-1")
}

fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// What the stand-in sessiond holds and counts.
#[derive(Default)]
pub struct ServerState {
    pub jwks: Mutex<Vec<Value>>,
    pub jwks_hits: AtomicUsize,
    /// Revocation entries; the cursor of entry `i` is `c{i+1}`.
    pub revoked: Mutex<Vec<Value>>,
    pub polls: AtomicUsize,
    pub streams_opened: AtomicUsize,
    pub last_event_ids: Mutex<Vec<String>>,
    /// Answer event-stream requests with 503: the verifier must poll.
    pub refuse_streams: AtomicBool,
    /// Bumped on each new entry, and to end open streams.
    changed: Option<watch::Sender<(usize, u64)>>,
}

pub struct TestServer {
    pub base: String,
    pub state: Arc<ServerState>,
}

impl TestServer {
    pub async fn start(keys: &[&Signer]) -> anyhow::Result<Self> {
        let (changed, _) = watch::channel((0, 0));
        let state = Arc::new(ServerState {
            jwks: Mutex::new(keys.iter().map(|k| k.jwk()).collect()),
            changed: Some(changed),
            ..ServerState::default()
        });
        let app = Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .route("/v1/revocations", get(revocations))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(TestServer { base, state })
    }

    pub fn builder(&self) -> VerifierBuilder {
        Verifier::builder(&self.base).issuer(ISSUER).audience(AUDIENCE)
    }

    pub fn publish(&self, signer: &Signer) {
        lock(&self.state.jwks).push(signer.jwk());
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Adds a revocation entry, valid until `valid_for` seconds from now.
    pub fn revoke(&self, tenant: &str, sid: &str, valid_for: i64) {
        let now = now();
        let mut revoked = lock(&self.state.revoked);
        revoked.push(json!({
            "session_id": sid, "tenant": tenant, "revoked_at": rfc3339(now),
            "access_tokens_valid_until": rfc3339(now + valid_for)
        }));
        let count = revoked.len();
        drop(revoked);
        if let Some(changed) = &self.state.changed {
            changed.send_modify(|c| c.0 = count);
        }
    }

    /// Ends every open stream.
    pub fn drop_streams(&self) {
        if let Some(changed) = &self.state.changed {
            changed.send_modify(|c| c.1 += 1);
        }
    }
}

pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits, checking every 10 ms, until `check` holds or `limit` passes.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn jwks(State(state): State<Arc<ServerState>>) -> Response {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let body = json!({"keys": *lock(&state.jwks)});
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn cursor_index(cursor: Option<&str>) -> usize {
    cursor
        .and_then(|c| c.strip_prefix('c'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn revocations(
    State(state): State<Arc<ServerState>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let authorized =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"));
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_stream {
        state.polls.fetch_add(1, Ordering::SeqCst);
        let after = cursor_index(query.get("after").map(String::as_str));
        let revoked = lock(&state.revoked);
        let page: Vec<Value> = revoked.iter().skip(after).cloned().collect();
        let cursor = if revoked.is_empty() {
            Value::Null
        } else {
            json!(format!("c{}", revoked.len()))
        };
        let body = json!({"revoked": page, "cursor": cursor});
        return ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    }
    if state.refuse_streams.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &last_event_id {
        lock(&state.last_event_ids).push(id.clone());
    }
    let next = cursor_index(last_event_id.as_deref().or(query.get("after").map(String::as_str)));
    let Some(changed) = &state.changed else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let rx = changed.subscribe();
    let generation = rx.borrow().1;
    state.streams_opened.fetch_add(1, Ordering::SeqCst);
    let stream_state = Arc::clone(&state);
    // Send what is pending, then wait for more; a keep-alive first, as
    // sessiond sends one every 15 s.
    let first = Bytes::from_static(b": keep-alive\n\n");
    let events = futures_util::stream::unfold((next, true, rx), move |(next, fresh, mut rx)| {
        let state = Arc::clone(&stream_state);
        let first = first.clone();
        async move {
            if fresh {
                return Some((Ok::<_, Infallible>(first), (next, false, rx)));
            }
            loop {
                let pending: Vec<Value> = lock(&state.revoked).iter().skip(next).cloned().collect();
                if !pending.is_empty() {
                    let mut out = String::new();
                    for (i, entry) in pending.iter().enumerate() {
                        out.push_str(&format!("id: c{}\nevent: revoked\ndata: {entry}\n\n", next + i + 1));
                    }
                    return Some((Ok(Bytes::from(out)), (next + pending.len(), false, rx)));
                }
                if rx.changed().await.is_err() || rx.borrow().1 != generation {
                    return None;
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(events))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
