//! [`SecretStore`] for [`RedisStore`]: one string per shared secret set
//! (`Psecret:<name>`, see `keys.rs`), holding its 32-byte secrets one after
//! another, with no TTL.
//!
//! Init is one script that writes only where nothing is stored and answers
//! with what is stored afterwards (`lua/secret_init.lua`), so nodes starting
//! together agree on one set in one round trip; a replace is a
//! compare-and-set script on the whole byte string (`lua/secret_put.lua`).
//! A read is one `GET`. Durability is the server's, as for sessions (see the
//! crate docs).

use redis::Value;
use sessiond_core::{
    SecretName, SecretStore, SecretStoreError, async_trait, check_secret_count, decode_secrets, encode_secrets,
};

use crate::error::{Unexpected, from_redis};
use crate::scripts::{SCRIPTS, status};
use crate::store::RedisStore;

fn corrupt(what: String) -> SecretStoreError {
    SecretStoreError::Corrupt(Box::new(Unexpected(what)))
}

/// A stored set from a reply: `None` for nil (no such key).
fn decode(reply: &Value) -> Result<Option<Vec<[u8; 32]>>, SecretStoreError> {
    match reply {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => decode_secrets(bytes).map(Some),
        // Never print the reply: it would be the secrets.
        _ => Err(corrupt("a secret set is not a byte string".into())),
    }
}

#[async_trait]
impl SecretStore for RedisStore {
    async fn secrets(&self, name: &SecretName) -> Result<Option<Vec<[u8; 32]>>, SecretStoreError> {
        let mut connection = self.connection().await.map_err(SecretStoreError::from)?;
        let reply: Value = redis::cmd("GET")
            .arg(self.keys().secret(name))
            .query_async(&mut connection)
            .await
            .map_err(|e| SecretStoreError::from(from_redis(e)))?;
        decode(&reply)
    }

    async fn init_secrets(&self, name: &SecretName, initial: &[[u8; 32]]) -> Result<Vec<[u8; 32]>, SecretStoreError> {
        check_secret_count(initial)?;
        let mut call = SCRIPTS.secret_init.prepare_invoke();
        call.key(self.keys().secret(name)).arg(encode_secrets(initial));
        let (word, rest) =
            status(self.run(&call).await.map_err(SecretStoreError::from)?).map_err(SecretStoreError::from)?;
        match (word.as_str(), rest.first()) {
            ("stored", Some(set)) => decode(set)?.ok_or_else(|| corrupt("secret init answered nil".into())),
            (other, _) => Err(corrupt(format!("secret init answered {other}"))),
        }
    }

    async fn put_secrets(
        &self,
        name: &SecretName,
        secrets: &[[u8; 32]],
        expected: &[[u8; 32]],
    ) -> Result<(), SecretStoreError> {
        check_secret_count(secrets)?;
        let mut call = SCRIPTS.secret_put.prepare_invoke();
        call.key(self.keys().secret(name))
            .arg(encode_secrets(expected))
            .arg(encode_secrets(secrets));
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
