//! Shared secrets: the [`SecretStore`] contract.
//!
//! Some secrets must be the same on every node of a cluster: the portal's
//! CSRF tokens are signed on one node and checked on another. They used to
//! live in a file each node had to be given by hand; they now live where the
//! sessions live, so nodes over one store agree on them with no copying.
//!
//! Under each [`SecretName`] the store keeps one opaque value: 1 to
//! [`MAX_SECRET_VALUE_LEN`] bytes it never interprets (a sealed signing key
//! is one). Engines implement only the value methods, so the rules of init
//! and compare-and-set are written, and tested, once for every use.
//!
//! A secret set is one such use, given as provided methods on top: an
//! ordered list of one to [`MAX_SECRETS`] secrets of 32 bytes each, stored as
//! the value [`encode_secrets`] makes. The first signs new values, every one
//! verifies, so a set is rotated by putting a new secret in front and
//! dropping the old one later.
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

/// Longest value one name may hold, in bytes: room for a sealed signing
/// key and its metadata, small enough to read on every start.
pub const MAX_SECRET_VALUE_LEN: usize = 16 * 1024;

/// Longest [`SecretName`], in bytes.
pub const MAX_SECRET_NAME_LEN: usize = 64;

/// The name of a stored secret value: 1 to [`MAX_SECRET_NAME_LEN`] bytes of
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

    /// `access-token-keys`: the record of the access-token signing keys
    /// ([`SigningKeys`](crate::SigningKeys)). Like
    /// [`SecretName::portal_csrf`], a literal that passes
    /// [`SecretName::new`], which a test checks.
    pub fn signing_keys() -> Self {
        Self(Arc::from(crate::signing_keys::SIGNING_KEYS))
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
    /// A write of an empty value or one over [`MAX_SECRET_VALUE_LEN`]
    /// bytes. Nothing was written.
    #[error("a secret value holds 1 to {MAX_SECRET_VALUE_LEN} bytes, not {len}")]
    InvalidLength {
        /// How many bytes were given.
        len: usize,
    },
    /// A write of zero or too many secrets. Nothing was written.
    #[error("a secret set holds 1 to {MAX_SECRETS} secrets, not {count}")]
    InvalidCount {
        /// How many were given.
        count: usize,
    },
    /// Compare-and-set refused: the stored value differs from the expected
    /// one. Nothing was written.
    #[error("the stored secret changed concurrently")]
    Conflict,
    /// Compare-and-set refused: nothing is stored under the name.
    #[error("no secret stored under the name")]
    NotFound,
    /// The engine cannot be reached; try again later.
    #[error("secret store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored value could not be read, or is no secret set where one
    /// was asked for.
    #[error("stored secret is corrupt")]
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

/// Refuses an empty value or one over [`MAX_SECRET_VALUE_LEN`] bytes: every
/// engine calls it before writing, so the rule is written once.
pub fn check_secret_value_len(value: &[u8]) -> Result<(), SecretStoreError> {
    if (1..=MAX_SECRET_VALUE_LEN).contains(&value.len()) {
        Ok(())
    } else {
        Err(SecretStoreError::InvalidLength { len: value.len() })
    }
}

/// Refuses a set of zero or more than [`MAX_SECRETS`] secrets: the set
/// methods of [`SecretStore`] call it before writing, so the rule is written
/// once.
pub fn check_secret_count(secrets: &[[u8; 32]]) -> Result<(), SecretStoreError> {
    if (1..=MAX_SECRETS).contains(&secrets.len()) {
        Ok(())
    } else {
        Err(SecretStoreError::InvalidCount { count: secrets.len() })
    }
}

/// The value a set is stored as: the secrets one after another.
pub fn encode_secrets(secrets: &[[u8; 32]]) -> Vec<u8> {
    secrets.concat()
}

/// A stored value whose length is no whole, allowed number of secrets.
#[derive(Debug, thiserror::Error)]
#[error("a stored secret set of {len} bytes is not 1 to {MAX_SECRETS} secrets of 32 bytes")]
pub struct BadSecretBytes {
    len: usize,
}

/// Reads bytes written by [`encode_secrets`] back; any other length is
/// [`SecretStoreError::Corrupt`].
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
/// * **Keys.** A value is found by its [`SecretName`]; names are exact and
///   values under different names never affect each other.
/// * **Values are opaque.** An engine stores bytes and gives them back
///   exactly, whatever they hold (zero bytes, invalid UTF-8); it implements
///   only the three value methods. The set methods are provided on top and
///   store [`encode_secrets`] of the set as the value, so both views of one
///   name agree: a set reads back as a value of 32 bytes per secret, and a
///   value of any other length reads as a set as
///   [`SecretStoreError::Corrupt`].
/// * **Sizes** are enforced by the store: a write of an empty value or one
///   over [`MAX_SECRET_VALUE_LEN`] bytes is refused with
///   [`SecretStoreError::InvalidLength`], and a write of zero or more than
///   [`MAX_SECRETS`] secrets with [`SecretStoreError::InvalidCount`], before
///   anything is written (the `expected` argument of a compare-and-set is
///   only compared, never checked). Whether the bytes are random enough, or
///   sealed, is the caller's business: the store keeps bytes.
/// * **Init** ([`SecretStore::init_secret_value`],
///   [`SecretStore::init_secrets`]) writes `initial` only if nothing is
///   stored under the name, and returns what is stored afterwards, in one
///   atomic step: of any number of racing inits, on any number of nodes,
///   exactly one writes and all return its value (first writer wins).
/// * **Replace** ([`SecretStore::put_secret_value`],
///   [`SecretStore::put_secrets`]) is a compare-and-set on the whole value:
///   it writes only if the stored bytes equal `expected` byte for byte (for
///   a set: same secrets, same order), else [`SecretStoreError::Conflict`];
///   [`SecretStoreError::NotFound`] when nothing is stored (a value is
///   created by init only).
/// * **Order** is kept: a value, and so a set, reads back exactly as
///   written.
/// * Values are never deleted and never expire.
/// * **Atomicity and durability** are those of the session methods: each
///   call is atomic across every handle and process; `Ok` means it survives
///   a crash.
/// * Secrets are never logged: [`SecretStoreError`] carries no secret bytes.
#[async_trait]
pub trait SecretStore: Send + Sync + fmt::Debug + 'static {
    /// The value stored under `name`, if any.
    async fn secret_value(&self, name: &SecretName) -> Result<Option<Vec<u8>>, SecretStoreError>;

    /// Stores `initial` if nothing is stored under `name`, atomically, and
    /// returns the value stored afterwards (`initial`, or the value an
    /// earlier writer stored, unchanged). Refuses an `initial` of a length
    /// [`check_secret_value_len`] refuses.
    async fn init_secret_value(&self, name: &SecretName, initial: &[u8]) -> Result<Vec<u8>, SecretStoreError>;

    /// Replaces the value under `name` with `value` if the stored value
    /// equals `expected` byte for byte ([`SecretStoreError::Conflict`]
    /// otherwise, [`SecretStoreError::NotFound`] when nothing is stored).
    /// Refuses a `value` of a length [`check_secret_value_len`] refuses;
    /// `expected` is only compared.
    async fn put_secret_value(&self, name: &SecretName, value: &[u8], expected: &[u8]) -> Result<(), SecretStoreError>;

    /// The set stored under `name`, if any: [`decode_secrets`] of its value.
    async fn secrets(&self, name: &SecretName) -> Result<Option<Vec<[u8; 32]>>, SecretStoreError> {
        match self.secret_value(name).await? {
            Some(value) => decode_secrets(&value).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `initial` if nothing is stored under `name`, atomically, and
    /// returns the set stored afterwards (`initial`, or the set an earlier
    /// writer stored, unchanged). Refuses a set [`check_secret_count`]
    /// refuses.
    async fn init_secrets(&self, name: &SecretName, initial: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, SecretStoreError> {
        check_secret_count(initial)?;
        let stored = self.init_secret_value(name, &encode_secrets(initial)).await?;
        decode_secrets(&stored)
    }

    /// Replaces the set under `name` with `secrets` if the stored set
    /// equals `expected` exactly. Refuses a `secrets` set
    /// [`check_secret_count`] refuses.
    async fn put_secrets(
        &self,
        name: &SecretName,
        secrets: &[[u8; 32]],
        expected: &[[u8; 32]],
    ) -> Result<(), SecretStoreError> {
        check_secret_count(secrets)?;
        self.put_secret_value(name, &encode_secrets(secrets), &encode_secrets(expected))
            .await
    }
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
        assert_eq!(
            SecretName::new(SecretName::signing_keys().as_str()).ok(),
            Some(SecretName::signing_keys())
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

    #[test]
    fn values_hold_one_to_the_most_bytes() {
        assert!(check_secret_value_len(&[0]).is_ok());
        assert!(check_secret_value_len(&vec![0; MAX_SECRET_VALUE_LEN]).is_ok());
        assert!(matches!(
            check_secret_value_len(&[]),
            Err(SecretStoreError::InvalidLength { len: 0 })
        ));
        assert!(matches!(
            check_secret_value_len(&vec![0; MAX_SECRET_VALUE_LEN + 1]),
            Err(SecretStoreError::InvalidLength { len }) if len == MAX_SECRET_VALUE_LEN + 1
        ));
        // The largest set fits in a value.
        assert!(check_secret_value_len(&encode_secrets(&[[0; 32]; MAX_SECRETS])).is_ok());
    }
}
