//! [`KeyStore`] for [`PostgresStore`]: API keys in `api_keys` (migration
//! 5), one row per key, and the version of the set in the one row of
//! `api_keys_version`.
//!
//! An insert is a transaction that first locks the version row: inserts and
//! deletes on every node queue there, and under READ COMMITTED each later
//! statement sees what the previous holder committed, so a first-key insert
//! that finds the table empty really is first. A delete is one statement
//! (delete, and move the version on if a row went). A touch is one
//! conditional `UPDATE`, so the latest use wins without a lock.

use async_trait::async_trait;
use sessiond_core::{KeyId, KeyRecord, KeyRole, KeyStore, KeyStoreError, StoreError, Tenant};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::error::{corrupt, store_error};
use crate::row::get;
use crate::store::PostgresStore;

const COLUMNS: &str = "id, tenant, name, role, sha256, created_at, expires_at, last_used_at";

/// Reads a key from a row selected with [`COLUMNS`].
fn decode(row: &Row) -> Result<KeyRecord, StoreError> {
    Ok(KeyRecord {
        id: KeyId::new(get::<&str>(row, 0, "id")?).map_err(|e| corrupt("id", e))?,
        tenant: Tenant::new(get::<&str>(row, 1, "tenant")?).map_err(|e| corrupt("tenant", e))?,
        name: get(row, 2, "name")?,
        role: get::<&str>(row, 3, "role")?
            .parse::<KeyRole>()
            .map_err(|e| corrupt("role", e))?,
        sha256: get(row, 4, "sha256")?,
        created_at: get(row, 5, "created_at")?,
        expires_at: get(row, 6, "expires_at")?,
        last_used_at: get(row, 7, "last_used_at")?,
    })
}

/// What an insert found.
enum Inserted {
    Written,
    Taken,
    Exists,
}

impl PostgresStore {
    async fn insert_api_key(&self, key: &KeyRecord, first: bool) -> Result<Inserted, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(store_error)?;
        let lock = tx
            .prepare_cached("SELECT version FROM api_keys_version FOR UPDATE")
            .await
            .map_err(store_error)?;
        tx.query_one(&lock, &[]).await.map_err(store_error)?;
        if first {
            let any = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM api_keys)")
                .await
                .map_err(store_error)?;
            let exists: bool = tx
                .query_one(&any, &[])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(store_error)?;
            if exists {
                return Ok(Inserted::Taken);
            }
        }
        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING"
            ))
            .await
            .map_err(store_error)?;
        let written = tx
            .execute(
                &insert,
                &[
                    &key.id.as_str(),
                    &key.tenant.as_str(),
                    &key.name,
                    &key.role.as_str(),
                    &key.sha256,
                    &key.created_at,
                    &key.expires_at,
                    &key.last_used_at,
                ],
            )
            .await
            .map_err(store_error)?;
        if written == 0 {
            return Ok(Inserted::Exists);
        }
        let bump = tx
            .prepare_cached("UPDATE api_keys_version SET version = version + 1")
            .await
            .map_err(store_error)?;
        tx.execute(&bump, &[]).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Inserted::Written)
    }

    async fn list_api_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let client = self.client().await?;
        let select = client
            .prepare_cached(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY created_at, id"))
            .await
            .map_err(store_error)?;
        let rows = client.query(&select, &[]).await.map_err(store_error)?;
        rows.iter().map(decode).collect()
    }

    async fn api_keys_version(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let select = client
            .prepare_cached("SELECT version FROM api_keys_version")
            .await
            .map_err(store_error)?;
        let version: i64 = client
            .query_one(&select, &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(store_error)?;
        u64::try_from(version).map_err(|e| corrupt("version", e))
    }

    async fn delete_api_key(&self, id: &KeyId) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let delete = client
            .prepare_cached(
                "WITH gone AS (DELETE FROM api_keys WHERE id = $1 RETURNING 1) \
                 UPDATE api_keys_version SET version = version + 1 WHERE EXISTS (SELECT 1 FROM gone)",
            )
            .await
            .map_err(store_error)?;
        let bumped = client.execute(&delete, &[&id.as_str()]).await.map_err(store_error)?;
        Ok(bumped == 1)
    }

    async fn touch_api_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), StoreError> {
        let client = self.client().await?;
        let touch = client
            .prepare_cached(
                "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            )
            .await
            .map_err(store_error)?;
        client
            .execute(&touch, &[&id.as_str(), &at])
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyStoreError> {
        Ok(self.bounded(self.list_api_keys()).await?)
    }

    async fn keys_version(&self) -> Result<u64, KeyStoreError> {
        Ok(self.bounded(self.api_keys_version()).await?)
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        match self.bounded(self.insert_api_key(key, false)).await? {
            Inserted::Written => Ok(()),
            Inserted::Exists | Inserted::Taken => Err(KeyStoreError::Exists),
        }
    }

    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, KeyStoreError> {
        match self.bounded(self.insert_api_key(key, true)).await? {
            Inserted::Written => Ok(true),
            Inserted::Taken => Ok(false),
            Inserted::Exists => Err(KeyStoreError::Exists),
        }
    }

    async fn delete_key(&self, id: &KeyId) -> Result<bool, KeyStoreError> {
        Ok(self.bounded(self.delete_api_key(id)).await?)
    }

    async fn touch_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), KeyStoreError> {
        Ok(self.bounded(self.touch_api_key(id, at)).await?)
    }
}
