//! The verifier: a cheap handle over the cached keys, the expected claims
//! and the revoked sessions, checking tokens without asking sessiond.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey};

use crate::builder::VerifierBuilder;
use crate::claims::{self, AccessClaims, Expected};
use crate::error::{BuildError, VerifyError};
use crate::follow::Follower;
use crate::http::{self, ApiKey};
use crate::jwks::{KeyStore, Lookup};
use crate::revocations::RevocationSet;
use crate::token::{self, Parsed};

/// The current time in Unix seconds. The one place this crate reads the
/// wall clock; everything below takes `now` as a parameter.
pub(crate) fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        // A clock before 1970 is broken; treating it as 1970 makes every
        // token "not yet valid", which fails closed.
        Err(_) => 0,
    }
}

/// Verifies sessiond access tokens offline.
///
/// Cheap to clone (one `Arc`); share one per process. Built with
/// [`Verifier::builder`]. [`verify`](Self::verify) is synchronous and does no
/// I/O; [`verify_async`](Self::verify_async) also fetches the JWKS when a
/// token names a key not yet cached. See the [crate docs](crate) for the
/// checks, in order.
#[derive(Debug, Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    keys: Arc<KeyStore>,
    expected: Expected,
    revocations: Option<Revocations>,
}

#[derive(Debug)]
struct Revocations {
    set: Arc<RwLock<RevocationSet>>,
    synced: Arc<AtomicBool>,
    /// What the follower task needs; taken when it starts.
    follower: Mutex<Option<Follower>>,
    /// The running task, aborted when the last verifier clone drops.
    task: Mutex<Option<AbortOnDrop>>,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Verifier {
    /// Starts configuring a verifier for the sessiond at `base_url`
    /// (`https://sessiond.example`, with a path prefix if sessiond sits
    /// under one). The JWKS is read from `{base_url}/.well-known/jwks.json`.
    pub fn builder(base_url: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder::new(base_url)
    }

    pub(crate) fn from_builder(builder: VerifierBuilder) -> Result<Self, BuildError> {
        let base = http::base_url(&builder.base_url)?;
        let issuer = builder.issuer.ok_or(BuildError::MissingIssuer)?;
        let audience = builder.audience.ok_or(BuildError::MissingAudience)?;
        let leeway = i64::try_from(builder.leeway.as_secs()).unwrap_or(i64::MAX);
        let client = match builder.client {
            Some(client) => client,
            None => http::default_client()?,
        };
        let keys = KeyStore::new(client.clone(), http::endpoint(&base, ".well-known/jwks.json")?);
        let revocations = match builder.api_key {
            Some(key) => {
                let set = Arc::new(RwLock::new(RevocationSet::new(builder.revocation_capacity, leeway)));
                let url = http::endpoint(&base, "v1/revocations")?;
                let synced = Arc::new(AtomicBool::new(false));
                let follower = Follower::new(client, url, ApiKey::new(&key)?, Arc::clone(&set), Arc::clone(&synced));
                Some(Revocations {
                    set,
                    synced,
                    follower: Mutex::new(Some(follower)),
                    task: Mutex::new(None),
                })
            }
            None => None,
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                keys: Arc::new(keys),
                expected: Expected {
                    issuer,
                    audience,
                    leeway,
                },
                revocations,
            }),
        })
    }

    pub(crate) fn has_api_key(&self) -> bool {
        self.inner.revocations.is_some()
    }

    /// Starts following sessiond's revocation feed in a task on the current
    /// tokio runtime, if not already started. [`VerifierBuilder::build`] calls
    /// this when an API key is set; calling it again does nothing.
    ///
    /// The task streams `GET {base}/v1/revocations` as server-sent events
    /// (polling the JSON form every 0.5 s while the stream is down) and keeps
    /// each revoked session until its access tokens would have expired
    /// anyway (plus the leeway). It stops when the last clone of this
    /// verifier is dropped.
    ///
    /// Until the task's first poll has answered, no revocation is known;
    /// see [`revocations_synced`](Self::revocations_synced).
    ///
    /// Memory is capped by [`VerifierBuilder::revocation_capacity`]. Past the
    /// cap the entry expiring first is dropped and, until it would have
    /// expired, every token issued at or before the newest revocation is
    /// refused as [`VerifyError::Revoked`]: clients whose tokens predate the
    /// flood need a fresh access token, and no revoked session slips through.
    pub fn follow_revocations(&self) -> Result<(), BuildError> {
        let revocations = self.inner.revocations.as_ref().ok_or(BuildError::NoApiKey)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let mut follower = revocations.follower.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(task) = follower.take() else {
            return Ok(());
        };
        let handle = runtime.spawn(task.run());
        *revocations.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(AbortOnDrop(handle));
        Ok(())
    }

    /// Whether the revocation feed has answered at least once, so that every
    /// revocation still relevant is known. Before that, tokens of revoked
    /// sessions pass: a readiness probe can wait for this. `false` without an
    /// API key.
    pub fn revocations_synced(&self) -> bool {
        self.inner
            .revocations
            .as_ref()
            .is_some_and(|r| r.synced.load(Ordering::Acquire))
    }

    /// Fetches the JWKS now, regardless of the cache. Optional: useful at
    /// startup so that the first [`verify`](Self::verify) finds the keys.
    pub async fn refresh_keys(&self) -> Result<(), VerifyError> {
        self.inner.keys.refresh().await.map_err(VerifyError::JwksUnavailable)
    }

    /// Verifies a token with the keys already cached, without I/O.
    ///
    /// A token naming a key not in the cache is
    /// [`VerifyError::UnknownKey`]; if a tokio runtime is current, a refetch
    /// is also started in the background (subject to the same floor as
    /// [`verify_async`](Self::verify_async)), so a later call may find it.
    /// A cache past its `max-age` is likewise refreshed in the background
    /// and used meanwhile.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let parsed = token::parse(token)?;
        match self.inner.keys.lookup(parsed.kid.as_deref()) {
            Lookup::Found(key, stale) => {
                if stale {
                    self.inner.keys.refresh_in_background(None);
                }
                self.finish(&parsed, &key, unix_now())
            }
            Lookup::Missing => {
                self.inner.keys.refresh_in_background(parsed.kid.clone());
                Err(VerifyError::unknown_key(parsed.kid.as_deref()))
            }
        }
    }

    /// Verifies a token, fetching the JWKS first if the token names a key
    /// not in the cache.
    ///
    /// After the first load, such refetches happen at most once per
    /// [`REFETCH_FLOOR`](crate::REFETCH_FLOOR) however many tokens name
    /// unknown keys; in between they are [`VerifyError::UnknownKey`]
    /// without I/O. If the JWKS cannot be fetched and the key is not
    /// cached, the result is [`VerifyError::JwksUnavailable`].
    pub async fn verify_async(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let parsed = token::parse(token)?;
        let key = match self.inner.keys.lookup(parsed.kid.as_deref()) {
            Lookup::Found(key, stale) => {
                if stale {
                    self.inner.keys.refresh_in_background(None);
                }
                key
            }
            Lookup::Missing => match self.inner.keys.find(parsed.kid.as_deref()).await {
                Ok(Some(key)) => key,
                Ok(None) => return Err(VerifyError::unknown_key(parsed.kid.as_deref())),
                Err(error) => return Err(VerifyError::JwksUnavailable(error)),
            },
        };
        self.finish(&parsed, &key, unix_now())
    }

    /// Signature, claims, revocation.
    fn finish(&self, parsed: &Parsed<'_>, key: &DecodingKey, now: i64) -> Result<AccessClaims, VerifyError> {
        let verified =
            jsonwebtoken::crypto::verify(parsed.signature, parsed.signing_input.as_bytes(), key, Algorithm::EdDSA);
        if !matches!(verified, Ok(true)) {
            return Err(VerifyError::BadSignature);
        }
        let claims = claims::check(&parsed.payload, &self.inner.expected, now)?;
        if let Some(revocations) = &self.inner.revocations {
            let set = revocations.set.read().unwrap_or_else(PoisonError::into_inner);
            if set.is_revoked(&claims.tid, &claims.sid, claims.iat.unix_timestamp(), now) {
                return Err(VerifyError::Revoked);
            }
        }
        Ok(claims)
    }
}
