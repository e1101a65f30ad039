//! [`UserStore`] for [`RedisStore`]: one hash per portal account and a
//! sorted set of a tenant's names (layout in `keys.rs`).
//!
//! The hash holds `body`, the whole [`UserRecord`] as JSON written by Rust
//! (scripts never decode or re-encode it), and `v`, its version as decimal
//! text, which the compare-and-set script compares. Insert and update are
//! one script each (`lua/user_*.lua`, each stating its guarantee); a get is
//! one `HMGET`. Accounts have no TTL. Durability is the server's, as for
//! sessions (see the crate docs).

use redis::Value;
use sessiond_core::{Subject, Tenant, UserRecord, UserStore, UserStoreError, async_trait};

use crate::error::{Unexpected, from_redis};
use crate::scripts::{SCRIPTS, array, status};
use crate::store::RedisStore;

fn corrupt(what: String) -> UserStoreError {
    UserStoreError::Corrupt(Box::new(Unexpected(what)))
}

fn json(user: &UserRecord) -> Result<String, UserStoreError> {
    serde_json::to_string(user).map_err(|e| UserStoreError::Backend(Box::new(e)))
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// The account from its `v` and `body` fields, or `None` when both are nil
/// (no such key). The record must be the one `(tenant, name)` names, and its
/// body must agree with `v`.
fn decode(tenant: &Tenant, name: &str, version: &Value, body: &Value) -> Result<Option<UserRecord>, UserStoreError> {
    if matches!((version, body), (Value::Nil, Value::Nil)) {
        return Ok(None);
    }
    let (Some(version), Some(body)) = (text(version), text(body)) else {
        return Err(corrupt(format!("user {name:?} lacks its v or body field")));
    };
    let user: UserRecord = serde_json::from_str(body).map_err(|e| UserStoreError::Corrupt(Box::new(e)))?;
    if user.tenant != *tenant || user.name.as_str() != name {
        return Err(corrupt(format!("the key of user {name:?} holds another user's record")));
    }
    if version != user.version.to_string() {
        return Err(corrupt(format!("user {name:?}: v {version:?} disagrees with the body")));
    }
    Ok(Some(user))
}

/// The stored version in a `{'conflict', v}` reply.
fn conflict(rest: &[Value]) -> UserStoreError {
    match rest.first().and_then(text).and_then(|v| v.parse().ok()) {
        Some(current) => UserStoreError::VersionConflict { current },
        None => corrupt("conflict without a version".into()),
    }
}

#[async_trait]
impl UserStore for RedisStore {
    async fn get_user(&self, tenant: &Tenant, name: &Subject) -> Result<Option<UserRecord>, UserStoreError> {
        let mut connection = self.connection().await.map_err(UserStoreError::from)?;
        let reply: Value = redis::cmd("HMGET")
            .arg(self.keys().user(tenant, name))
            .arg("v")
            .arg("body")
            .query_async(&mut connection)
            .await
            .map_err(|e| UserStoreError::from(from_redis(e)))?;
        match array(reply).map_err(UserStoreError::from)?.as_slice() {
            [version, body] => decode(tenant, name.as_str(), version, body),
            other => Err(corrupt(format!("HMGET answered {} values, not 2", other.len()))),
        }
    }

    async fn insert_user(&self, user: &UserRecord) -> Result<(), UserStoreError> {
        let keys = self.keys();
        let mut call = SCRIPTS.user_insert.prepare_invoke();
        call.key(keys.user(&user.tenant, &user.name))
            .key(keys.user_names(&user.tenant))
            .arg(user.name.as_str())
            .arg(user.version)
            .arg(json(user)?);
        let (word, _) = status(self.run(&call).await.map_err(UserStoreError::from)?).map_err(UserStoreError::from)?;
        match word.as_str() {
            "ok" => Ok(()),
            "exists" => Err(UserStoreError::Exists),
            other => Err(corrupt(format!("user insert answered {other}"))),
        }
    }

    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> Result<(), UserStoreError> {
        let mut call = SCRIPTS.user_update.prepare_invoke();
        call.key(self.keys().user(&user.tenant, &user.name))
            .arg(expected_version)
            .arg(user.version)
            .arg(json(user)?);
        let (word, rest) =
            status(self.run(&call).await.map_err(UserStoreError::from)?).map_err(UserStoreError::from)?;
        match word.as_str() {
            "ok" => Ok(()),
            "notfound" => Err(UserStoreError::NotFound),
            "conflict" => Err(conflict(&rest)),
            other => Err(corrupt(format!("user update answered {other}"))),
        }
    }

    async fn list_users(&self, tenant: &Tenant) -> Result<Vec<UserRecord>, UserStoreError> {
        let keys = self.keys();
        let mut call = SCRIPTS.user_list.prepare_invoke();
        call.key(keys.user_names(tenant)).arg(keys.user_prefix(tenant));
        let reply = array(self.run(&call).await.map_err(UserStoreError::from)?).map_err(UserStoreError::from)?;
        if reply.len() % 3 != 0 {
            return Err(corrupt(format!("user list answered {} values", reply.len())));
        }
        let mut users = Vec::with_capacity(reply.len() / 3);
        for entry in reply.chunks_exact(3) {
            let [name, version, body] = entry else {
                continue;
            };
            let name = text(name).ok_or_else(|| corrupt("a listed name is not text".into()))?;
            match decode(tenant, name, version, body)? {
                Some(user) => users.push(user),
                None => return Err(corrupt(format!("the name index lists {name:?}, which has no record"))),
            }
        }
        Ok(users)
    }

    async fn delete_user(&self, tenant: &Tenant, name: &Subject) -> Result<bool, UserStoreError> {
        let keys = self.keys();
        let mut call = SCRIPTS.user_delete.prepare_invoke();
        call.key(keys.user(tenant, name))
            .key(keys.user_names(tenant))
            .arg(name.as_str());
        let (word, rest) =
            status(self.run(&call).await.map_err(UserStoreError::from)?).map_err(UserStoreError::from)?;
        match (word.as_str(), rest.first()) {
            ("ok", Some(Value::Int(n))) => Ok(*n == 1),
            (other, _) => Err(corrupt(format!("user delete answered {other}"))),
        }
    }
}
