//! [`KeyStore`] for [`EmbeddedStore`]: API keys in the `api_keys` table,
//! keyed by id, each stored as its JSON record; the version of the set in
//! `sessiond_meta` under `keys_version`.
//!
//! Writes are ops of the one writer (`writer.rs`), as user and secret
//! writes are: they share its group commit and are acknowledged only after
//! a durable commit, and redb's single write transaction makes the check
//! and the write of an insert (or of the first key: "is the table empty?")
//! one step. They change no session record, so the read cache sees an empty
//! change set. The table is made by the first write: a read of a file
//! without it finds no key, which is what it means.
//!
//! JSON rather than the compact layout of `codec.rs`: keys are few and are
//! read by a node's refresher after a change, never per request.

use redb::{ReadableDatabase, ReadableTable};
use sessiond_core::{KeyId, KeyRecord, KeyStore, KeyStoreError, StoreError, async_trait};
use time::OffsetDateTime;

use crate::EmbeddedStore;
use crate::error::engine;
use crate::ops::{Done, Op, Outcome};
use crate::tables::{API_KEYS, KEYS_VERSION, META, Tables, open_optional};

fn corrupt(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Corrupt(Box::new(error))
}

fn decode(bytes: &[u8]) -> Result<KeyRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(corrupt)
}

fn encode(key: &KeyRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(key).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// Moves the version on, inside the writer's transaction.
fn bump_version(t: &mut Tables<'_>) -> Result<(), StoreError> {
    let mut meta = t.txn.open_table(META).map_err(engine)?;
    let current = meta.get(KEYS_VERSION).map_err(engine)?.map_or(0, |v| v.value());
    meta.insert(KEYS_VERSION, current.wrapping_add(1)).map_err(engine)?;
    Ok(())
}

/// Insert, inside the writer's transaction. With `only_if_none`, writes
/// only into an empty table and answers `KeyInserted(false)` otherwise;
/// without it, a taken id is a refusal.
pub(crate) fn insert(t: &mut Tables<'_>, key: &KeyRecord, only_if_none: bool) -> Result<Outcome, StoreError> {
    let bytes = encode(key)?;
    {
        let mut table = t.txn.open_table(API_KEYS).map_err(engine)?;
        if only_if_none && table.first().map_err(engine)?.is_some() {
            return Ok(Ok(Done::KeyInserted(false)));
        }
        if table.get(key.id.as_str()).map_err(engine)?.is_some() {
            return Ok(Ok(Done::KeyRefused(KeyStoreError::Exists)));
        }
        table.insert(key.id.as_str(), bytes.as_slice()).map_err(engine)?;
    }
    bump_version(t)?;
    Ok(Ok(Done::KeyInserted(true)))
}

/// Delete, inside the writer's transaction.
pub(crate) fn delete(t: &mut Tables<'_>, id: &KeyId) -> Result<Outcome, StoreError> {
    let deleted = {
        let mut table = t.txn.open_table(API_KEYS).map_err(engine)?;
        table.remove(id.as_str()).map_err(engine)?.is_some()
    };
    if deleted {
        bump_version(t)?;
    }
    Ok(Ok(Done::KeyDeleted(deleted)))
}

/// Touch, inside the writer's transaction: the later `last_used_at` wins.
pub(crate) fn touch(t: &mut Tables<'_>, id: &KeyId, at: OffsetDateTime) -> Result<Outcome, StoreError> {
    let mut table = t.txn.open_table(API_KEYS).map_err(engine)?;
    let stored = match table.get(id.as_str()).map_err(engine)? {
        Some(bytes) => decode(bytes.value()),
        None => return Ok(Ok(Done::KeyTouched)),
    };
    // A refusal: nothing is written over a record we cannot read.
    let mut key = match stored {
        Ok(key) => key,
        Err(corrupt) => return Ok(Err(corrupt)),
    };
    if key.last_used_at.is_some_and(|last| last >= at) {
        return Ok(Ok(Done::KeyTouched));
    }
    key.last_used_at = Some(at);
    table.insert(id.as_str(), encode(&key)?.as_slice()).map_err(engine)?;
    Ok(Ok(Done::KeyTouched))
}

impl EmbeddedStore {
    async fn write_key(&self, op: Op) -> Result<Done, KeyStoreError> {
        match self.write(op).await.map_err(KeyStoreError::from)? {
            Done::KeyRefused(refusal) => Err(refusal),
            done => Ok(done),
        }
    }
}

fn unexpected(done: &Done) -> KeyStoreError {
    KeyStoreError::Backend(format!("writer answered a key write with {done:?}").into())
}

#[async_trait]
impl KeyStore for EmbeddedStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyStoreError> {
        let txn = self
            .database()
            .begin_read()
            .map_err(|e| KeyStoreError::from(engine(e)))?;
        let Some(table) = open_optional(&txn, API_KEYS).map_err(KeyStoreError::from)? else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        for entry in table.iter().map_err(|e| KeyStoreError::from(engine(e)))? {
            let (_, value) = entry.map_err(|e| KeyStoreError::from(engine(e)))?;
            keys.push(decode(value.value())?);
        }
        keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(keys)
    }

    async fn keys_version(&self) -> Result<u64, KeyStoreError> {
        let txn = self
            .database()
            .begin_read()
            .map_err(|e| KeyStoreError::from(engine(e)))?;
        let meta = txn.open_table(META).map_err(|e| KeyStoreError::from(engine(e)))?;
        let version = meta.get(KEYS_VERSION).map_err(|e| KeyStoreError::from(engine(e)))?;
        Ok(version.map_or(0, |v| v.value()))
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        let op = Op::InsertKey {
            key: Box::new(key.clone()),
            only_if_none: false,
        };
        match self.write_key(op).await? {
            Done::KeyInserted(true) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, KeyStoreError> {
        let op = Op::InsertKey {
            key: Box::new(key.clone()),
            only_if_none: true,
        };
        match self.write_key(op).await? {
            Done::KeyInserted(written) => Ok(written),
            other => Err(unexpected(&other)),
        }
    }

    async fn delete_key(&self, id: &KeyId) -> Result<bool, KeyStoreError> {
        match self.write_key(Op::DeleteKey(id.clone())).await? {
            Done::KeyDeleted(deleted) => Ok(deleted),
            other => Err(unexpected(&other)),
        }
    }

    async fn touch_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), KeyStoreError> {
        match self.write_key(Op::TouchKey { id: id.clone(), at }).await? {
            Done::KeyTouched => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}
