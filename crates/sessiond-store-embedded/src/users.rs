//! [`UserStore`] for [`EmbeddedStore`]: portal accounts in the `users`
//! table, keyed by (tenant, name), in the compact layout of `codec.rs`.
//!
//! Writes are ops of the one writer (`writer.rs`): they share its group
//! commit, are never split off with the touches, so each is acknowledged
//! only after a durable commit, and redb's single write transaction makes
//! the check and the write of an insert or a compare-and-set one step.
//! They change no session record, so the read cache (sessions only) and its
//! epoch protocol see an empty change set. Reads run in their own read
//! transaction on the caller's task, as session reads do.

use redb::{ReadableDatabase, ReadableTable};
use sessiond_core::{StoreError, Subject, Tenant, UserRecord, UserStore, UserStoreError, async_trait};

use crate::EmbeddedStore;
use crate::codec::{self, DecodeError};
use crate::error::engine;
use crate::ops::{Done, Op, Outcome};
use crate::tables::{Tables, USERS, open_optional};

/// A stored record that does not belong under its key.
#[derive(Debug, thiserror::Error)]
#[error("user record stored under ({key_tenant}, {key_name}) names another user")]
struct MisplacedUser {
    key_tenant: String,
    key_name: String,
}

/// Decodes the record stored under `(tenant, name)`, checking that it is
/// that user's.
pub(crate) fn decode_at(tenant: &str, name: &str, bytes: &[u8]) -> Result<UserRecord, StoreError> {
    let user = codec::decode_user(bytes).map_err(|e: DecodeError| StoreError::Corrupt(Box::new(e)))?;
    if user.tenant.as_str() != tenant || user.name.as_str() != name {
        return Err(StoreError::Corrupt(Box::new(MisplacedUser {
            key_tenant: tenant.to_owned(),
            key_name: name.to_owned(),
        })));
    }
    Ok(user)
}

/// Insert, inside the writer's transaction: refused with `Exists` (writing
/// nothing) when the key is taken.
pub(crate) fn insert(t: &mut Tables<'_>, user: &UserRecord) -> Result<Outcome, StoreError> {
    let mut users = t.txn.open_table(USERS).map_err(engine)?;
    let key = (user.tenant.as_str(), user.name.as_str());
    if users.get(key).map_err(engine)?.is_some() {
        return Ok(Ok(Done::UserRefused(UserStoreError::Exists)));
    }
    users.insert(key, codec::encode_user(user).as_slice()).map_err(engine)?;
    Ok(Ok(Done::UserWritten))
}

/// Compare-and-set on `version`, inside the writer's transaction.
pub(crate) fn update(t: &mut Tables<'_>, user: &UserRecord, expected_version: u64) -> Result<Outcome, StoreError> {
    let mut users = t.txn.open_table(USERS).map_err(engine)?;
    let key = (user.tenant.as_str(), user.name.as_str());
    let stored = match users.get(key).map_err(engine)? {
        None => return Ok(Ok(Done::UserRefused(UserStoreError::NotFound))),
        Some(bytes) => decode_at(key.0, key.1, bytes.value()),
    };
    let stored = match stored {
        Ok(stored) => stored,
        // A refusal: nothing is written over a record we cannot read.
        Err(corrupt) => return Ok(Err(corrupt)),
    };
    if stored.version != expected_version {
        return Ok(Ok(Done::UserRefused(UserStoreError::VersionConflict {
            current: stored.version,
        })));
    }
    users.insert(key, codec::encode_user(user).as_slice()).map_err(engine)?;
    Ok(Ok(Done::UserWritten))
}

/// Delete, inside the writer's transaction.
pub(crate) fn delete(t: &mut Tables<'_>, tenant: &Tenant, name: &Subject) -> Result<Outcome, StoreError> {
    let mut users = t.txn.open_table(USERS).map_err(engine)?;
    let removed = users
        .remove((tenant.as_str(), name.as_str()))
        .map_err(engine)?
        .is_some();
    Ok(Ok(Done::UserDeleted(removed)))
}

impl EmbeddedStore {
    async fn write_user(&self, op: Op) -> Result<(), UserStoreError> {
        match self.write(op).await.map_err(UserStoreError::from)? {
            Done::UserWritten => Ok(()),
            Done::UserRefused(refusal) => Err(refusal),
            other => Err(UserStoreError::Backend(
                format!("writer answered a user write with {other:?}").into(),
            )),
        }
    }

    /// Runs `read` on the `users` table of a fresh snapshot; a file that has
    /// no such table yet (it is made at open, so only a file changed by
    /// hand) reads as empty.
    fn read_users<T>(
        &self,
        empty: T,
        read: impl FnOnce(&redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>) -> Result<T, StoreError>,
    ) -> Result<T, UserStoreError> {
        let txn = self
            .database()
            .begin_read()
            .map_err(|e| UserStoreError::from(engine(e)))?;
        let Some(users) = open_optional(&txn, USERS).map_err(UserStoreError::from)? else {
            return Ok(empty);
        };
        read(&users).map_err(UserStoreError::from)
    }
}

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn get_user(&self, tenant: &Tenant, name: &Subject) -> Result<Option<UserRecord>, UserStoreError> {
        let (tenant, name) = (tenant.as_str(), name.as_str());
        self.read_users(None, |users| match users.get((tenant, name)).map_err(engine)? {
            Some(bytes) => decode_at(tenant, name, bytes.value()).map(Some),
            None => Ok(None),
        })
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), UserStoreError> {
        self.write_user(Op::InsertUser(Box::new(user.clone()))).await
    }

    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> Result<(), UserStoreError> {
        self.write_user(Op::UpdateUser {
            user: Box::new(user.clone()),
            expected_version,
        })
        .await
    }

    async fn list_users(&self, tenant: &Tenant) -> Result<Vec<UserRecord>, UserStoreError> {
        let tenant = tenant.as_str();
        self.read_users(Vec::new(), |users| {
            let mut listed = Vec::new();
            // A tenant's keys are one contiguous run, in byte order of the names.
            for entry in users.range((tenant, "")..).map_err(engine)? {
                let (key, value) = entry.map_err(engine)?;
                let (key_tenant, key_name) = key.value();
                if key_tenant != tenant {
                    break;
                }
                listed.push(decode_at(key_tenant, key_name, value.value())?);
            }
            Ok(listed)
        })
    }

    async fn delete_user(&self, tenant: &Tenant, name: &Subject) -> Result<bool, UserStoreError> {
        let op = Op::DeleteUser {
            tenant: tenant.clone(),
            name: name.clone(),
        };
        match self.write(op).await.map_err(UserStoreError::from)? {
            Done::UserDeleted(removed) => Ok(removed),
            other => Err(UserStoreError::Backend(
                format!("writer answered a user delete with {other:?}").into(),
            )),
        }
    }
}
