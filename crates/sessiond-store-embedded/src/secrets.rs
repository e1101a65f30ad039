//! [`SecretStore`] for [`EmbeddedStore`]: shared secret sets in the
//! `secrets` table, keyed by name, each stored as its secrets one after
//! another ([`encode_secrets`]).
//!
//! Writes are ops of the one writer (`writer.rs`), as user writes are: they
//! share its group commit and are acknowledged only after a durable commit,
//! and redb's single write transaction makes the check and the write of an
//! init or a compare-and-set one step, so racing inits have one winner.
//! They change no session record, so the read cache sees an empty change
//! set. The table is made by the first write: a read of a file without it
//! finds nothing stored, which is what it means.

use redb::{ReadableDatabase, ReadableTable};
use sessiond_core::{
    SecretName, SecretStore, SecretStoreError, StoreError, async_trait, check_secret_count, decode_secrets,
    encode_secrets,
};

use crate::EmbeddedStore;
use crate::error::engine;
use crate::ops::{Done, Op, Outcome};
use crate::tables::{SECRETS, Tables, open_optional};

/// A secret set on its way through the writer's channel. Its `Debug` shows
/// only the count: ops and answers are printed in error messages.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretSet(pub(crate) Vec<[u8; 32]>);

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretSet({} secrets)", self.0.len())
    }
}

/// A stored set, or why it cannot be read (a refusal, not an engine failure).
type Decoded = Result<Vec<[u8; 32]>, SecretStoreError>;

/// The set stored under `name` in the writer's transaction, if any.
fn stored(table: &redb::Table<'_, &'static str, &'static [u8]>, name: &str) -> Result<Option<Decoded>, StoreError> {
    Ok(table
        .get(name)
        .map_err(engine)?
        .map(|bytes| decode_secrets(bytes.value())))
}

/// Init, inside the writer's transaction: writes `initial` only where
/// nothing is stored, and answers with the set stored afterwards.
pub(crate) fn init(t: &mut Tables<'_>, name: &SecretName, initial: &SecretSet) -> Result<Outcome, StoreError> {
    let mut table = t.txn.open_table(SECRETS).map_err(engine)?;
    match stored(&table, name.as_str())? {
        Some(Ok(existing)) => return Ok(Ok(Done::Secrets(SecretSet(existing)))),
        // A refusal: nothing is written over a set we cannot read.
        Some(Err(corrupt)) => return Ok(Ok(Done::SecretsRefused(corrupt))),
        None => {}
    }
    table
        .insert(name.as_str(), encode_secrets(&initial.0).as_slice())
        .map_err(engine)?;
    Ok(Ok(Done::Secrets(initial.clone())))
}

/// Compare-and-set on the whole set, inside the writer's transaction.
pub(crate) fn put(
    t: &mut Tables<'_>,
    name: &SecretName,
    secrets: &SecretSet,
    expected: &SecretSet,
) -> Result<Outcome, StoreError> {
    let mut table = t.txn.open_table(SECRETS).map_err(engine)?;
    let refused = |why| Ok(Ok(Done::SecretsRefused(why)));
    match stored(&table, name.as_str())? {
        None => return refused(SecretStoreError::NotFound),
        Some(Err(corrupt)) => return refused(corrupt),
        Some(Ok(current)) if current != expected.0 => return refused(SecretStoreError::Conflict),
        Some(Ok(_)) => {}
    }
    table
        .insert(name.as_str(), encode_secrets(&secrets.0).as_slice())
        .map_err(engine)?;
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
    async fn secrets(&self, name: &SecretName) -> Result<Option<Vec<[u8; 32]>>, SecretStoreError> {
        let txn = self
            .database()
            .begin_read()
            .map_err(|e| SecretStoreError::from(engine(e)))?;
        let Some(table) = open_optional(&txn, SECRETS).map_err(SecretStoreError::from)? else {
            return Ok(None);
        };
        match table
            .get(name.as_str())
            .map_err(|e| SecretStoreError::from(engine(e)))?
        {
            Some(bytes) => decode_secrets(bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    async fn init_secrets(&self, name: &SecretName, initial: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, SecretStoreError> {
        check_secret_count(initial)?;
        let op = Op::InitSecrets {
            name: name.clone(),
            initial: SecretSet(initial.to_vec()),
        };
        match self.write_secrets(op).await? {
            Done::Secrets(set) => Ok(set.0),
            other => Err(unexpected(&other)),
        }
    }

    async fn put_secrets(
        &self,
        name: &SecretName,
        secrets: &[[u8; 32]],
        expected: &[[u8; 32]],
    ) -> Result<(), SecretStoreError> {
        check_secret_count(secrets)?;
        let op = Op::PutSecrets {
            name: name.clone(),
            secrets: SecretSet(secrets.to_vec()),
            expected: SecretSet(expected.to_vec()),
        };
        match self.write_secrets(op).await? {
            Done::SecretsWritten => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}
