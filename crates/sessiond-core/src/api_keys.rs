//! API keys: the [`KeyStore`] contract and its record.
//!
//! A key authenticates a backend to the service for one tenant. Keys live
//! in the store, like sessions, so a key made through one node works on
//! every node and a key deleted on one stops working on all of them. The
//! store holds only the key's SHA-256; the key itself is shown once, when it
//! is made, and exists nowhere else.
//!
//! The written semantics are on [`KeyStore`], where users of the crate see
//! them (this module is private).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{NameError, Tenant};
use crate::store::{BoxError, StoreError};

/// Longest key id.
pub const MAX_KEY_ID_LEN: usize = 32;
/// Longest key name, in bytes.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// The public handle of a key, for listing and deleting: 1 to
/// [`MAX_KEY_ID_LEN`] letters, digits, `-` or `_`. Knowing it grants
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(Arc<str>);

impl KeyId {
    /// Checks `value` is a key id.
    pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
        let value = value.into();
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if value.is_empty() {
            return Err(NameError::Empty("key id"));
        }
        if value.len() > MAX_KEY_ID_LEN {
            return Err(NameError::TooLong {
                what: "key id",
                max: MAX_KEY_ID_LEN,
            });
        }
        if !value.chars().all(allowed) {
            return Err(NameError::BadCharacter("key id"));
        }
        Ok(Self(value.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for KeyId {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> Self {
        id.0.to_string()
    }
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// The session calls of its tenant.
    #[default]
    App,
    /// Those, and the administration of its tenant's keys and users.
    Admin,
}

impl KeyRole {
    /// `app` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::App => "app",
            KeyRole::Admin => "admin",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is neither `app` nor `admin`.
#[derive(Debug, thiserror::Error)]
#[error("a key role is \"app\" or \"admin\"")]
pub struct UnknownRole;

impl FromStr for KeyRole {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "app" => Ok(KeyRole::App),
            "admin" => Ok(KeyRole::Admin),
            _ => Err(UnknownRole),
        }
    }
}

/// A key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public handle.
    pub id: KeyId,
    /// The tenant the key acts in.
    pub tenant: Tenant,
    /// A label chosen by whoever made it (may be empty); at most
    /// [`MAX_KEY_NAME_LEN`] bytes, no control characters.
    #[serde(default)]
    pub name: String,
    /// What it may do.
    #[serde(default)]
    pub role: KeyRole,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working, if it does.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When a node last saw it used (recorded at most about once a minute
    /// per node, so a lower bound of the last use within that).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl KeyRecord {
    /// True when the key has an expiry and `now` is at or past it.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// True when `name` may label a key.
pub fn is_valid_key_name(name: &str) -> bool {
    name.len() <= MAX_KEY_NAME_LEN && !name.chars().any(char::is_control)
}

/// The failure of a key-store operation. Never holds a key or its hash.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// Insert refused: a key with this id exists. Nothing was written.
    #[error("a key with this id already exists")]
    Exists,
    /// The engine cannot be reached; try again later.
    #[error("key store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be decoded.
    #[error("stored key record is corrupt")]
    Corrupt(#[source] BoxError),
    /// Any other engine failure.
    #[error("key store failed")]
    Backend(#[source] BoxError),
}

impl KeyStoreError {
    /// True for [`KeyStoreError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyStoreError::Unavailable(_))
    }
}

/// A session-store failure met by a key-store operation (the engines share
/// their connection and error handling), with its cause kept.
impl From<StoreError> for KeyStoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => KeyStoreError::Unavailable(source),
            StoreError::Corrupt(source) => KeyStoreError::Corrupt(source),
            StoreError::Backend(source) => KeyStoreError::Backend(source),
            other => KeyStoreError::Backend(Box::new(other)),
        }
    }
}

/// Where API keys live.
///
/// # Semantics
///
/// Checked by `sessiond_testkit::key_store_conformance!`:
///
/// * **Keys.** A record is found by its [`KeyId`], across all tenants (ids
///   are random and unique in the store, whatever the tenant).
/// * **Insert** ([`KeyStore::insert_key`]) fails with
///   [`KeyStoreError::Exists`] when the id is taken, and then writes
///   nothing. The record is stored as given, `last_used_at` included.
/// * **First key** ([`KeyStore::insert_first_key`]) inserts only if the
///   store holds no key at all, of any tenant, in one atomic step: of any
///   number of racing first-key inserts, on any number of nodes, at most
///   one writes. `Ok(false)` when a key existed.
/// * **List** ([`KeyStore::list_keys`]) returns every key of every tenant
///   (expired ones too: expiry is the caller's check), sorted by
///   `created_at`, then id.
/// * **Delete** ([`KeyStore::delete_key`]) removes the record; `Ok(false)`
///   when there was none. Deleted keys are gone, not marked.
/// * **Version** ([`KeyStore::keys_version`]) changes with every insert and
///   delete that wrote, so a node can poll it cheaply and list again only
///   on a change. Touches do not change it. It starts at 0 on an empty store
///   and never goes back to a value it had.
/// * **Touch** ([`KeyStore::touch_key`]) sets `last_used_at` to `at` if that
///   is later than the stored one (or none is stored), so racing touches
///   from several nodes keep the latest; nothing happens for a missing id.
/// * **Atomicity and durability** are those of the session methods: each
///   call is atomic across every handle and process; `Ok` means it survives
///   a crash.
/// * No engine logs a key hash: [`KeyStoreError`] carries none.
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug + 'static {
    /// Every key, sorted by creation time, then id.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyStoreError>;

    /// A number that changes whenever a key is inserted or deleted.
    async fn keys_version(&self) -> Result<u64, KeyStoreError>;

    /// Adds a key; [`KeyStoreError::Exists`] if its id is taken.
    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError>;

    /// Adds `key` only if no key exists at all; `Ok(false)` otherwise.
    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, KeyStoreError>;

    /// Removes a key; `Ok(false)` if there was none.
    async fn delete_key(&self, id: &KeyId) -> Result<bool, KeyStoreError>;

    /// Records a use of the key at `at`, keeping the latest.
    async fn touch_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), KeyStoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_words_of_url_safe_characters() {
        for good in ["a", "Ab-_9", &"x".repeat(MAX_KEY_ID_LEN)] {
            assert_eq!(KeyId::new(good).map(|id| id.to_string()).ok().as_deref(), Some(good));
        }
        for bad in ["", "a b", "a/b", "é", "a:b", &"x".repeat(MAX_KEY_ID_LEN + 1)] {
            assert!(KeyId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_read_and_write_as_lower_case_words() {
        for role in [KeyRole::App, KeyRole::Admin] {
            assert_eq!(role.as_str().parse::<KeyRole>().ok(), Some(role));
        }
        assert!("Admin".parse::<KeyRole>().is_err());
        assert_eq!(KeyRole::default(), KeyRole::App);
    }

    #[test]
    fn names_refuse_control_characters_and_length() {
        assert!(is_valid_key_name(""));
        assert!(is_valid_key_name("billing backend"));
        assert!(!is_valid_key_name("a\nb"));
        assert!(!is_valid_key_name(&"n".repeat(MAX_KEY_NAME_LEN + 1)));
    }

    #[test]
    fn expiry_is_reached_at_the_instant() {
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let mut key = KeyRecord {
            id: KeyId::new("k").unwrap(),
            tenant: Tenant::new("t").unwrap(),
            name: String::new(),
            role: KeyRole::App,
            sha256: "00".repeat(32),
            created_at: now,
            expires_at: None,
            last_used_at: None,
        };
        assert!(!key.is_expired(now));
        key.expires_at = Some(now);
        assert!(key.is_expired(now));
        assert!(!key.is_expired(now - time::Duration::SECOND));
    }
}
