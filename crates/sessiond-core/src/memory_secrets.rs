//! [`SecretStore`] for [`MemoryStore`]: a map of values behind a mutex.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use async_trait::async_trait;

use crate::memory::MemoryStore;
use crate::secrets::{SecretName, SecretStore, SecretStoreError, check_secret_value_len};

/// Every stored secret value, by name.
pub(crate) type Secrets = BTreeMap<SecretName, Vec<u8>>;

impl MemoryStore {
    // Every method replaces whole values under the lock, so a panic
    // elsewhere cannot leave one half-written; take the map over rather
    // than fail.
    fn secret_values(&self) -> MutexGuard<'_, Secrets> {
        self.secrets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SecretStore for MemoryStore {
    async fn secret_value(&self, name: &SecretName) -> Result<Option<Vec<u8>>, SecretStoreError> {
        Ok(self.secret_values().get(name).cloned())
    }

    async fn init_secret_value(&self, name: &SecretName, initial: &[u8]) -> Result<Vec<u8>, SecretStoreError> {
        check_secret_value_len(initial)?;
        // Check and write under one lock: that is the whole atomicity.
        Ok(self
            .secret_values()
            .entry(name.clone())
            .or_insert_with(|| initial.to_vec())
            .clone())
    }

    async fn put_secret_value(&self, name: &SecretName, value: &[u8], expected: &[u8]) -> Result<(), SecretStoreError> {
        check_secret_value_len(value)?;
        let mut values = self.secret_values();
        let Some(stored) = values.get_mut(name) else {
            return Err(SecretStoreError::NotFound);
        };
        if stored.as_slice() != expected {
            return Err(SecretStoreError::Conflict);
        }
        *stored = value.to_vec();
        Ok(())
    }
}
