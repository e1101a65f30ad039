//! [`KeyStore`] for [`RedisStore`]: every API key in one hash of id →
//! record JSON, their last uses in a second hash, and a version counter,
//! all under the tag `{apikeys}` (layout in `keys.rs`).
//!
//! The record JSON is written by Rust and never decoded by a script. Last
//! uses are kept apart, as µs since the epoch, so a touch is a compare of
//! two numbers in Lua (`lua/key_touch.lua`) rather than a rewrite of the
//! record; a listing takes the later of the record's `last_used_at` and the
//! hash's. Insert (also the first key), delete, touch and list are one
//! script each (`lua/key_*.lua`, each stating its guarantee); the version
//! is one `GET`. Keys have no TTL. Durability is the server's, as for
//! sessions (see the crate docs).

use std::collections::HashMap;

use redis::Value;
use sessiond_core::{KeyId, KeyRecord, KeyStore, KeyStoreError, async_trait};
use time::OffsetDateTime;

use crate::error::{Unexpected, from_redis};
use crate::scripts::{SCRIPTS, array, status};
use crate::store::RedisStore;

fn corrupt(what: String) -> KeyStoreError {
    KeyStoreError::Corrupt(Box::new(Unexpected(what)))
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn micros(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1000
}

fn from_micros(value: &str) -> Result<OffsetDateTime, KeyStoreError> {
    let micros: i128 = value
        .parse()
        .map_err(|_| corrupt(format!("a key's last use {value:?} is not a number")))?;
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1000)
        .map_err(|_| corrupt(format!("a key's last use {value:?} is out of range")))
}

/// The pairs of an `HGETALL` reply, as text.
fn pairs(reply: Value) -> Result<Vec<(String, String)>, KeyStoreError> {
    let items = array(reply).map_err(KeyStoreError::from)?;
    let mut pairs = Vec::with_capacity(items.len() / 2);
    for pair in items.chunks(2) {
        let [field, value] = pair else {
            return Err(corrupt("a hash reply with an odd number of items".into()));
        };
        let (Some(field), Some(value)) = (text(field), text(value)) else {
            return Err(corrupt("a hash reply that is not text".into()));
        };
        pairs.push((field.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

/// Decodes a listing: each record under its own id, with its latest use.
fn decode(records: Vec<(String, String)>, uses: Vec<(String, String)>) -> Result<Vec<KeyRecord>, KeyStoreError> {
    let uses: HashMap<String, String> = uses.into_iter().collect();
    let mut keys = Vec::with_capacity(records.len());
    for (id, body) in records {
        let mut key: KeyRecord = serde_json::from_str(&body).map_err(|e| KeyStoreError::Corrupt(Box::new(e)))?;
        if key.id.as_str() != id {
            return Err(corrupt(format!("the entry of key {id:?} holds another key's record")));
        }
        if let Some(used) = uses.get(&id) {
            let used = from_micros(used)?;
            if key.last_used_at.is_none_or(|last| last < used) {
                key.last_used_at = Some(used);
            }
        }
        keys.push(key);
    }
    keys.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(keys)
}

impl RedisStore {
    async fn insert(&self, key: &KeyRecord, first: bool) -> Result<String, KeyStoreError> {
        let body = serde_json::to_string(key).map_err(|e| KeyStoreError::Backend(Box::new(e)))?;
        let mut call = SCRIPTS.key_insert.prepare_invoke();
        for name in self.keys().api_keys() {
            call.key(name);
        }
        call.arg(key.id.as_str()).arg(body).arg(if first { "1" } else { "0" });
        let (word, _) = status(self.run(&call).await?)?;
        Ok(word)
    }
}

#[async_trait]
impl KeyStore for RedisStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, KeyStoreError> {
        let [all, used, _] = self.keys().api_keys();
        let mut call = SCRIPTS.key_list.prepare_invoke();
        call.key(all).key(used);
        let (word, mut rest) = status(self.run(&call).await?)?;
        if word != "ok" || rest.len() != 2 {
            return Err(corrupt(format!("key list answered {word} with {} parts", rest.len())));
        }
        let uses = pairs(rest.pop().unwrap_or(Value::Nil))?;
        let records = pairs(rest.pop().unwrap_or(Value::Nil))?;
        decode(records, uses)
    }

    async fn keys_version(&self) -> Result<u64, KeyStoreError> {
        let [_, _, version] = self.keys().api_keys();
        let mut connection = self.connection().await?;
        let reply: Option<u64> = redis::cmd("GET")
            .arg(version)
            .query_async(&mut connection)
            .await
            .map_err(|e| KeyStoreError::from(from_redis(e)))?;
        Ok(reply.unwrap_or(0))
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), KeyStoreError> {
        match self.insert(key, false).await?.as_str() {
            "ok" => Ok(()),
            "exists" => Err(KeyStoreError::Exists),
            other => Err(corrupt(format!("key insert answered {other}"))),
        }
    }

    async fn insert_first_key(&self, key: &KeyRecord) -> Result<bool, KeyStoreError> {
        match self.insert(key, true).await?.as_str() {
            "ok" => Ok(true),
            "taken" => Ok(false),
            // An empty store cannot hold the id; only a hand-made key gets here.
            "exists" => Err(KeyStoreError::Exists),
            other => Err(corrupt(format!("first key insert answered {other}"))),
        }
    }

    async fn delete_key(&self, id: &KeyId) -> Result<bool, KeyStoreError> {
        let mut call = SCRIPTS.key_delete.prepare_invoke();
        for name in self.keys().api_keys() {
            call.key(name);
        }
        call.arg(id.as_str());
        let (word, rest) = status(self.run(&call).await?)?;
        match (word.as_str(), rest.first()) {
            ("ok", Some(Value::Int(n))) => Ok(*n == 1),
            (other, _) => Err(corrupt(format!("key delete answered {other}"))),
        }
    }

    async fn touch_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), KeyStoreError> {
        let [all, used, _] = self.keys().api_keys();
        let mut call = SCRIPTS.key_touch.prepare_invoke();
        call.key(all).key(used).arg(id.as_str()).arg(micros(at).to_string());
        let (word, _) = status(self.run(&call).await?)?;
        match word.as_str() {
            "ok" => Ok(()),
            other => Err(corrupt(format!("key touch answered {other}"))),
        }
    }
}
