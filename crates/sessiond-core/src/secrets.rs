//! Shared secrets: the [`SecretStore`] contract.
//!
//! Some secrets must be the same on every node of a cluster: the portal's
//! CSRF tokens are signed on one node and checked on another. They used to
//! live in a file each node had to be given by hand; they now live where the
//! sessions live, so nodes over one store agree on them with no copying.
//!
//! A secret set is an ordered list of one to [`MAX_SECRETS`] secrets of 32
//! bytes each. The first signs new values, every one verifies, so a set is
//! rotated by putting a new secret in front and dropping the old one later.
//!
//! The written semantics are on [`SecretStore`], where users of the crate
//! see them (this module is private).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::ids::NameError;
use crate::store::{BoxError, StoreError};

/// Most secrets one set may hold: a rotation needs two; a few more leave
/// room for a slow one.
pub const MAX_SECRETS: usize = 8;

/// Longest [`SecretName`], in bytes.
pub const MAX_SECRET_NAME_LEN: usize = 64;

/// The name of a secret set: 1 to [`MAX_SECRET_NAME_LEN`] bytes of
/// `[a-z0-9-]`, so it is safe in a Redis key, a SQL value and a log line
/// as it is.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(Arc<str>);

impl SecretName {
    /// `portal-csrf`: the set the portal's CSRF tokens and device cookies
    /// are signed with. (A literal that passes [`SecretName::new`], which a
    /// test checks, so it needs no fallible constructor.)
    pub fn portal_csrf() -> Self {
        Self(Arc::from("portal-csrf"))
    }

    /// A validated name.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        if value.is_empty() {
            return Err(NameError::Empty("secret name"));
        }
        if value.len() > MAX_SECRET_NAME_LEN {
            return Err(NameError::TooLong {
                what: "secret name",
                max: MAX_SECRET_NAME_LEN,
            });
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(NameError::BadCharacter("secret name"));
        }
        Ok(Self(value.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretName").field(&self.as_str()).finish()
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The failure of a secret-store operation. Never holds secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    /// A write of zero or too many secrets. Nothing was written.
    #[error("a secret set holds 1 to {MAX_SECRETS} secrets, not {count}")]
    InvalidCount {
        /// How many were given.
        count: usize,
    },
    /// Compare-and-set refused: the stored set differs from the expected
    /// one. Nothing was written.
    #[error("the secret set changed concurrently")]
    Conflict,
    /// Compare-and-set refused: nothing is stored under the name.
    #[error("no such secret set")]
    NotFound,
    /// The engine cannot be reached; try again later.
    #[error("secret store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored set could not be decoded.
    #[error("stored secret set is corrupt")]
    Corrupt(#[source] BoxError),
    /// Any other engine failure.
    #[error("secret store failed")]
    Backend(#[source] BoxError),
}

impl SecretStoreError {
    /// True for [`SecretStoreError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SecretStoreError::Unavailable(_))
    }
}

/// A session-store failure met by a secret-store operation (the engines
/// share their connection and error handling), with its cause kept.
impl From<StoreError> for SecretStoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => SecretStoreError::Unavailable(source),
            StoreError::Corrupt(source) => SecretStoreError::Corrupt(source),
            StoreError::Backend(source) => SecretStoreError::Backend(source),
            other => SecretStoreError::Backend(Box::new(other)),
        }
    }
}

/// Refuses a set of zero or more than [`MAX_SECRETS`] secrets: every engine
/// calls it before writing, so the rule is written once.
pub fn check_secret_count(secrets: &[[u8; 32]]) -> Result<(), SecretStoreError> {
    if (1..=MAX_SECRETS).contains(&secrets.len()) {
        Ok(())
    } else {
        Err(SecretStoreError::InvalidCount { count: secrets.len() })
    }
}

/// The bytes engines store: the secrets one after another.
pub fn encode_secrets(secrets: &[[u8; 32]]) -> Vec<u8> {
    secrets.concat()
}

/// A stored set whose length is no whole, allowed number of secrets.
#[derive(Debug, thiserror::Error)]
#[error("a stored secret set of {len} bytes is not 1 to {MAX_SECRETS} secrets of 32 bytes")]
pub struct BadSecretBytes {
    len: usize,
}

/// Reads bytes written by [`encode_secrets`] back.
pub fn decode_secrets(bytes: &[u8]) -> Result<Vec<[u8; 32]>, SecretStoreError> {
    let count = bytes.len() / 32;
    if !bytes.len().is_multiple_of(32) || !(1..=MAX_SECRETS).contains(&count) {
        return Err(SecretStoreError::Corrupt(Box::new(BadSecretBytes { len: bytes.len() })));
    }
    let mut secrets = Vec::with_capacity(count);
    for chunk in bytes.chunks_exact(32) {
        let mut secret = [0u8; 32];
        secret.copy_from_slice(chunk);
        secrets.push(secret);
    }
    Ok(secrets)
}

/// Where shared secrets live.
///
/// # Semantics
///
/// Checked by `sessiond_testkit::secret_store_conformance!`:
///
/// * **Keys.** A set is found by its [`SecretName`]; names are exact and
///   sets under different names never affect each other.
/// * **Sizes** are enforced by the store: a write of zero or more than
///   [`MAX_SECRETS`] secrets is refused with
///   [`SecretStoreError::InvalidCount`] before anything is written (the
///   `expected` list of a compare-and-set is only compared, never checked).
///   Whether the secrets are random enough is the caller's business: the
///   store keeps bytes.
/// * **Init** ([`SecretStore::init_secrets`]) writes `initial` only if
///   nothing is stored under the name, and returns the set stored
///   afterwards, in one atomic step: of any number of racing inits, on any
///   number of nodes, exactly one writes and all return its set (first
///   writer wins).
/// * **Replace** ([`SecretStore::put_secrets`]) is a compare-and-set on the
///   whole ordered set: it writes only if the stored set equals `expected`
///   exactly (same secrets, same order), else
///   [`SecretStoreError::Conflict`]; [`SecretStoreError::NotFound`] when
///   nothing is stored (a set is created by init only).
/// * **Order** is kept: a set reads back exactly as written.
/// * Sets are never deleted and never expire.
/// * **Atomicity and durability** are those of the session methods: each
///   call is atomic across every handle and process; `Ok` means it survives
///   a crash.
/// * Secrets are never logged: [`SecretStoreError`] carries no secret bytes.
#[async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug + 'static {
    /// The set stored under `name`, if any.
    async fn secrets(&self, name: &SecretName) -> Result<Option<Vec<[u8; 32]>>, SecretStoreError>;

    /// Stores `initial` if nothing is stored under `name`, atomically, and
    /// returns the set stored afterwards (`initial`, or the set an earlier
    /// writer stored, unchanged).
    async fn init_secrets(&self, name: &SecretName, initial: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, SecretStoreError>;

    /// Replaces the set under `name` with `secrets` if the stored set
    /// equals `expected` exactly.
    async fn put_secrets(
        &self,
        name: &SecretName,
        secrets: &[[u8; 32]],
        expected: &[[u8; 32]],
    ) -> Result<(), SecretStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_words_with_dashes() {
        assert_eq!(
            SecretName::new("portal-csrf").map(|n| n.to_string()).ok().as_deref(),
            Some("portal-csrf")
        );
        for bad in ["", "Portal", "a b", "a:b", "a/b", "é"] {
            assert!(SecretName::new(bad).is_err(), "{bad:?}");
        }
        assert!(SecretName::new("a".repeat(MAX_SECRET_NAME_LEN)).is_ok());
        assert_eq!(
            SecretName::new(SecretName::portal_csrf().as_str()).ok(),
            Some(SecretName::portal_csrf())
        );
        assert!(SecretName::new("a".repeat(MAX_SECRET_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn sets_encode_in_order_and_bad_lengths_are_corrupt() {
        let set = [[1u8; 32], [2u8; 32]];
        let bytes = encode_secrets(&set);
        assert_eq!(bytes.len(), 64);
        assert_eq!(decode_secrets(&bytes).ok(), Some(set.to_vec()));
        for len in [0, 31, 33, 32 * (MAX_SECRETS + 1)] {
            assert!(
                matches!(decode_secrets(&vec![0; len]), Err(SecretStoreError::Corrupt(_))),
                "{len}"
            );
        }
        assert!(check_secret_count(&[]).is_err());
        assert!(check_secret_count(&[[0; 32]; MAX_SECRETS]).is_ok());
        assert!(matches!(
            check_secret_count(&[[0; 32]; MAX_SECRETS + 1]),
            Err(SecretStoreError::InvalidCount { count: 9 })
        ));
    }
}
