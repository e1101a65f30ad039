//! [`KeyStore`] for [`MemoryStore`]: a map behind a mutex.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::api_keys::{KeyId, KeyRecord, KeyStore, KeyStoreError};
use crate::memory::MemoryStore;

/// Every key by id, and the version of the set.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    by_id: BTreeMap<KeyId, KeyRecord>,
    version: u64,
}

impl MemoryStore {
    // Every method changes whole records under the lock, so a panic
    // elsewhere cannot leave one half-written; take the map over rather
    // than fail.
    fn key_map(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Keys {
    fn insert(&mut self, key: &KeyRecord) {
        self.by_id.insert(key.id.clone(), key.clone());
        self.version += 1;
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyStoreError> {
        let mut keys: Vec<KeyRecord> = self.key_map().by_id.values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn keys_version(&self) -> Result<u64, KeyStoreError> {
        Ok(self.key_map().version)
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let mut keys = self.key_map();
        if keys.by_id.contains_key(&key.id) {
            return Err(KeyStoreError::Exists);
        }
        keys.insert(key);
        Ok(())
    }

    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, KeyStoreError> {
        let mut keys = self.key_map();
        if !keys.by_id.is_empty() {
            return Ok(false);
        }
        keys.insert(key);
        Ok(true)
    }

    async fn delete_key(&self, id: &KeyId) -> Result<bool, KeyStoreError> {
        let mut keys = self.key_map();
        let deleted = keys.by_id.remove(id).is_some();
        if deleted {
            keys.version += 1;
        }
        Ok(deleted)
    }

    async fn touch_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), KeyStoreError> {
        if let Some(key) = self.key_map().by_id.get_mut(id)
            && key.last_used_at.is_none_or(|last| last < at)
        {
            key.last_used_at = Some(at);
        }
        Ok(())
    }
}
