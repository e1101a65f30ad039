//! Access-token signing keys: Ed25519 key pairs sessiond makes itself,
//! keeps in the store, shares between every node over that store and
//! rotates with overlap ([`KeySchedule`]).
//!
//! The keys are one record of the [`SecretStore`], named
//! [`SIGNING_KEYS`]: JSON listing each key's id, its PKCS#8 document and
//! the second it signs from, sealed with the store's data key
//! ([`Place::Secret`]) unless encryption is off. A dump of the store shows
//! no private key.
//!
//! Each node keeps the keys in memory and reads the record again every
//! [`KeySchedule::refresh`]; at the same time it applies the schedule's
//! plan with a compare-and-set on the whole record, so of nodes racing to
//! rotate exactly one writes, and the others read what it wrote.

use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::clock::Clock;
use crate::key_schedule::{KeySchedule, PlannedKey};
use crate::sealed_store::Sealer;
use crate::sealing::Place;
use crate::secrets::{SecretName, SecretStore, SecretStoreError};

/// The name of the signing-key record in the [`SecretStore`].
pub const SIGNING_KEYS: &str = "access-token-keys";

/// Why the signing keys could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The store failed.
    #[error("signing keys: the store failed")]
    Store(#[from] SecretStoreError),
    /// The stored record is sealed and cannot be opened (wrong or missing
    /// data key), or is not a key record.
    #[error("signing keys: the stored record cannot be read")]
    Corrupt(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// No randomness, or ring refused to make a key.
    #[error("signing keys: cannot make a key")]
    Generate,
    /// The record changed under every attempt to update it.
    #[error("signing keys: the record kept changing")]
    Contended,
}

/// One key as stored.
#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// The PKCS#8 v2 document, base64url.
    pkcs8: String,
    signs_from: i64,
}

/// The stored record.
#[derive(Clone, Serialize, Deserialize, Default)]
struct Record {
    keys: Vec<StoredKey>,
}

/// A key ready to sign and to publish.
struct LoadedKey {
    kid: Arc<str>,
    encoding: jsonwebtoken::EncodingKey,
    public: Vec<u8>,
    signs_from: i64,
}

/// The keys a node holds, and the stored bytes they came from (the
/// `expected` value of the next compare-and-set).
struct Loaded {
    keys: Vec<LoadedKey>,
    stored: Vec<u8>,
}

/// What one [`SigningKeys::maintain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maintenance {
    /// The record needed no change.
    Unchanged,
    /// This node rewrote the record, unchanged, under the sealing data key:
    /// it was sealed by another key of the ring (a data-key rotation) or
    /// stored in clear.
    Resealed,
    /// This node wrote the change: it added a key (`added`) and dropped
    /// `dropped` retired ones.
    Changed {
        /// Whether a new key was published.
        added: bool,
        /// How many retired keys were dropped.
        dropped: usize,
    },
}

/// A node's view of the shared signing keys.
pub struct SigningKeys {
    store: Arc<dyn SecretStore>,
    sealer: Sealer,
    clock: Arc<dyn Clock>,
    schedule: KeySchedule,
    loaded: RwLock<Arc<Loaded>>,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<Arc<str>> = self.current().keys.iter().map(|k| Arc::clone(&k.kid)).collect();
        f.debug_struct("SigningKeys")
            .field("kids", &kids)
            .field("schedule", &self.schedule)
            .finish()
    }
}

/// A key made now, signing from `signs_from`.
fn generate(signs_from: i64) -> Result<StoredKey, SigningKeyError> {
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| SigningKeyError::Generate)?;
    let pair = Ed25519KeyPair::from_pkcs8(document.as_ref()).map_err(|_| SigningKeyError::Generate)?;
    Ok(StoredKey {
        kid: thumbprint(pair.public_key().as_ref()),
        pkcs8: URL_SAFE_NO_PAD.encode(document.as_ref()),
        signs_from,
    })
}

/// The key id: the RFC 7638 thumbprint of the public JWK, so any verifier
/// can recompute it from the JWKS.
fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> SigningKeyError {
    SigningKeyError::Corrupt(Box::new(error))
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadRecord(&'static str);

impl SigningKeys {
    /// The keys of `store`, held by this node. Nothing is read until the
    /// first [`SigningKeys::maintain`], which makes the first key if the
    /// store has none yet (first writer wins): call it before serving.
    pub fn new(store: Arc<dyn SecretStore>, sealer: Sealer, clock: Arc<dyn Clock>, schedule: KeySchedule) -> Arc<Self> {
        Arc::new(Self {
            store,
            sealer,
            clock,
            schedule,
            loaded: RwLock::new(Arc::new(Loaded {
                keys: Vec::new(),
                stored: Vec::new(),
            })),
        })
    }

    /// The schedule.
    pub fn schedule(&self) -> &KeySchedule {
        &self.schedule
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn seal(&self, record: &Record) -> Result<Vec<u8>, SigningKeyError> {
        let json = serde_json::to_vec(record).map_err(corrupt)?;
        match self.sealer.keyring() {
            Some(keyring) => Ok(keyring
                .seal(Place::Secret { name: SIGNING_KEYS }, &json)
                .map_err(corrupt)?
                .into_bytes()),
            None => Ok(json),
        }
    }

    /// Whether `stored` is sealed otherwise than this node would seal it
    /// now: by another data key, or in clear while encryption is on.
    fn sealed_otherwise(&self, stored: &[u8]) -> bool {
        let Some(keyring) = self.sealer.keyring() else {
            return false;
        };
        let by = std::str::from_utf8(stored).ok().and_then(crate::sealing::sealed_by);
        by != Some(keyring.sealing_key())
    }

    fn open(&self, stored: &[u8]) -> Result<Record, SigningKeyError> {
        // A record written with encryption off is plain JSON; anything
        // else is an envelope.
        let json = if stored.first() == Some(&b'{') {
            stored.to_vec()
        } else {
            let text = std::str::from_utf8(stored).map_err(corrupt)?;
            let keyring = self
                .sealer
                .keyring()
                .ok_or_else(|| corrupt(BadRecord("sealed, and encryption is off")))?;
            keyring
                .open(Place::Secret { name: SIGNING_KEYS }, text)
                .map_err(corrupt)?
        };
        serde_json::from_slice(&json).map_err(corrupt)
    }

    fn install(&self, record: &Record, stored: Vec<u8>) -> Result<(), SigningKeyError> {
        let mut keys = Vec::with_capacity(record.keys.len());
        for key in &record.keys {
            let document = URL_SAFE_NO_PAD.decode(&key.pkcs8).map_err(corrupt)?;
            let pair = Ed25519KeyPair::from_pkcs8(&document).map_err(|_| corrupt(BadRecord("not an Ed25519 key")))?;
            keys.push(LoadedKey {
                kid: Arc::from(key.kid.as_str()),
                encoding: jsonwebtoken::EncodingKey::from_ed_der(&document),
                public: pair.public_key().as_ref().to_vec(),
                signs_from: key.signs_from,
            });
        }
        keys.sort_by_key(|k| k.signs_from);
        *self.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(Loaded { keys, stored });
        Ok(())
    }

    /// Reads the record again and applies the schedule's plan: publishes
    /// the next key when one is due and drops retired ones, with a
    /// compare-and-set, so of racing nodes exactly one writes each change.
    /// A record sealed by a data key other than the sealing one is
    /// rewritten under it at the same time, so a data-key rotation reaches
    /// the signing keys within one refresh of any node that seals with the
    /// new key (and `sessiond store reseal` does it too).
    pub async fn maintain(&self) -> Result<Maintenance, SigningKeyError> {
        let name = SecretName::signing_keys();
        for _ in 0..5 {
            let now = self.now();
            let stored = match self.store.secret_value(&name).await? {
                Some(stored) => stored,
                None => {
                    let first = Record {
                        keys: vec![generate(now)?],
                    };
                    let sealed = self.seal(&first)?;
                    let stored = self.store.init_secret_value(&name, &sealed).await?;
                    if stored == sealed {
                        self.install(&first, stored)?;
                        return Ok(Maintenance::Changed {
                            added: true,
                            dropped: 0,
                        });
                    }
                    stored
                }
            };
            let mut record = self.open(&stored)?;
            let planned: Vec<PlannedKey> = record
                .keys
                .iter()
                .map(|k| PlannedKey {
                    kid: k.kid.clone(),
                    signs_from: k.signs_from,
                })
                .collect();
            let plan = self.schedule.plan(&planned, now);
            let reseal = self.sealed_otherwise(&stored);
            if plan.is_empty() && !reseal {
                if stored != self.current().stored {
                    self.install(&record, stored)?;
                }
                return Ok(Maintenance::Unchanged);
            }
            record.keys.retain(|k| !plan.drop.contains(&k.kid));
            if let Some(signs_from) = plan.add_signing_from {
                record.keys.push(generate(signs_from)?);
            }
            let sealed = self.seal(&record)?;
            match self.store.put_secret_value(&name, &sealed, &stored).await {
                Ok(()) => {
                    self.install(&record, sealed)?;
                    if plan.is_empty() {
                        return Ok(Maintenance::Resealed);
                    }
                    return Ok(Maintenance::Changed {
                        added: plan.add_signing_from.is_some(),
                        dropped: plan.drop.len(),
                    });
                }
                // Another node changed it first: read what it wrote.
                Err(SecretStoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(SigningKeyError::Contended)
    }

    /// Runs [`SigningKeys::maintain`] every [`KeySchedule::refresh`];
    /// `changed` is told of each change this node wrote.
    pub fn spawn_maintenance(
        self: &Arc<Self>,
        changed: impl Fn(Maintenance) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let keys = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(keys.schedule.refresh());
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                match keys.maintain().await {
                    Ok(Maintenance::Unchanged) => {}
                    Ok(done) => changed(done),
                    Err(error) => tracing::warn!(%error, "cannot refresh the signing keys; signing with the ones held"),
                }
            }
        })
    }

    /// The key that signs at `now` (Unix seconds): the latest one whose
    /// time has come, with its id.
    pub(crate) fn signer_at(&self, now: i64) -> Option<(Arc<str>, jsonwebtoken::EncodingKey)> {
        let loaded = self.current();
        loaded
            .keys
            .iter()
            .rev()
            .find(|k| k.signs_from <= now)
            .map(|k| (Arc::clone(&k.kid), k.encoding.clone()))
    }

    /// The published keys as a JWK Set (RFC 7517): every stored key, the
    /// next one before it signs and retired ones until their tokens have
    /// expired.
    pub fn jwks(&self) -> Jwks {
        let loaded = self.current();
        Jwks {
            keys: loaded
                .keys
                .iter()
                .map(|k| Jwk {
                    kty: "OKP",
                    crv: "Ed25519",
                    x: URL_SAFE_NO_PAD.encode(&k.public),
                    kid: k.kid.to_string(),
                    use_: "sig",
                    alg: "EdDSA",
                })
                .collect(),
        }
    }
}

/// A JWK Set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// One public key (RFC 8037: an Ed25519 `OKP` key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// The key id (its RFC 7638 thumbprint).
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// `EdDSA`.
    pub alg: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_rfc_7638_thumbprints() {
        // RFC 8037 appendix A.3: the thumbprint of its example key.
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap_or_default();
        assert_eq!(thumbprint(&x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
