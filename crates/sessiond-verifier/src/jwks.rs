//! The signing keys: fetched from `GET {base}/.well-known/jwks.json`, cached
//! by `kid`, refreshed after the response's `max-age`, refetched when a token
//! names a `kid` we do not hold.
//!
//! sessiond publishes a key before it signs with it and keeps it published
//! until the last token it signed has expired, so a verifier whose cache is
//! younger than that overlap never needs to refetch. An unknown `kid` is
//! therefore usually junk, and refetching on it is an amplification lever:
//! after the first load, refetches caused by unknown kids (and by a stale
//! cache) happen at most once per [`REFETCH_FLOOR`]. Concurrent callers wait
//! for one fetch instead of each making their own.
//!
//! From the set, only keys with `kty` `OKP`, `crv` `Ed25519`, a 32-byte `x`
//! and a `kid` are kept, and only if `use` (when present) is `sig` and `alg`
//! (when present) is `EdDSA`; others are skipped. On a repeated `kid` the
//! first key wins. The document may be at most [`MAX_JWKS_LEN`] bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use reqwest::header::{ACCEPT, CACHE_CONTROL, HeaderMap};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::error::JwksError;
use crate::http::{REQUEST_TIMEOUT, ReadError, read_limited};

/// At most one refetch per this long, after the first load.
pub const REFETCH_FLOOR: Duration = Duration::from_secs(10);
/// After a failed first load, the next attempt waits this long.
const LOAD_RETRY: Duration = Duration::from_secs(1);
/// Cache lifetime when the response has no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Longest cache lifetime honoured.
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Largest JWKS document read.
pub(crate) const MAX_JWKS_LEN: usize = 1 << 20;

type Keys = HashMap<String, Arc<DecodingKey>>;

#[derive(Default)]
struct Cached {
    keys: Arc<Keys>,
    /// When the cache goes stale; `None` before the first load.
    fresh_until: Option<Instant>,
}

#[derive(Default)]
struct FetchState {
    /// The last refetch subject to the floor.
    last_refetch: Option<Instant>,
    /// The last failed fetch, and when.
    last_failure: Option<(Instant, Arc<JwksError>)>,
}

/// What a lookup found.
pub(crate) enum Lookup {
    /// The key, and whether the cache is past its max-age.
    Found(Arc<DecodingKey>, bool),
    /// No such key.
    Missing,
}

/// The cached key set and the fetching of it.
#[derive(Debug)]
pub(crate) struct KeyStore {
    client: Client,
    url: Url,
    cached: RwLock<Cached>,
    fetch: Mutex<FetchState>,
    refreshing: AtomicBool,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl std::fmt::Debug for FetchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchState")
            .field("last_refetch", &self.last_refetch)
            .finish()
    }
}

impl KeyStore {
    pub(crate) fn new(client: Client, url: Url) -> Self {
        KeyStore {
            client,
            url,
            cached: RwLock::new(Cached::default()),
            fetch: Mutex::new(FetchState::default()),
            refreshing: AtomicBool::new(false),
        }
    }

    /// The key for `kid`, from the cache only.
    pub(crate) fn lookup(&self, kid: Option<&str>) -> Lookup {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        match kid.and_then(|kid| cached.keys.get(kid)) {
            Some(key) => Lookup::Found(
                Arc::clone(key),
                cached.fresh_until.is_some_and(|until| Instant::now() >= until),
            ),
            None => Lookup::Missing,
        }
    }

    fn loaded(&self) -> bool {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        cached.fresh_until.is_some()
    }

    fn stale(&self) -> bool {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        cached.fresh_until.is_none_or(|until| Instant::now() >= until)
    }

    /// Fetches now, ignoring the floor.
    pub(crate) async fn refresh(&self) -> Result<(), Arc<JwksError>> {
        let mut state = self.fetch.lock().await;
        self.fetch_into(&mut state).await
    }

    /// Looks for `kid`, fetching the set if it is unknown and the floor
    /// allows. `Ok(None)`: still unknown. `Err`: unknown, and the JWKS
    /// could not be fetched.
    pub(crate) async fn find(&self, kid: Option<&str>) -> Result<Option<Arc<DecodingKey>>, Arc<JwksError>> {
        let mut state = self.fetch.lock().await;
        // Another caller may have fetched while we waited for the lock.
        if let Lookup::Found(key, _) = self.lookup(kid) {
            return Ok(Some(key));
        }
        let now = Instant::now();
        if self.loaded() {
            if let Some(last) = state.last_refetch.filter(|t| now.duration_since(*t) < REFETCH_FLOOR) {
                return match &state.last_failure {
                    Some((failed, error)) if *failed >= last => Err(Arc::clone(error)),
                    _ => Ok(None),
                };
            }
            state.last_refetch = Some(now);
        } else if let Some((failed, error)) = &state.last_failure
            && now.duration_since(*failed) < LOAD_RETRY
        {
            return Err(Arc::clone(error));
        }
        self.fetch_into(&mut state).await?;
        Ok(match self.lookup(kid) {
            Lookup::Found(key, _) => Some(key),
            Lookup::Missing => None,
        })
    }

    /// Refreshes a stale cache, under the floor.
    async fn refresh_if_stale(&self) {
        let mut state = self.fetch.lock().await;
        let now = Instant::now();
        if !self.stale()
            || state
                .last_refetch
                .is_some_and(|t| now.duration_since(t) < REFETCH_FLOOR)
        {
            return;
        }
        state.last_refetch = Some(now);
        if let Err(error) = self.fetch_into(&mut state).await {
            tracing::warn!(error = %error, "JWKS refresh failed; keeping the cached keys");
        }
    }

    /// From synchronous code: refresh in a background task on the current
    /// tokio runtime, if there is one and no refresh is already running.
    /// `kid`: the unknown kid to look for; `None`: refresh if stale.
    pub(crate) fn refresh_in_background(self: &Arc<Self>, kid: Option<String>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        // Cleared when the task ends, or is dropped unfinished with its runtime.
        let guard = Refreshing(Arc::clone(self));
        runtime.spawn(async move {
            match kid {
                Some(kid) => {
                    // Failures are logged by fetch_into.
                    let _ = guard.0.find(Some(&kid)).await;
                }
                None => guard.0.refresh_if_stale().await,
            }
        });
    }

    async fn fetch_into(&self, state: &mut FetchState) -> Result<(), Arc<JwksError>> {
        match self.fetch_once().await {
            Ok((keys, max_age)) => {
                tracing::debug!(keys = keys.len(), ?max_age, "JWKS fetched");
                let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
                *cached = Cached {
                    keys: Arc::new(keys),
                    fresh_until: Some(Instant::now() + max_age),
                };
                state.last_failure = None;
                Ok(())
            }
            Err(error) => {
                tracing::warn!(error = %error, url = %self.url, "JWKS fetch failed");
                let error = Arc::new(error);
                state.last_failure = Some((Instant::now(), Arc::clone(&error)));
                Err(error)
            }
        }
    }

    async fn fetch_once(&self) -> Result<(Keys, Duration), JwksError> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, "application/jwk-set+json, application/json")
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(JwksError::Http)?;
        if response.status() != StatusCode::OK {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        let max_age = max_age(response.headers());
        let body = read_limited(&mut response, MAX_JWKS_LEN).await.map_err(|e| match e {
            ReadError::Http(e) => JwksError::Http(e),
            ReadError::TooLarge => JwksError::TooLarge,
        })?;
        Ok((parse_jwks(&body)?, max_age))
    }
}

/// Marks a background refresh as running while alive.
struct Refreshing(Arc<KeyStore>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
}

/// The usable Ed25519 keys of a JWK Set, by kid.
fn parse_jwks(body: &[u8]) -> Result<Keys, JwksError> {
    let set: JwkSet = serde_json::from_slice(body).map_err(JwksError::Json)?;
    let mut keys = Keys::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        let usable = jwk.kty == "OKP"
            && jwk.crv.as_deref() == Some("Ed25519")
            && jwk.use_.as_deref().is_none_or(|u| u == "sig")
            && jwk.alg.as_deref().is_none_or(|a| a == "EdDSA");
        let (Some(kid), Some(x)) = (jwk.kid, jwk.x) else {
            continue;
        };
        if !usable || URL_SAFE_NO_PAD.decode(&x).map(|x| x.len()).ok() != Some(32) {
            tracing::debug!(kid = %kid.escape_debug(), "JWKS key skipped: not an Ed25519 signing key");
            continue;
        }
        let Ok(key) = DecodingKey::from_ed_components(&x) else {
            continue;
        };
        if keys.contains_key(&kid) {
            tracing::warn!(kid = %kid.escape_debug(), "JWKS repeats a kid; the first key is used");
            continue;
        }
        keys.insert(kid, Arc::new(key));
    }
    Ok(keys)
}

/// The cache lifetime the response allows: `max-age`, clamped to
/// [`REFETCH_FLOOR`]..=24 h; `no-store`/`no-cache` mean the floor; absent,
/// 5 minutes.
fn max_age(headers: &HeaderMap) -> Duration {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache") {
                found = Some(0);
            } else if let Some((name, seconds)) = directive.split_once('=')
                && name.trim().eq_ignore_ascii_case("max-age")
                && let Ok(seconds) = seconds.trim().trim_matches('"').parse::<u64>()
            {
                found = Some(found.map_or(seconds, |f: u64| f.min(seconds)));
            }
        }
    }
    found.map_or(DEFAULT_MAX_AGE, |s| {
        Duration::from_secs(s).clamp(REFETCH_FLOOR, MAX_MAX_AGE)
    })
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(CACHE_CONTROL, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn max_age_is_read_and_clamped() {
        assert_eq!(max_age(&headers(&["public, max-age=60"])), Duration::from_secs(60));
        assert_eq!(max_age(&headers(&["MAX-AGE = 120 "])), Duration::from_secs(120));
        assert_eq!(max_age(&headers(&["max-age=0"])), REFETCH_FLOOR);
        assert_eq!(max_age(&headers(&["no-store"])), REFETCH_FLOOR);
        assert_eq!(max_age(&headers(&["max-age=99999999"])), MAX_MAX_AGE);
        assert_eq!(max_age(&headers(&["public"])), DEFAULT_MAX_AGE);
        assert_eq!(max_age(&headers(&[])), DEFAULT_MAX_AGE);
        assert_eq!(
            max_age(&headers(&["max-age=600", "max-age=60"])),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn only_ed25519_signing_keys_are_kept() -> Result<(), JwksError> {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
        let body = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "good", "use": "sig", "alg": "EdDSA"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "bare"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "X25519", "x": x, "kid": "x25519"},
            {"kty": "OKP", "crv": "Ed25519", "x": short, "kid": "short"},
            {"kty": "OKP", "crv": "Ed25519", "x": x},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
            {"kty": "oct", "k": x, "kid": "hmac"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "hs", "alg": "HS256"},
            "not an object"
        ]});
        let keys = parse_jwks(body.to_string().as_bytes())?;
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["bare", "good"]);
        assert!(matches!(parse_jwks(b"{}"), Err(JwksError::Json(_))));
        Ok(())
    }
}
