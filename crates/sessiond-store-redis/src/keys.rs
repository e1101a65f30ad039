//! Key names: where each part of a session lives in the keyspace.
//!
//! With prefix `P` (default `sessiond:`) and, for session and event keys,
//! base `B` (`P` outside a Cluster, see below):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `Bt:<token hash hex>` | string | for the current token: the record (see `record.rs`), TTL from its deadline; for the previous token: `>` and the record's key, same TTL |
//! | `B{T}:u:<tenant>/<subject>` | sorted set | the subject's non-revoked ids, scored by deadline (µs) |
//! | `Bi:<id>` | string | `>` and the record's key, same TTL |
//! | `Bexp` | sorted set | every id (of the shard), scored by deadline (µs), for purge |
//! | `P{user:<tenant>}:u:<name>` | hash | a portal account (see `users.rs`), no TTL |
//! | `P{user:<tenant>}:names` | sorted set | the tenant's account names, all scored 0 (byte order) |
//! | `Psecret:<name>` | string | a shared secret value (a secret set, or the sealed signing keys; see `secrets.rs`), no TTL |
//! | `Pcounter:<key>` | hash | a failure counter (see `counters.rs`), TTL its forget-after |
//! | `P{apikeys}:all` | hash | API key id → record JSON (see `api_keys.rs`), no TTL |
//! | `P{apikeys}:used` | hash | API key id → last use (µs) |
//! | `P{apikeys}:version` | string | counter moved on by every key insert and delete |
//! | `B{events}:t:<tenant>` | sorted set | the tenant's audit events, `<id> <json>`, all scored 0 (see `events.rs`) |
//! | `B{events}:tenants` | set | the tenants that have events |
//!
//! A record lives under its current token's key, so that a verify is one
//! `GET` of a key computed from the token alone (record layout 2; layout 1
//! kept the record in a hash at `P{T}:s:<id>` behind a pointer, and its keys
//! are not read). A rotation moves the record to the new token's key.
//!
//! `T` is 16 hex digits of SHA-256 over tenant and subject, whatever
//! characters the subject holds (a `}` in a subject cannot end it early).
//! The index key still names tenant and subject in full.
//!
//! On a Redis Cluster the session and event keys start with a shard's base
//! `B` = `P{PNN}` instead of `P` (`sessiond:{sessiond:07}t:<hash>`): Redis
//! hashes the first `{…}`, so each shard is one slot, and the prefix inside
//! the tag gives stores with other prefixes slots of their own. A record's
//! token keys and id key are in its id's shard, and its subject's index in
//! the subject's: the manager draws ids and tokens so that these agree
//! (`sessiond_core::Shards`), and an anonymous record, which no index
//! holds, names an index in its own shard. Each shard has its own expiry
//! index and events. Counters carry the tag `{counters}` there
//! (`P{counters}:<key>`), so that a login's two counters share a slot.
//! Outside a Cluster `B` is `P` and nothing above changes.
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
//! equal, so one script appends a batch that mixes tenants. (On a Cluster
//! the shard's tag comes first: a session script stores its events in its
//! own shard, and the readers merge the shards.)
//!
//! A secret name is `[a-z0-9-]`, so `Psecret:<name>` can meet no other key
//! (`Pt:`, `Pi:`, `Pexp` and the tagged `P{…}` keys). No other key starts
//! with `Pcounter:` either, whatever printable characters a counter key
//! holds after it.

use sessiond_core::{CounterKey, SecretName, Session, SessionId, Shards, Subject, Tenant, TokenHash, subject_digest};

/// Builds key names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct KeySpace {
    prefix: String,
    /// What session and event keys start with, by shard: the prefix alone
    /// outside a Cluster, `P{PNN}` on one (the prefix in the tag too, so
    /// that stores with other prefixes have slots of their own).
    bases: Vec<String>,
    shards: Option<Shards>,
}

impl KeySpace {
    /// Keys under `prefix`; on a Cluster, `shards` of them.
    pub(crate) fn new(prefix: &str, shards: Option<Shards>) -> Self {
        let bases = match shards {
            None => vec![prefix.to_owned()],
            Some(shards) => (0..shards.count())
                .map(|n| format!("{prefix}{{{prefix}{n:02}}}"))
                .collect(),
        };
        Self {
            prefix: prefix.to_owned(),
            bases,
            shards,
        }
    }

    /// The shards, on a Cluster.
    pub(crate) fn shards(&self) -> Option<Shards> {
        self.shards
    }

    /// How many shards (1 outside a Cluster).
    pub(crate) fn shard_count(&self) -> u8 {
        self.shards.map_or(1, Shards::count)
    }

    fn base(&self, shard: u8) -> &str {
        // Every shard number comes from `Shards`, so it is below the count.
        self.bases.get(usize::from(shard)).map_or(&self.prefix, String::as_str)
    }

    /// The shard of a token hash's keys (0 outside a Cluster).
    pub(crate) fn shard_of_token(&self, hash: &TokenHash) -> u8 {
        self.shards.map_or(0, |s| s.of_token(hash))
    }

    /// The shard of an id's keys, and of its record (0 outside a Cluster).
    pub(crate) fn shard_of_id(&self, id: &SessionId) -> u8 {
        self.shards.map_or(0, |s| s.of_id(id))
    }

    /// The shard of a subject's index (0 outside a Cluster).
    pub(crate) fn shard_of_subject(&self, tenant: &Tenant, subject: &Subject) -> u8 {
        self.shards.map_or(0, |s| s.of_subject(tenant, subject))
    }

    fn tag(tenant: &Tenant, subject: &Subject) -> String {
        let digest = subject_digest(tenant, subject);
        let mut tag = String::with_capacity(16);
        for byte in &digest[..8] {
            tag.push_str(&format!("{byte:02x}"));
        }
        tag
    }

    /// `B{T}:u:<tenant>/<subject>`, in the subject's shard.
    pub(crate) fn subject_index(&self, tenant: &Tenant, subject: &Subject) -> String {
        self.index_in(self.shard_of_subject(tenant, subject), tenant, subject)
    }

    /// The subject index a record names: its subject's; for an anonymous
    /// record, which no index holds, the same name in the record's shard,
    /// so that every key a script is given is in one slot.
    pub(crate) fn record_index(&self, session: &Session) -> String {
        if session.is_anonymous() {
            self.index_in(self.shard_of_id(&session.id), &session.tenant, &session.subject)
        } else {
            self.subject_index(&session.tenant, &session.subject)
        }
    }

    fn index_in(&self, shard: u8, tenant: &Tenant, subject: &Subject) -> String {
        format!(
            "{}{{{}}}:u:{}/{}",
            self.base(shard),
            Self::tag(tenant, subject),
            tenant.as_str(),
            subject.as_str()
        )
    }

    /// Where `<tenant>/<subject>` starts in every [`KeySpace::subject_index`]
    /// key (scripts read a record's tenant and subject from there).
    pub(crate) fn subject_index_names_at(&self) -> usize {
        // Every base has the same length; then `{`, 16 hex digits, `}:u:`.
        self.base(0).len() + 1 + 16 + 4
    }

    /// `Bt:`: the shard's token keys are this plus the hash in hex.
    pub(crate) fn token_prefix(&self, shard: u8) -> String {
        format!("{}t:", self.base(shard))
    }

    /// `Bt:<hash>`.
    pub(crate) fn token(&self, hash: &TokenHash) -> String {
        format!("{}t:{}", self.base(self.shard_of_token(hash)), hash.to_hex())
    }

    /// `Bi:`: the shard's id pointers are this plus the id.
    pub(crate) fn id_prefix(&self, shard: u8) -> String {
        format!("{}i:", self.base(shard))
    }

    /// `Bi:<id>`.
    pub(crate) fn id(&self, id: &SessionId) -> String {
        format!("{}i:{}", self.base(self.shard_of_id(id)), id.as_str())
    }

    /// `Bexp`, the shard's expiry index.
    pub(crate) fn expiry(&self, shard: u8) -> String {
        format!("{}exp", self.base(shard))
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

    /// `Pcounter:<key>`; on a Cluster `P{counters}:<key>`, one slot for
    /// the account's and the address' counters a login changes together.
    pub(crate) fn counter(&self, key: &CounterKey) -> String {
        if self.shards.is_some() {
            format!("{}{{counters}}:{}", self.prefix, key.as_str())
        } else {
            format!("{}counter:{}", self.prefix, key.as_str())
        }
    }

    /// `P{apikeys}:all`, `P{apikeys}:used` and `P{apikeys}:version`.
    pub(crate) fn api_keys(&self) -> [String; 3] {
        ["all", "used", "version"].map(|part| format!("{}{{apikeys}}:{part}", self.prefix))
    }

    /// `B{events}:t:`: a tenant's events of the shard are this plus the tenant.
    pub(crate) fn events_prefix(&self, shard: u8) -> String {
        format!("{}{{events}}:t:", self.base(shard))
    }

    /// `B{events}:t:<tenant>`.
    pub(crate) fn events(&self, shard: u8, tenant: &Tenant) -> String {
        format!("{}{}", self.events_prefix(shard), tenant.as_str())
    }

    /// `B{events}:tenants`.
    pub(crate) fn event_tenants(&self, shard: u8) -> String {
        format!("{}{{events}}:tenants", self.base(shard))
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
        let keys = KeySpace::new("sd:", None);
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

    /// The first `{…}` of a key: the part Redis Cluster hashes.
    fn cluster_tag(key: &str) -> &str {
        let open = key.find('{').unwrap_or(0);
        let close = key[open..].find('}').map_or(key.len(), |c| open + c + 1);
        &key[open..close]
    }

    #[test]
    fn on_a_cluster_a_sessions_keys_share_its_shards_tag() {
        let shards = Shards::new(64).unwrap_or_else(|| panic!("64 shards"));
        let keys = KeySpace::new("sd:", Some(shards));
        let t = Tenant::new("acme").unwrap_or_else(|e| panic!("{e}"));
        let s = Subject::new("alice").unwrap_or_else(|e| panic!("{e}"));
        let shard = shards.of_subject(&t, &s);
        let id = shards.id_in(Some(shard)).unwrap_or_else(|e| panic!("{e}"));
        let token = shards.token_in(shard).unwrap_or_else(|e| panic!("{e}")).hash();
        let tag = format!("{{sd:{shard:02}}}");
        for key in [
            keys.token(&token),
            keys.id(&id),
            keys.subject_index(&t, &s),
            keys.expiry(shard),
            keys.events(shard, &t),
            keys.event_tenants(shard),
            keys.token_prefix(shard),
            keys.id_prefix(shard),
        ] {
            assert!(key.starts_with("sd:"), "{key}");
            assert_eq!(cluster_tag(&key), tag, "{key}");
        }
        // The scripts read tenant and subject at the same place in every shard.
        assert_eq!(
            &keys.subject_index(&t, &s)[keys.subject_index_names_at()..],
            "acme/alice"
        );
        let counter = CounterKey::new("login:acme/alice").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cluster_tag(&keys.counter(&counter)), "{counters}");
        // Outside a Cluster nothing is tagged but what was before.
        let plain = KeySpace::new("sd:", None);
        assert_eq!(plain.token(&token), format!("sd:t:{}", token.to_hex()));
        assert_eq!(plain.counter(&counter), "sd:counter:login:acme/alice");
    }

    #[test]
    fn a_tenants_accounts_share_one_hash_tag() {
        let keys = KeySpace::new("sd:", None);
        let t = Tenant::new("acme").unwrap_or_else(|e| panic!("{e}"));
        let n = Subject::new("x}{y").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.user(&t, &n), "sd:{user:acme}:u:x}{y");
        assert_eq!(keys.user_names(&t), "sd:{user:acme}:names");
        assert!(keys.user(&t, &n).starts_with(&keys.user_prefix(&t)));
    }
}
