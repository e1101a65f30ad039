//! [`SecretStore`] for [`EmbeddedStore`]: shared secret values in the
//! `secrets` table, keyed by name, each stored as the opaque bytes it was
//! given (a secret set as [`encode_secrets`](sessiond_core::encode_secrets)
//! makes them, by the trait's provided methods).
//!
//! Writes are ops of the one writer (`writer.rs`), as user writes are: they
//! share its group commit and are acknowledged only after a durable commit,
//! and redb's single write transaction makes the check and the write of an
//! init or a compare-and-set one step, so racing inits have one winner.
//! They change no session record, so the read cache sees an empty change
//! set. The table is made by the first write: a read of a file without it
//! finds nothing stored, which is what it means.

use redb::{ReadableDatabase, ReadableTable};
use sessiond_core::{SecretName, SecretStore, SecretStoreError, StoreError, async_trait, check_secret_value_len};

use crate::EmbeddedStore;
use crate::error::engine;
use crate::ops::{Done, Op, Outcome};
use crate::tables::{SECRETS, Tables, open_optional};

/// A secret value on its way through the writer's channel (a set's, or any
/// other). Its `Debug` shows only the length: ops and answers are printed
/// in error messages.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretSet(pub(crate) Vec<u8>);

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretSet({} bytes)", self.0.len())
    }
}

/// The value stored under `name` in the writer's transaction, if any.
fn stored(table: &redb::Table<'_, &'static str, &'static [u8]>, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(table.get(name).map_err(engine)?.map(|bytes| bytes.value().to_vec()))
}

/// Init, inside the writer's transaction: writes `initial` only where
/// nothing is stored, and answers with the value stored afterwards.
pub(crate) fn init(t: &mut Tables<'_>, name: &SecretName, initial: &SecretSet) -> Result<Outcome, StoreError> {
    let mut table = t.txn.open_table(SECRETS).map_err(engine)?;
    if let Some(existing) = stored(&table, name.as_str())? {
        return Ok(Ok(Done::Secrets(SecretSet(existing))));
    }
    table.insert(name.as_str(), initial.0.as_slice()).map_err(engine)?;
    Ok(Ok(Done::Secrets(initial.clone())))
}

/// Compare-and-set on the whole value, byte for byte, inside the writer's
/// transaction.
pub(crate) fn put(
    t: &mut Tables<'_>,
    name: &SecretName,
    value: &SecretSet,
    expected: &SecretSet,
) -> Result<Outcome, StoreError> {
    let mut table = t.txn.open_table(SECRETS).map_err(engine)?;
    let refused = |why| Ok(Ok(Done::SecretsRefused(why)));
    match stored(&table, name.as_str())? {
        None => return refused(SecretStoreError::NotFound),
        Some(current) if current != expected.0 => return refused(SecretStoreError::Conflict),
        Some(_) => {}
    }
    table.insert(name.as_str(), value.0.as_slice()).map_err(engine)?;
    Ok(Ok(Done::SecretsWritten))
}

impl EmbeddedStore {
    async fn write_secrets(&self, op: Op) -> Result<Done, SecretStoreError> {
        match self.write(op).await.map_err(SecretStoreError::from)? {
            Done::SecretsRefused(refusal) => Err(refusal),
            done => Ok(done),
        }
    }
}

fn unexpected(done: &Done) -> SecretStoreError {
    SecretStoreError::Backend(format!("writer answered a secret write with {done:?}").into())
}

#[async_trait]
impl SecretStore for EmbeddedStore {
    async fn secret_value(&self, name: &SecretName) -> Result<Option<Vec<u8>>, SecretStoreError> {
        let txn = self
            .database()
            .begin_read()
            .map_err(|e| SecretStoreError::from(engine(e)))?;
        let Some(table) = open_optional(&txn, SECRETS).map_err(SecretStoreError::from)? else {
            return Ok(None);
        };
        Ok(table
            .get(name.as_str())
            .map_err(|e| SecretStoreError::from(engine(e)))?
            .map(|bytes| bytes.value().to_vec()))
    }

    async fn init_secret_value(&self, name: &SecretName, initial: &[u8]) -> Result<Vec<u8>, SecretStoreError> {
        check_secret_value_len(initial)?;
        let op = Op::InitSecrets {
            name: name.clone(),
            initial: SecretSet(initial.to_vec()),
        };
        match self.write_secrets(op).await? {
            Done::Secrets(value) => Ok(value.0),
            other => Err(unexpected(&other)),
        }
    }

    async fn put_secret_value(&self, name: &SecretName, value: &[u8], expected: &[u8]) -> Result<(), SecretStoreError> {
        check_secret_value_len(value)?;
        let op = Op::PutSecrets {
            name: name.clone(),
            secrets: SecretSet(value.to_vec()),
            expected: SecretSet(expected.to_vec()),
        };
        match self.write_secrets(op).await? {
            Done::SecretsWritten => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}
