//! [`SecretStore`] for [`MemoryStore`]: a map behind a mutex.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use async_trait::async_trait;

use crate::memory::MemoryStore;
use crate::secrets::{SecretName, SecretStore, SecretStoreError, check_secret_count};

/// Every secret set, by name.
pub(crate) type Secrets = BTreeMap<SecretName, Vec<[u8; 32]>>;

impl MemoryStore {
    // Every method replaces whole sets under the lock, so a panic elsewhere
    // cannot leave one half-written; take the map over rather than fail.
    fn secret_sets(&self) -> MutexGuard<'_, Secrets> {
        self.secrets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    async fn secrets(&self, name: &SecretName) -> Result<Option<Vec<[u8; 32]>>, SecretStoreError> {
        Ok(self.secret_sets().get(name).cloned())
    }

    async fn init_secrets(&self, name: &SecretName, initial: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, SecretStoreError> {
        check_secret_count(initial)?;
        // Check and write under one lock: that is the whole atomicity.
        Ok(self
            .secret_sets()
            .entry(name.clone())
            .or_insert_with(|| initial.to_vec())
            .clone())
    }

    async fn put_secrets(
        &self,
        name: &SecretName,
        secrets: &[[u8; 32]],
        expected: &[[u8; 32]],
    ) -> Result<(), SecretStoreError> {
        check_secret_count(secrets)?;
        let mut sets = self.secret_sets();
        let Some(stored) = sets.get_mut(name) else {
            return Err(SecretStoreError::NotFound);
        };
        if stored.as_slice() != expected {
            return Err(SecretStoreError::Conflict);
        }
        *stored = secrets.to_vec();
        Ok(())
    }
}
