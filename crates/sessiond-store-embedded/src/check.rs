//! A full consistency check: every index agrees with the records.
//!
//! It reads one snapshot (so it runs beside a live server's writes) and
//! visits every entry once: for an admin command and for the crash test,
//! not for a hot path.

use std::collections::HashSet;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use sessiond_core::StoreError;

use crate::EmbeddedStore;
use crate::codec::{self, deadline_key};
use crate::counters::{COUNTER_EXPIRY, COUNTERS, decode as decode_counter};
use crate::error::engine;
use crate::tables::{API_KEYS, EXPIRY, SECRETS, SESSIONS, SUBJECTS, TOKENS, USERS, open_optional, token_hashes};

/// What [`EmbeddedStore::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Records in the store, tombstones and expired ones included.
    pub sessions: u64,
    /// Entries in the token index (current and previous hashes).
    pub tokens: u64,
    /// Entries in the subject index (non-revoked records of a subject).
    pub subject_entries: u64,
    /// Entries in the expiry index.
    pub expiry_entries: u64,
    /// Portal accounts.
    pub users: u64,
    /// Failure counters of the login throttle, forgotten ones included.
    pub counters: u64,
    /// Shared secret values (secret sets and sealed records alike).
    pub secret_sets: u64,
    /// API keys.
    pub api_keys: u64,
    /// Audit events.
    pub events: u64,
    /// Every disagreement found, in words; empty for a consistent store.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// True when no problem was found.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

impl EmbeddedStore {
    /// Checks that every record decodes and that the token, subject and
    /// expiry indexes hold exactly the entries the records call for; that
    /// every portal account, API key and audit event decodes and is stored
    /// under its own key, every secret value is of an allowed length, and
    /// each tenant's event count is its number of events; and that every
    /// failure counter decodes and has exactly its expiry entry.
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let txn = self.database().begin_read().map_err(engine)?;
        let sessions = txn.open_table(SESSIONS).map_err(engine)?;
        let tokens = txn.open_table(TOKENS).map_err(engine)?;
        let subjects = txn.open_multimap_table(SUBJECTS).map_err(engine)?;
        let expiry = txn.open_table(EXPIRY).map_err(engine)?;
        let users = txn.open_table(USERS).map_err(engine)?;
        let mut report = CheckReport {
            sessions: sessions.len().map_err(engine)?,
            tokens: tokens.len().map_err(engine)?,
            subject_entries: subjects.len().map_err(engine)?,
            expiry_entries: expiry.len().map_err(engine)?,
            users: users.len().map_err(engine)?,
            counters: 0,
            secret_sets: 0,
            api_keys: 0,
            events: 0,
            problems: Vec::new(),
        };
        check_counters(&txn, &mut report)?;
        check_apart(&txn, &mut report)?;
        check_events(&txn, &mut report)?;
        for entry in users.iter().map_err(engine)? {
            let (key, value) = entry.map_err(engine)?;
            let (tenant, name) = key.value();
            match codec::decode_user(value.value()) {
                Err(e) => report.problems.push(format!("user ({tenant}, {name}): {e}")),
                Ok(user) if user.tenant.as_str() != tenant || user.name.as_str() != name => {
                    report.problems.push(format!(
                        "user ({tenant}, {name}) holds the record of ({}, {})",
                        user.tenant, user.name
                    ));
                }
                Ok(_) => {}
            }
        }
        let (mut want_tokens, mut want_subjects, mut want_expiry) = (0u64, 0u64, 0u64);
        for entry in sessions.iter().map_err(engine)? {
            let (key, value) = entry.map_err(engine)?;
            let id = key.value();
            let session = match codec::decode(value.value()) {
                Ok(session) => session,
                Err(e) => {
                    report.problems.push(format!("record {id}: {e}"));
                    continue;
                }
            };
            if session.id.as_str() != id {
                report.problems.push(format!("record {id} holds id {}", session.id));
            }
            let mut seen = HashSet::new();
            for hash in token_hashes(&session) {
                want_tokens += 1;
                if !seen.insert(hash) {
                    report
                        .problems
                        .push(format!("record {id} has the same current and previous hash"));
                }
                let owner = tokens
                    .get(hash.as_bytes())
                    .map_err(engine)?
                    .map(|o| o.value().to_owned());
                if owner.as_deref() != Some(id) {
                    report.problems.push(format!("token of {id} is indexed to {owner:?}"));
                }
            }
            let mut indexed = false;
            for member in subjects
                .get((session.tenant.as_str(), session.subject.as_str()))
                .map_err(engine)?
            {
                indexed |= member.map_err(engine)?.value() == id;
            }
            // Anonymous records belong to nobody and are never indexed.
            let want_indexed = session.revoked.is_none() && !session.is_anonymous();
            if want_indexed {
                want_subjects += 1;
            }
            if indexed != want_indexed {
                report
                    .problems
                    .push(format!("record {id}: subject index entry present = {indexed}"));
            }
            want_expiry += 1;
            if expiry
                .get((deadline_key(session.expires_at()), id))
                .map_err(engine)?
                .is_none()
            {
                report
                    .problems
                    .push(format!("record {id}: no expiry entry at its deadline"));
            }
        }
        // Each record's own entries were found above; equal counts mean
        // there is nothing else (no entry pointing to a missing record).
        for (what, have, want) in [
            ("token", report.tokens, want_tokens),
            ("subject", report.subject_entries, want_subjects),
            ("expiry", report.expiry_entries, want_expiry),
        ] {
            if have != want {
                report
                    .problems
                    .push(format!("{what} index has {have} entries, records call for {want}"));
            }
        }
        Ok(report)
    }
}

/// The counters and their expiry index, if the tables were ever made.
fn check_counters(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<(), StoreError> {
    let (counters, expiry) = match (txn.open_table(COUNTERS), txn.open_table(COUNTER_EXPIRY)) {
        (Ok(counters), Ok(expiry)) => (counters, expiry),
        (Err(redb::TableError::TableDoesNotExist(_)), Err(redb::TableError::TableDoesNotExist(_))) => {
            return Ok(());
        }
        (Err(e), _) | (_, Err(e)) => return Err(engine(e)),
    };
    report.counters = counters.len().map_err(engine)?;
    for entry in counters.iter().map_err(engine)? {
        let (key, value) = entry.map_err(engine)?;
        let key = key.value();
        match decode_counter(value.value()) {
            Err(e) => report.problems.push(format!("counter {key}: {e}")),
            Ok(record) => {
                if expiry
                    .get((deadline_key(record.expires_at), key))
                    .map_err(engine)?
                    .is_none()
                {
                    report
                        .problems
                        .push(format!("counter {key}: no expiry entry at its expiry"));
                }
            }
        }
    }
    let entries = expiry.len().map_err(engine)?;
    if entries != report.counters {
        report.problems.push(format!(
            "counter expiry index has {entries} entries, records call for {}",
            report.counters
        ));
    }
    Ok(())
}

/// The tables no index refers to: each entry must decode (a secret value:
/// be of an allowed length) and be stored under its own key.
fn check_apart(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<(), StoreError> {
    if let Some(secrets) = open_optional(txn, SECRETS)? {
        report.secret_sets = secrets.len().map_err(engine)?;
        for entry in secrets.iter().map_err(engine)? {
            let (name, value) = entry.map_err(engine)?;
            // A value is opaque to the store (a secret set or a sealed
            // record): only its length is the store's rule.
            if let Err(e) = sessiond_core::check_secret_value_len(value.value()) {
                report.problems.push(format!("secret {}: {e}", name.value()));
            }
        }
    }
    if let Some(keys) = open_optional(txn, API_KEYS)? {
        report.api_keys = keys.len().map_err(engine)?;
        for entry in keys.iter().map_err(engine)? {
            let (id, value) = entry.map_err(engine)?;
            let id = id.value();
            match serde_json::from_slice::<sessiond_core::KeyRecord>(value.value()) {
                Err(e) => report.problems.push(format!("API key {id}: {e}")),
                Ok(key) if key.id.as_str() != id => {
                    report
                        .problems
                        .push(format!("API key {id} holds the record of {}", key.id));
                }
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

/// Every event decodes and sits under its own (tenant, id); each tenant's
/// count in `event_counts` is the number of its events (prune trusts it).
fn check_events(txn: &redb::ReadTransaction, report: &mut CheckReport) -> Result<(), StoreError> {
    use crate::events::{EVENT_COUNTS, EVENTS, decode};
    let mut counted: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    if let Some(events) = open_optional(txn, EVENTS)? {
        report.events = events.len().map_err(engine)?;
        for entry in events.iter().map_err(engine)? {
            let (key, value) = entry.map_err(engine)?;
            let (tenant, id) = key.value();
            *counted.entry(tenant.to_owned()).or_default() += 1;
            match decode(id, value.value()) {
                Err(e) => report.problems.push(format!("event ({tenant}, {id}): {e}")),
                Ok(stored) if stored.event.tenant.as_str() != tenant => {
                    report
                        .problems
                        .push(format!("event ({tenant}, {id}) is of tenant {}", stored.event.tenant));
                }
                Ok(_) => {}
            }
        }
    }
    let mut recorded = std::collections::BTreeMap::new();
    if let Some(counts) = open_optional(txn, EVENT_COUNTS)? {
        for entry in counts.iter().map_err(engine)? {
            let (tenant, count) = entry.map_err(engine)?;
            if count.value() != 0 {
                recorded.insert(tenant.value().to_owned(), count.value());
            }
        }
    }
    if counted != recorded {
        report.problems.push(format!(
            "event counts {recorded:?} disagree with the events {counted:?}"
        ));
    }
    Ok(())
}
