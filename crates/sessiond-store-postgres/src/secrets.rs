//! [`SecretStore`] for [`PostgresStore`]: shared secret values in `secrets`
//! (migration 4), one row per name, `value` the opaque bytes (a secret set's
//! 32-byte secrets one after another, by the trait's provided methods). Its
//! CHECK holds the store's length rule, 1 to 16 KiB (migration 9).
//!
//! Init is `INSERT … ON CONFLICT DO NOTHING` and then a `SELECT`: of racing
//! inserts the engine lets exactly one through, and since rows are never
//! deleted the `SELECT` finds the winner's value (or a replacement made
//! since, which is then what is stored). A replace is `UPDATE … WHERE value =
//! $expected`; when it writes nothing, a second read tells a missing set
//! from a conflict.

use async_trait::async_trait;
use sessiond_core::{SecretName, SecretStore, SecretStoreError, StoreError, check_secret_value_len};
use tokio_postgres::Row;

use crate::error::{corrupt, store_error};
use crate::store::PostgresStore;

/// The stored bytes of a row selected as `value`.
fn value(row: &Row) -> Result<Vec<u8>, StoreError> {
    // The engine's message names the column and type, never the bytes.
    row.try_get(0).map_err(|e| corrupt("value", e))
}

/// What a compare-and-set found.
enum Cas {
    Written,
    Missing,
    Conflict,
}

impl PostgresStore {
    async fn stored_secrets(&self, name: &SecretName) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT value FROM secrets WHERE name = $1")
            .await
            .map_err(store_error)?;
        let row = client
            .query_opt(&statement, &[&name.as_str()])
            .await
            .map_err(store_error)?;
        row.as_ref().map(value).transpose()
    }

    async fn insert_secrets(&self, name: &SecretName, initial: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let insert = client
            .prepare_cached("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .await
            .map_err(store_error)?;
        client
            .execute(&insert, &[&name.as_str(), &initial])
            .await
            .map_err(store_error)?;
        drop(client);
        self.stored_secrets(name).await
    }

    async fn secret_cas(&self, name: &SecretName, secrets: &[u8], expected: &[u8]) -> Result<Cas, StoreError> {
        let client = self.client().await?;
        let update = client
            .prepare_cached("UPDATE secrets SET value = $2 WHERE name = $1 AND value = $3")
            .await
            .map_err(store_error)?;
        let current = client
            .prepare_cached("SELECT value FROM secrets WHERE name = $1")
            .await
            .map_err(store_error)?;
        loop {
            let written = client
                .execute(&update, &[&name.as_str(), &secrets, &expected])
                .await
                .map_err(store_error)?;
            if written == 1 {
                return Ok(Cas::Written);
            }
            let Some(row) = client
                .query_opt(&current, &[&name.as_str()])
                .await
                .map_err(store_error)?
            else {
                return Ok(Cas::Missing);
            };
            if value(&row)? != expected {
                return Ok(Cas::Conflict);
            }
            // The value came back to the expected one between the two
            // statements: the update would now apply, so try it again rather
            // than report a conflict with no conflict.
        }
    }
}

#[async_trait]
impl SecretStore for PostgresStore {
    async fn secret_value(&self, name: &SecretName) -> Result<Option<Vec<u8>>, SecretStoreError> {
        self.bounded(self.stored_secrets(name))
            .await
            .map_err(SecretStoreError::from)
    }

    async fn init_secret_value(&self, name: &SecretName, initial: &[u8]) -> Result<Vec<u8>, SecretStoreError> {
        check_secret_value_len(initial)?;
        let stored = self
            .bounded(self.insert_secrets(name, initial))
            .await
            .map_err(SecretStoreError::from)?;
        // Rows are never deleted: only a hand-made change finds none.
        stored.ok_or_else(|| SecretStoreError::Corrupt("the secret value vanished after its insert".into()))
    }

    async fn put_secret_value(&self, name: &SecretName, value: &[u8], expected: &[u8]) -> Result<(), SecretStoreError> {
        check_secret_value_len(value)?;
        match self
            .bounded(self.secret_cas(name, value, expected))
            .await
            .map_err(SecretStoreError::from)?
        {
            Cas::Written => Ok(()),
            Cas::Missing => Err(SecretStoreError::NotFound),
            Cas::Conflict => Err(SecretStoreError::Conflict),
        }
    }
}
