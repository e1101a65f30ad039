//! [`SecretStore`] for [`RedisStore`]: one string per shared secret value
//! (`Psecret:<name>`, see `keys.rs`), holding its opaque bytes (a secret
//! set's 32-byte secrets one after another, by the trait's provided
//! methods), with no TTL.
//!
//! Init is one script that writes only where nothing is stored and answers
//! with what is stored afterwards (`lua/secret_init.lua`), so nodes starting
//! together agree on one value in one round trip; a replace is a
//! compare-and-set script on the whole byte string (`lua/secret_put.lua`).
//! Lua strings are byte strings, so neither script reads or re-encodes the
//! value. A read is one `GET`. Durability is the server's, as for sessions
//! (see the crate docs).

use redis::Value;
use sessiond_core::{SecretName, SecretStore, SecretStoreError, async_trait, check_secret_value_len};

use crate::error::{Unexpected, from_redis};
use crate::scripts::{SCRIPTS, status};
use crate::store::RedisStore;

fn corrupt(what: String) -> SecretStoreError {
    SecretStoreError::Corrupt(Box::new(Unexpected(what)))
}

/// A stored value from a reply: `None` for nil (no such key).
fn stored(reply: Value) -> Result<Option<Vec<u8>>, SecretStoreError> {
    match reply {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => Ok(Some(bytes)),
        // Never print the reply: it would be the secret.
        _ => Err(corrupt("a secret value is not a byte string".into())),
    }
}

#[async_trait]
impl SecretStore for RedisStore {
    async fn secret_value(&self, name: &SecretName) -> Result<Option<Vec<u8>>, SecretStoreError> {
        let mut connection = self.connection().await.map_err(SecretStoreError::from)?;
        let reply: Value = redis::cmd("GET")
            .arg(self.keys().secret(name))
            .query_async(&mut connection)
            .await
            .map_err(|e| SecretStoreError::from(from_redis(e)))?;
        stored(reply)
    }

    async fn init_secret_value(&self, name: &SecretName, initial: &[u8]) -> Result<Vec<u8>, SecretStoreError> {
        check_secret_value_len(initial)?;
        let mut call = SCRIPTS.secret_init.prepare_invoke();
        call.key(self.keys().secret(name)).arg(initial);
        let (word, rest) =
            status(self.run(&call).await.map_err(SecretStoreError::from)?).map_err(SecretStoreError::from)?;
        match (word.as_str(), rest.into_iter().next()) {
            ("stored", Some(value)) => stored(value)?.ok_or_else(|| corrupt("secret init answered nil".into())),
            (other, _) => Err(corrupt(format!("secret init answered {other}"))),
        }
    }

    async fn put_secret_value(&self, name: &SecretName, value: &[u8], expected: &[u8]) -> Result<(), SecretStoreError> {
        check_secret_value_len(value)?;
        let mut call = SCRIPTS.secret_put.prepare_invoke();
        call.key(self.keys().secret(name)).arg(expected).arg(value);
        let (word, _) =
            status(self.run(&call).await.map_err(SecretStoreError::from)?).map_err(SecretStoreError::from)?;
        match word.as_str() {
            "ok" => Ok(()),
            "notfound" => Err(SecretStoreError::NotFound),
            "conflict" => Err(SecretStoreError::Conflict),
            other => Err(corrupt(format!("secret put answered {other}"))),
        }
    }
}
