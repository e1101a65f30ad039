//! The tables of the store file and the one place that keeps them in step.
//!
//! | table | key | value |
//! |---|---|---|
//! | `meta` | name | u64 (`format_version`) |
//! | `sessions` | session id | encoded record ([`crate::codec`]) |
//! | `tokens` | SHA-256 token hash (current and previous) | session id |
//! | `subjects` (multimap) | (tenant, subject) | ids of its non-revoked records |
//! | `expiry` | (deadline in Unix ns, id) | () |
//! | `users` | (tenant, name) | encoded portal account ([`crate::codec::encode_user`]) |
//! | `secrets` | secret name | its opaque value (a set's 32-byte secrets one after another, or the sealed signing keys) |
//! | `counters` | counter key | a failure counter: count, last failure, lock end, expiry (`counters.rs`) |
//! | `counter_expiry` | (expiry in Unix ns, counter key) | () |
//! | `api_keys` | key id | the key's JSON record (never the key) |
//! | `events` | (tenant, event id) | the audit event's JSON (see `events.rs`) |
//! | `event_counts` | tenant | how many events `events` holds for it |
//!
//! `users` stands apart: no index refers to it and the read cache never
//! holds it, so user writes (see `users.rs`) touch nothing else. A file made
//! before it existed gets it at open; the format version stays 1. `secrets`
//! and `api_keys` stand apart the same way and are made by their first
//! write (see `secrets.rs`, `api_keys.rs`; the keys' version is the
//! `keys_version` entry of `sessiond_meta`); so do `counters` and its
//! expiry index, which `counters.rs` keeps in step (and
//! `EmbeddedStore::check` verifies).
//!
//! Every write goes through [`Tables::put`] and [`Tables::delete`], which
//! move a record's index entries with it in the same transaction (removing
//! the ones it no longer needs, adding the new ones), so the indexes always
//! agree with the records. `EmbeddedStore::check` verifies exactly that.

use redb::{MultimapTable, MultimapTableDefinition, ReadableMultimapTable, ReadableTable, Table, TableDefinition};
use sessiond_core::{Session, SessionId, StoreError, Subject, Tenant, TokenHash};

use crate::cache::Changes;
use crate::codec::{self, deadline_key};
use crate::error::{encode_failed, engine, inconsistent};

pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("sessiond_meta");
pub(crate) const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
pub(crate) const TOKENS: TableDefinition<&[u8; 32], &str> = TableDefinition::new("tokens");
pub(crate) const SUBJECTS: MultimapTableDefinition<(&str, &str), &str> = MultimapTableDefinition::new("subjects");
pub(crate) const EXPIRY: TableDefinition<(i128, &str), ()> = TableDefinition::new("expiry");
pub(crate) const USERS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("users");
pub(crate) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");
pub(crate) const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

/// The key under which [`META`] holds the version of `api_keys`.
pub(crate) const KEYS_VERSION: &str = "keys_version";

/// Opens `table` in the read transaction `txn`, or `None` while it does not
/// exist: the tables apart from the sessions' are made by their first write,
/// and a file without one has nothing stored in it.
pub(crate) fn open_optional<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    table: TableDefinition<'_, K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
    match txn.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(engine(e)),
    }
}

/// The key under which the format version is stored in [`META`].
pub(crate) const FORMAT_KEY: &str = "format_version";

/// The file format this build writes. Bump it when a table or the record
/// layout changes incompatibly, and teach `open` to migrate the old one.
pub const FORMAT_VERSION: u32 = 1;

/// The token hashes a record is findable by.
pub(crate) fn token_hashes(session: &Session) -> impl Iterator<Item = TokenHash> + '_ {
    std::iter::once(session.token_hash).chain(session.previous_token.map(|p| p.hash))
}

/// Reads and decodes the record with this id from any readable table.
pub(crate) fn load(
    sessions: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Session>, StoreError> {
    match sessions.get(id).map_err(engine)? {
        Some(bytes) => Ok(Some(codec::decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// The ids in the subject index of `(tenant, subject)`.
pub(crate) fn subject_ids(
    subjects: &impl ReadableMultimapTable<(&'static str, &'static str), &'static str>,
    tenant: &Tenant,
    subject: &Subject,
) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    for id in subjects.get((tenant.as_str(), subject.as_str())).map_err(engine)? {
        ids.push(id.map_err(engine)?.value().to_owned());
    }
    Ok(ids)
}

/// The tables of one write transaction, opened once per batch.
pub(crate) struct Tables<'txn> {
    pub(crate) sessions: Table<'txn, &'static str, &'static [u8]>,
    pub(crate) tokens: Table<'txn, &'static [u8; 32], &'static str>,
    pub(crate) subjects: MultimapTable<'txn, (&'static str, &'static str), &'static str>,
    pub(crate) expiry: Table<'txn, (i128, &'static str), ()>,
    /// What this transaction changed, for the cache (see `cache.rs`).
    pub(crate) changes: Changes,
    /// The transaction, for tables only some ops use (`users`), which are
    /// opened by those ops rather than for every batch.
    pub(crate) txn: &'txn redb::WriteTransaction,
}

impl<'txn> Tables<'txn> {
    /// Opens (creating if needed) every session table in `txn`.
    pub(crate) fn open(txn: &'txn redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            sessions: txn.open_table(SESSIONS).map_err(engine)?,
            tokens: txn.open_table(TOKENS).map_err(engine)?,
            subjects: txn.open_multimap_table(SUBJECTS).map_err(engine)?,
            expiry: txn.open_table(EXPIRY).map_err(engine)?,
            changes: Changes::default(),
            txn,
        })
    }

    /// The record with this id.
    pub(crate) fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        load(&self.sessions, id.as_str())
    }

    /// The id that owns a token hash, if any.
    pub(crate) fn token_owner(&self, hash: &TokenHash) -> Result<Option<String>, StoreError> {
        Ok(self
            .tokens
            .get(hash.as_bytes())
            .map_err(engine)?
            .map(|id| id.value().to_owned()))
    }

    /// The subject's records that are live at `now`.
    pub(crate) fn live_of_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: time::OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let mut live = Vec::new();
        for id in subject_ids(&self.subjects, tenant, subject)? {
            let session =
                load(&self.sessions, &id)?.ok_or_else(|| inconsistent("subject index names a missing record"))?;
            if session.is_live(now) {
                live.push(session);
            }
        }
        Ok(live)
    }

    /// Writes `session`, replacing `old` (the record currently stored under
    /// the same id, if any) and moving every index entry with it.
    pub(crate) fn put(&mut self, session: &Session, old: Option<&Session>) -> Result<(), StoreError> {
        let id = session.id.as_str();
        let bytes = codec::encode(session).map_err(encode_failed)?;
        self.sessions.insert(id, bytes.as_slice()).map_err(engine)?;
        // Index entries that stay the same are left alone: a revoke or a
        // touch rewrites one or two entries, not all of them.
        let new_hashes: Vec<TokenHash> = token_hashes(session).collect();
        let old_hashes: Vec<TokenHash> = old.map(|o| token_hashes(o).collect()).unwrap_or_default();
        for hash in old_hashes.iter().filter(|h| !new_hashes.contains(h)) {
            // Only remove an entry this record owns; callers refuse writes
            // that would take another record's hash, so this is a guard.
            if self.token_owner(hash)?.as_deref() == Some(id) {
                self.tokens.remove(hash.as_bytes()).map_err(engine)?;
            }
        }
        for hash in new_hashes.iter().filter(|h| !old_hashes.contains(h)) {
            self.tokens.insert(hash.as_bytes(), id).map_err(engine)?;
        }
        // Anonymous records belong to nobody: they are not indexed.
        let subject_key =
            |s: &Session| (s.revoked.is_none() && !s.is_anonymous()).then(|| (s.tenant.clone(), s.subject.clone()));
        let (old_key, new_key) = (old.and_then(subject_key), subject_key(session));
        if old_key != new_key {
            if let Some((tenant, subject)) = &old_key {
                self.subjects
                    .remove((tenant.as_str(), subject.as_str()), id)
                    .map_err(engine)?;
            }
            if let Some((tenant, subject)) = &new_key {
                self.subjects
                    .insert((tenant.as_str(), subject.as_str()), id)
                    .map_err(engine)?;
            }
        }
        let deadline = deadline_key(session.expires_at());
        let old_deadline = old.map(|o| deadline_key(o.expires_at()));
        if old_deadline != Some(deadline) {
            if let Some(old_deadline) = old_deadline {
                self.expiry.remove((old_deadline, id)).map_err(engine)?;
            }
            self.expiry.insert((deadline, id), ()).map_err(engine)?;
        }
        self.changes.put(session, &bytes, old);
        Ok(())
    }

    /// Removes a stored record and its index entries.
    pub(crate) fn delete(&mut self, session: &Session) -> Result<(), StoreError> {
        self.unindex(session)?;
        self.sessions.remove(session.id.as_str()).map_err(engine)?;
        self.changes.delete(session);
        Ok(())
    }

    fn unindex(&mut self, session: &Session) -> Result<(), StoreError> {
        let id = session.id.as_str();
        for hash in token_hashes(session) {
            // Only remove an entry this record owns; callers refuse writes
            // that would take another record's hash, so this is a guard.
            if self.token_owner(&hash)?.as_deref() == Some(id) {
                self.tokens.remove(hash.as_bytes()).map_err(engine)?;
            }
        }
        let key = (session.tenant.as_str(), session.subject.as_str());
        self.subjects.remove(key, id).map_err(engine)?;
        self.expiry
            .remove((deadline_key(session.expires_at()), id))
            .map_err(engine)?;
        Ok(())
    }
}
