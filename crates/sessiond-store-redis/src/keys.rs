//! Key names: where each part of a session lives in the keyspace.
//!
//! With prefix `P` (default `sessiond:`) and, for session and event keys,
//! base `B` (`P` outside a Cluster, see below):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `Bt:<token hash>` | string | for the current token: the record (see `record.rs`), TTL from its deadline; for the previous token: `>` and the record's key, same TTL |
//! | `Bids:<b>` | hash | id → the raw token hash of its record, for the ids of bucket `b` |
//! | `Bu:<tenant>/<subject>` | sorted set | the subject's non-revoked ids, scored by deadline (µs) |
//! | `Bdue:<b>` | sorted set | the ids of bucket `b`, scored by deadline (µs), for purge |
//! | `Bdue` | sorted set | each non-empty `Bdue:<b>`, scored by its earliest deadline |
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
//! `GET` of a key computed from the token alone. A rotation moves the
//! record to the new token's key.
//!
//! **Layout 3** (this one) keeps Redis' memory at about 630 bytes per
//! session (`scripts/store_bytes`: 100,000 sessions of 10,000 subjects,
//! against 1,089 for layout 2). What it changed, and why:
//!
//! - A token key ends with the hash's 32 bytes, not 64 hex digits: with
//!   the default prefix the name fits a 48-byte allocation instead of 80.
//!   (`redis-cli` shows them escaped.)
//! - Ids and deadlines live in buckets, not in a key per id and one big
//!   sorted set: a top-level key costs about 150 bytes (its name, object,
//!   table entries and, with a TTL, an `expires` entry), a skiplist entry
//!   about 125, while a small hash or sorted set (up to 128 entries of up
//!   to 64 bytes) is a listpack, about 60 and 40 bytes an entry. The bucket
//!   `b` is an id's first two characters: 4,096 buckets, about 24 ids each
//!   at 100,000 sessions. Past 128 entries (about 500,000 sessions) a
//!   deadline bucket leaves the listpack form (Redis' default
//!   `zset-max-listpack-entries`) and costs what the big sorted set did;
//!   an id bucket stays compact up to 512 (about 2,000,000 sessions, the
//!   default `hash-max-listpack-entries`). A store that large should raise
//!   `zset-max-listpack-entries` to 512: a listpack is read whole, so an
//!   entry costs a little more CPU and much less memory.
//! - The id buckets have no TTL: purge removes an id with its record. A
//!   record Redis expired first (the TTL is the deadline plus a slack)
//!   leaves its id entry behind until purge, read as absent meanwhile.
//! - `Bdue` lets purge merge the buckets in deadline order: each change of
//!   a bucket rewrites its score, so it is exact.
//! - The subject index's name no longer carries a hash tag of its own (it
//!   was the tag of every session key before a Cluster's shards, below).
//!
//! Keys of layouts 1 and 2 are not read: their records read as absent (the
//! sessions end; their keys expire), and `Pexp` and
//! `P{<16 hex digits>}:u:<tenant>/<subject>`, which have no TTL, are left
//! for the operator to delete (see the crate docs).
//!
//! On a Redis Cluster the session and event keys start with a shard's base
//! `B` = `P{PNN}` instead of `P` (`sessiond:{sessiond:07}t:<hash>`): Redis
//! hashes the first `{…}`, so each shard is one slot, and the prefix inside
//! the tag gives stores with other prefixes slots of their own. A record's
//! token keys and its id's buckets are in its id's shard, and its subject's
//! index in the subject's: the manager draws ids and tokens so that these
//! agree (`sessiond_core::Shards`; the first character of an id, and so its
//! buckets, say its shard), and an anonymous record, which no index holds,
//! names an index in its own shard. Each shard has its own expiry index and
//! events. Counters carry the tag `{counters}` there
//! (`P{counters}:<key>`), so that a login's two counters share a slot.
//! Outside a Cluster `B` is `P` and nothing above changes.
//!
//! A tenant's accounts and their name index share the tag `{user:<tenant>}`:
//! a tenant name is `[a-z0-9_-]`, so it cannot end the tag early. (A
//! shard's tag may hash like one, which puts them in one slot and changes
//! nothing else: the names after the tags differ.)
//!
//! The API keys' three keys share the tag `{apikeys}`, so one script can
//! change them together.
//!
//! Every tenant's events share the tag `{events}`, which no other tag can
//! equal, so one script appends a batch that mixes tenants. (On a Cluster
//! the shard's tag comes first: a session script stores its events in its
//! own shard, and the readers merge the shards.)
//!
//! A secret name is `[a-z0-9-]`, so `Psecret:<name>` can meet no other key
//! (`Pt:`, `Pids:`, `Pu:`, `Pdue`, `Pdue:` and the tagged `P{…}` keys). No other key starts
//! with `Pcounter:` either, whatever printable characters a counter key
//! holds after it.

use sessiond_core::{CounterKey, SecretName, Session, SessionId, Shards, Subject, Tenant, TokenHash};

/// The base64url alphabet in the order of its values.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Ids share buckets by their first two characters: 4,096 per store, so
/// that at 100,000 sessions a bucket holds about 24 and stays in Redis'
/// listpack form (up to 128 entries), and one that places an id in a shard
/// keeps its bucket there (`Shards::of_id` reads the first character).
/// `common.lua`'s `bucket` takes the same two characters.
fn bucket(id: &SessionId) -> &str {
    id.as_str().get(..2).unwrap_or("")
}

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

    /// `B`: what the keys of a shard's sessions start with (the scripts
    /// derive the names of a record's other keys from it).
    pub(crate) fn base(&self, shard: u8) -> &str {
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

    /// `Bu:<tenant>/<subject>`, in the subject's shard.
    pub(crate) fn subject_index(&self, tenant: &Tenant, subject: &Subject) -> String {
        self.index_in(self.shard_of_subject(tenant, subject), tenant, subject)
    }

    /// The subject index a record names: its subject's; for an anonymous
    /// record, which no index holds, the same name in the record's shard,
    /// so that every key a script is given is in one slot. (`common.lua`'s
    /// `index_of` derives the same name from a record.)
    pub(crate) fn record_index(&self, session: &Session) -> String {
        if session.is_anonymous() {
            self.index_in(self.shard_of_id(&session.id), &session.tenant, &session.subject)
        } else {
            self.subject_index(&session.tenant, &session.subject)
        }
    }

    fn index_in(&self, shard: u8, tenant: &Tenant, subject: &Subject) -> String {
        format!("{}u:{}/{}", self.base(shard), tenant.as_str(), subject.as_str())
    }

    /// `B` of an id's shard.
    pub(crate) fn base_of_id(&self, id: &SessionId) -> &str {
        self.base(self.shard_of_id(id))
    }

    /// `Bt:`: the shard's token keys are this plus the raw hash.
    pub(crate) fn token_prefix(&self, shard: u8) -> String {
        format!("{}t:", self.base(shard))
    }

    /// `Bt:<hash>`, the hash's 32 bytes as they are.
    pub(crate) fn token(&self, hash: &TokenHash) -> Vec<u8> {
        let base = self.base(self.shard_of_token(hash));
        let mut key = Vec::with_capacity(base.len() + 2 + 32);
        key.extend_from_slice(base.as_bytes());
        key.extend_from_slice(b"t:");
        key.extend_from_slice(hash.as_bytes());
        key
    }

    /// `Bids:<b>`: the id bucket that holds `id`'s token hash.
    pub(crate) fn ids(&self, id: &SessionId) -> String {
        format!("{}ids:{}", self.base_of_id(id), bucket(id))
    }

    /// `Bids:<bucket>` of a shard.
    pub(crate) fn ids_bucket(&self, shard: u8, bucket: &str) -> String {
        format!("{}ids:{bucket}", self.base(shard))
    }

    /// `Bdue:<b>`: the expiry bucket that holds `id`'s deadline.
    pub(crate) fn due(&self, id: &SessionId) -> String {
        format!("{}due:{}", self.base_of_id(id), bucket(id))
    }

    /// `Bdue`: the shard's buckets by their earliest deadline.
    pub(crate) fn due_index(&self, shard: u8) -> String {
        format!("{}due", self.base(shard))
    }

    /// How many id buckets a shard has.
    pub(crate) fn buckets_per_shard(&self) -> usize {
        64 * 64 / usize::from(self.shard_count())
    }

    /// A shard's id bucket number `index` (below
    /// [`KeySpace::buckets_per_shard`]), in a fixed order: the pairs of
    /// base64url characters whose first places an id in `shard`.
    pub(crate) fn bucket(&self, shard: u8, index: usize) -> Option<String> {
        let count = usize::from(self.shard_count());
        let first = usize::from(shard % self.shard_count()) + index / 64 * count;
        let pair = [*BASE64URL.get(first)?, BASE64URL[index % 64]];
        Some(String::from_utf8_lossy(&pair).into_owned())
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
    fn a_subjects_index_names_tenant_and_subject_whatever_they_hold() {
        let keys = KeySpace::new("sd:", None);
        let t = Tenant::new("acme").unwrap_or_else(|e| panic!("{e}"));
        let s = Subject::new("user}{42").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(keys.subject_index(&t, &s), "sd:u:acme/user}{42");
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
        let s = Subject::new("al}{ice").unwrap_or_else(|e| panic!("{e}"));
        let shard = shards.of_subject(&t, &s);
        let id = shards.id_in(Some(shard)).unwrap_or_else(|e| panic!("{e}"));
        let token = shards.token_in(shard).unwrap_or_else(|e| panic!("{e}")).hash();
        let tag = format!("{{sd:{shard:02}}}");
        let bucket = id.as_str()[..2].to_owned();
        for key in [
            // The hash's bytes come after the tag, so they cannot end it.
            String::from_utf8_lossy(&keys.token(&token)).into_owned(),
            keys.ids(&id),
            keys.due(&id),
            keys.due_index(shard),
            keys.ids_bucket(shard, &bucket),
            keys.subject_index(&t, &s),
            keys.events(shard, &t),
            keys.event_tenants(shard),
            keys.token_prefix(shard),
            keys.base(shard).to_owned(),
        ] {
            assert!(key.starts_with("sd:"), "{key}");
            assert_eq!(cluster_tag(&key), tag, "{key}");
        }
        assert_eq!(
            keys.ids(&id),
            format!("{tag_base}ids:{bucket}", tag_base = keys.base(shard))
        );
        let counter = CounterKey::new("login:acme/alice").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cluster_tag(&keys.counter(&counter)), "{counters}");
        // Outside a Cluster nothing is tagged but what was before.
        let plain = KeySpace::new("sd:", None);
        assert_eq!(plain.token(&token), [&b"sd:t:"[..], token.as_bytes()].concat());
        assert_eq!(plain.ids(&id), format!("sd:ids:{bucket}"));
        assert_eq!(plain.counter(&counter), "sd:counter:login:acme/alice");
    }

    #[test]
    fn the_buckets_of_the_shards_are_every_pair_once_each_in_its_shard() {
        for count in [1u8, 4, 64] {
            let shards = Shards::new(count).unwrap_or_else(|| panic!("{count} shards"));
            let keys = KeySpace::new("sd:", (count > 1).then_some(shards));
            let mut seen = std::collections::BTreeSet::new();
            for shard in 0..count {
                for index in 0..keys.buckets_per_shard() {
                    let bucket = keys.bucket(shard, index).unwrap_or_else(|| panic!("bucket {index}"));
                    // An id that starts with the bucket is in the shard.
                    let id = SessionId::parse(&format!("{bucket}AAAAAAAAAAAAAAAAAAAA"))
                        .unwrap_or_else(|| panic!("{bucket}"));
                    assert_eq!(keys.shard_of_id(&id), shard, "{bucket}");
                    assert!(seen.insert(bucket));
                }
                assert_eq!(keys.bucket(shard, keys.buckets_per_shard()), None);
            }
            assert_eq!(seen.len(), 4096);
        }
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
