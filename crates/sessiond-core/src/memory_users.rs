//! [`UserStore`] for [`MemoryStore`]: a sorted map behind a mutex.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use async_trait::async_trait;

use crate::ids::{Subject, Tenant};
use crate::memory::MemoryStore;
use crate::users::{UserRecord, UserStore, UserStoreError};

/// The accounts of every tenant, keyed so a tenant's users are one range.
pub(crate) type Users = BTreeMap<(Tenant, Subject), UserRecord>;

impl MemoryStore {
    // Every method writes whole records under the lock, so a panic elsewhere
    // cannot leave one half-written; take the map over rather than fail.
    fn users(&self) -> MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn get_user(&self, tenant: &Tenant, name: &Subject) -> Result<Option<UserRecord>, UserStoreError> {
        Ok(self.users().get(&(tenant.clone(), name.clone())).cloned())
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), UserStoreError> {
        let mut users = self.users();
        let key = (user.tenant.clone(), user.name.clone());
        if users.contains_key(&key) {
            return Err(UserStoreError::Exists);
        }
        users.insert(key, user.clone());
        Ok(())
    }

    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> Result<(), UserStoreError> {
        let mut users = self.users();
        let Some(stored) = users.get_mut(&(user.tenant.clone(), user.name.clone())) else {
            return Err(UserStoreError::NotFound);
        };
        if stored.version != expected_version {
            return Err(UserStoreError::VersionConflict {
                current: stored.version,
            });
        }
        *stored = user.clone();
        Ok(())
    }

    async fn list_users(&self, tenant: &Tenant) -> Result<Vec<UserRecord>, UserStoreError> {
        Ok(self
            .users()
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, user)| user.clone())
            .collect())
    }

    async fn delete_user(&self, tenant: &Tenant, name: &Subject) -> Result<bool, UserStoreError> {
        Ok(self.users().remove(&(tenant.clone(), name.clone())).is_some())
    }
}
