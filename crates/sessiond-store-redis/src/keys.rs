//! Key names: where each part of a session lives in the keyspace.
//!
//! With prefix `P` (default `sessiond:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `Pt:<token hash hex>` | string | for the current token: the record (see `record.rs`), TTL from its deadline; for the previous token: `>` and the record's key, same TTL |
//! | `P{T}:u:<tenant>/<subject>` | sorted set | the subject's non-revoked ids, scored by deadline (µs) |
//! | `Pi:<id>` | string | `>` and the record's key, same TTL |
//! | `Pexp` | sorted set | every id, scored by deadline (µs), for purge |
//! | `P{user:<tenant>}:u:<name>` | hash | a portal account (see `users.rs`), no TTL |
//! | `P{user:<tenant>}:names` | sorted set | the tenant's account names, all scored 0 (byte order) |
//! | `Psecret:<name>` | string | a shared secret value (a secret set, or the sealed signing keys; see `secrets.rs`), no TTL |
//! | `Pcounter:<key>` | hash | a failure counter (see `counters.rs`), TTL its forget-after |
//! | `P{apikeys}:all` | hash | API key id → record JSON (see `api_keys.rs`), no TTL |
//! | `P{apikeys}:used` | hash | API key id → last use (µs) |
//! | `P{apikeys}:version` | string | counter moved on by every key insert and delete |
//! | `P{events}:t:<tenant>` | sorted set | the tenant's audit events, `<id> <json>`, all scored 0 (see `events.rs`) |
//! | `P{events}:tenants` | set | the tenants that have events |
//!
//! A record lives under its current token's key, so that a verify is one
//! `GET` of a key computed from the token alone (record layout 2; layout 1
//! kept the record in a hash at `P{T}:s:<id>` behind a pointer, and its keys
//! are not read). A rotation moves the record to the new token's key.
//!
//! `T` is 16 hex digits of SHA-256 over tenant and subject: a Redis Cluster
//! hash tag, whatever characters the subject holds (a `}` in a subject
//! cannot end the tag early). The index key still names tenant and subject
//! in full, so two subjects whose tags collided would only share a slot,
//! never an index. Token and id keys carry no tag, so the scripts that
//! change a record and its indexes together would span slots; on a Cluster
//! the prefix itself is therefore a hash tag (`P` = `{sessiond:}`, see
//! `RedisConfig::key_prefix`), which Redis takes before any later `{…}`,
//! and every key of the store is in that one slot.
//!
//! A tenant's accounts and their name index share the tag `{user:<tenant>}`:
//! a tenant name is `[a-z0-9_-]`, so it cannot end the tag early, and no
//! session key starts its tag with `user:` (those are hex digits).
//!
//! The API keys' three keys share the tag `{apikeys}`, which no session
//! tag (hex digits) or account tag (`user:…`) can equal, so one script can
//! change them together.
//!
//! Every tenant's events share the tag `{events}`, which no other tag can
//! equal, so one script appends a batch that mixes tenants. (All events
//! then live in one Cluster slot: a bounded amount, as retention bounds it.)
//!
//! A secret name is `[a-z0-9-]`, so `Psecret:<name>` can meet no other key
//! (`Pt:`, `Pi:`, `Pexp` and the tagged `P{…}` keys). No other key starts
//! with `Pcounter:` either, whatever printable characters a counter key
//! holds after it.

use sessiond_core::{CounterKey, SecretName, SessionId, Subject, Tenant, TokenHash};
use sha2::{Digest, Sha256};

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    prefix: String,
}

impl KeySpace {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    fn tag(tenant: &Tenant, subject: &Subject) -> String {
        let mut hasher = Sha256::new();
        hasher.update(tenant.as_str().as_bytes());
        // A tenant never holds '\n', so the pair is encoded unambiguously.
        hasher.update(b"\n");
        hasher.update(subject.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut tag = String::with_capacity(16);
        for byte in &digest[..8] {
            tag.push_str(&format!("{byte:02x}"));
        }
        tag
    }

    /// `P{T}:u:<tenant>/<subject>`.
    pub(crate) fn subject_index(&self, tenant: &Tenant, subject: &Subject) -> String {
        format!(
            "{}{{{}}}:u:{}/{}",
            self.prefix,
            Self::tag(tenant, subject),
            tenant.as_str(),
            subject.as_str()
        )
    }

    /// Where `<tenant>/<subject>` starts in every [`KeySpace::subject_index`]
    /// key (scripts read a record's tenant and subject from there).
    pub(crate) fn subject_index_names_at(&self) -> usize {
        // `{`, 16 hex digits, `}:u:`.
        self.prefix.len() + 1 + 16 + 4
    }

    /// `Pt:`: token pointers are this plus the hash in hex.
    pub(crate) fn token_prefix(&self) -> String {
        format!("{}t:", self.prefix)
    }

    /// `Pt:<hash>`.
    pub(crate) fn token(&self, hash: &TokenHash) -> String {
        format!("{}t:{}", self.prefix, hash.to_hex())
    }

    /// `Pi:`: id pointers are this plus the id.
    pub(crate) fn id_prefix(&self) -> String {
        format!("{}i:", self.prefix)
    }

    /// `Pi:<id>`.
    pub(crate) fn id(&self, id: &SessionId) -> String {
        format!("{}i:{}", self.prefix, id.as_str())
    }

    /// `Pexp`.
    pub(crate) fn expiry(&self) -> String {
        format!("{}exp", self.prefix)
    }

    /// `P{user:<tenant>}:u:`: the tenant's account keys are this plus the name.
    pub(crate) fn user_prefix(&self, tenant: &Tenant) -> String {
        format!("{}{{user:{}}}:u:", self.prefix, tenant.as_str())
    }

    /// `P{user:<tenant>}:u:<name>`.
    pub(crate) fn user(&self, tenant: &Tenant, name: &Subject) -> String {
        format!("{}{}", self.user_prefix(tenant), name.as_str())
    }

    /// `P{user:<tenant>}:names`.
    pub(crate) fn user_names(&self, tenant: &Tenant) -> String {
        format!("{}{{user:{}}}:names", self.prefix, tenant.as_str())
    }

    /// `Pcounter:<key>`.
    pub(crate) fn counter(&self, key: &CounterKey) -> String {
        format!("{}counter:{}", self.prefix, key.as_str())
    }

    /// `P{apikeys}:all`, `P{apikeys}:used` and `P{apikeys}:version`.
    pub(crate) fn api_keys(&self) -> [String; 3] {
        ["all", "used", "version"].map(|part| format!("{}{{apikeys}}:{part}", self.prefix))
    }

    /// `P{events}:t:`: a tenant's events are this plus the tenant.
    pub(crate) fn events_prefix(&self) -> String {
        format!("{}{{events}}:t:", self.prefix)
    }

    /// `P{events}:t:<tenant>`.
    pub(crate) fn events(&self, tenant: &Tenant) -> String {
        format!("{}{}", self.events_prefix(), tenant.as_str())
    }

    /// `P{events}:tenants`.
    pub(crate) fn event_tenants(&self) -> String {
        format!("{}{{events}}:tenants", self.prefix)
    }

    /// `Psecret:<name>`.
    pub(crate) fn secret(&self, name: &SecretName) -> String {
        format!("{}secret:{}", self.prefix, name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subjects_index_has_a_hash_tag_of_its_own() {
        let keys = KeySpace::new("sd:");
        let t = Tenant::new("acme").unwrap_or_else(|e| panic!("{e}"));
        let s = Subject::new("user}{42").unwrap_or_else(|e| panic!("{e}"));
        let index = keys.subject_index(&t, &s);
        let tag = |k: &str| k[k.find('{').unwrap_or(0)..=k.find('}').unwrap_or(0)].to_owned();
        assert_eq!(tag(&index).len(), 18);
        assert!(index.ends_with(":u:acme/user}{42"));
        assert_eq!(&index[keys.subject_index_names_at()..], "acme/user}{42");
        let other = Subject::new("user}{43").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(tag(&keys.subject_index(&t, &other)), tag(&index));
    }

    #[test]
    fn a_tenants_accounts_share_one_hash_tag() {
        let keys = KeySpace::new("sd:");
        let t = Tenant::new("acme").unwrap_or_else(|e| panic!("{e}"));
        let n = Subject::new("x}{y").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.user(&t, &n), "sd:{user:acme}:u:x}{y");
        assert_eq!(keys.user_names(&t), "sd:{user:acme}:names");
        assert!(keys.user(&t, &n).starts_with(&keys.user_prefix(&t)));
    }
}
