//! Portal accounts: the [`UserStore`] contract and its record.
//!
//! Sessions do not need accounts (an application that checks passwords
//! itself only names a [`Subject`]), but sessiond's own login portal does,
//! and they must live where the sessions live so every node of a cluster
//! sees the same accounts. A user's name is the subject of their sessions.
//!
//! The written semantics are on [`UserStore`], where users of the crate
//! see them (this module is private).

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{Subject, Tenant};
use crate::store::{BoxError, StoreError};

/// An account of the login portal.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Namespace the account and its sessions belong to.
    pub tenant: Tenant,
    /// The login name, also the subject of the user's sessions.
    pub name: Subject,
    /// Argon2id hash in PHC string form.
    pub password_hash: String,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the password was last set.
    #[serde(with = "time::serde::rfc3339")]
    pub password_changed_at: OffsetDateTime,
    /// Incremented by every update; the compare-and-set key.
    pub version: u64,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("tenant", &self.tenant)
            .field("name", &self.name)
            .field("disabled", &self.disabled)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The failure of a user-store operation.
#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    /// Insert refused: a user with this tenant and name exists. Nothing was written.
    #[error("a user with this name already exists")]
    Exists,
    /// Compare-and-set refused: the stored version differs. Nothing was written.
    #[error("the user changed concurrently (stored version {current})")]
    VersionConflict {
        /// The version in the store.
        current: u64,
    },
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// The engine cannot be reached; try again later.
    #[error("user store unavailable")]
    Unavailable(#[source] BoxError),
    /// A stored record could not be decoded.
    #[error("stored user record is corrupt")]
    Corrupt(#[source] BoxError),
    /// Any other engine failure.
    #[error("user store failed")]
    Backend(#[source] BoxError),
}

impl UserStoreError {
    /// True for [`UserStoreError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, UserStoreError::Unavailable(_))
    }
}

/// A session-store failure met by a user-store operation (the engines share
/// their connection and error handling), with its cause kept.
impl From<StoreError> for UserStoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => UserStoreError::Unavailable(source),
            StoreError::Corrupt(source) => UserStoreError::Corrupt(source),
            StoreError::Backend(source) => UserStoreError::Backend(source),
            other => UserStoreError::Backend(Box::new(other)),
        }
    }
}

/// Where portal accounts live.
///
/// # Semantics
///
/// Checked by `sessiond_testkit::user_store_conformance!`:
///
/// * **Keys.** A user is found by `(tenant, name)`; names are exact (no case
///   folding: the portal decides what a name is before it gets here).
/// * **Insert** fails with [`UserStoreError::Exists`] when the key is taken,
///   and then writes nothing.
/// * **Update** is a compare-and-set on `version`: it writes the whole record
///   only if the stored version equals `expected_version`, else
///   [`UserStoreError::VersionConflict`]; [`UserStoreError::NotFound`] when
///   there is no such user. The caller sets the new version.
/// * **List** returns a tenant's users sorted by name, disabled ones included.
/// * **Delete** removes the user (from the list too) and answers whether
///   there was one; the name is free again afterwards.
/// * **Atomicity and durability** are those of the session methods: each call
///   is atomic across every handle and process; `Ok` means it survives a crash.
/// * The password hash is stored as given (a PHC string) and never logged.
#[async_trait]
pub trait UserStore: Send + Sync + fmt::Debug + 'static {
    /// The user `(tenant, name)`, if any.
    async fn get_user(&self, tenant: &Tenant, name: &Subject) -> Result<Option<UserRecord>, UserStoreError>;

    /// Adds a user; [`UserStoreError::Exists`] if the name is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<(), UserStoreError>;

    /// Replaces the user if its stored version is `expected_version`.
    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> Result<(), UserStoreError>;

    /// A tenant's users, sorted by name.
    async fn list_users(&self, tenant: &Tenant) -> Result<Vec<UserRecord>, UserStoreError>;

    /// Removes the user `(tenant, name)`; `Ok(false)` if there was none.
    async fn delete_user(&self, tenant: &Tenant, name: &Subject) -> Result<bool, UserStoreError>;
}
