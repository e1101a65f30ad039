//! The write operations, each with exactly the semantics written on
//! [`SessionStore`](sessiond_core::SessionStore) (or, for the user ops,
//! [`UserStore`](sessiond_core::UserStore),
//! [`SecretStore`](sessiond_core::SecretStore) and
//! [`CounterStore`](sessiond_core::CounterStore); those live in `users.rs`,
//! `secrets.rs` and `counters.rs`),
//! applied inside the writer's shared transaction.
//!
//! Every operation decides all of its refusals (collision, version
//! conflict, limit, a taken user name) *before* it changes anything, so a refused operation
//! leaves the transaction as it found it and the others in the same batch
//! commit unaffected. An engine failure part-way is different: it is
//! returned as the outer error, and the writer abandons the whole
//! transaction (see `writer.rs`).

use redb::ReadableTable;
use sessiond_core::{
    Audit, ClientInfo, CounterKey, CounterRule, Inserted, KeyId, KeyRecord, KeyStoreError, Retention, Revocation,
    SecretName, SecretStoreError, Session, SessionId, StoreError, StoredEvent, Subject, SubjectLimit, Tenant,
    UserRecord, UserStoreError,
};
use time::OffsetDateTime;

use crate::codec::deadline_key;
use crate::error::{engine, inconsistent};
use crate::secrets::SecretSet;
use crate::tables::{Tables, load, token_hashes};

/// A write, as queued for the writer.
#[derive(Debug)]
pub(crate) enum Op {
    // Each session write carries the events it stores in its own
    // transaction (see `Audit`).
    Insert {
        session: Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: Box<Audit>,
    },
    /// Sessions loaded in bulk ([`crate::EmbeddedStore::insert_all`]).
    InsertAll(Vec<Session>),
    Update {
        session: Session,
        expected_version: u64,
        audit: Box<Audit>,
    },
    Touch {
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: ClientInfo,
    },
    Revoke {
        id: SessionId,
        revocation: Revocation,
        audit: Box<Audit>,
    },
    RevokeSubject {
        tenant: Tenant,
        subject: Subject,
        except: Option<SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
        audit: Box<Audit>,
    },
    Purge {
        now: OffsetDateTime,
        limit: usize,
        audit: Box<Audit>,
    },
    /// Boxed, like every large payload here: this enum moves through a channel.
    InsertUser(Box<UserRecord>),
    UpdateUser {
        user: Box<UserRecord>,
        expected_version: u64,
    },
    DeleteUser {
        tenant: Tenant,
        name: Subject,
    },
    InitSecrets {
        name: SecretName,
        initial: SecretSet,
    },
    PutSecrets {
        name: SecretName,
        secrets: SecretSet,
        expected: SecretSet,
    },
    ReserveCounters {
        keys: Vec<(CounterKey, CounterRule)>,
        now: OffsetDateTime,
    },
    ReleaseCounters {
        keys: Vec<(CounterKey, CounterRule)>,
        now: OffsetDateTime,
    },
    ClearCounter(CounterKey),
    InsertKey {
        key: Box<KeyRecord>,
        only_if_none: bool,
    },
    DeleteKey(KeyId),
    TouchKey {
        id: KeyId,
        at: OffsetDateTime,
    },
    /// One batch, one transaction (see `events.rs`).
    AppendEvents(Vec<StoredEvent>),
    PruneEvents {
        tenant: Option<Tenant>,
        retention: Retention,
    },
}

/// What a successful write returns to its caller.
#[derive(Debug)]
pub(crate) enum Done {
    Inserted(Inserted),
    /// Every session of an [`Op::InsertAll`] was written.
    InsertedAll,
    Updated,
    /// `shortened`: the touch moved the idle deadline *earlier*, so it must
    /// not be left non-durable (losing it would extend the session).
    Touched {
        wrote: bool,
        shortened: bool,
    },
    /// Boxed: a record is large and this enum moves through a channel.
    Revoked(Option<Box<Session>>),
    Sessions(Vec<Session>),
    /// A user write went through.
    UserWritten,
    /// A user write was refused and wrote nothing: only ever
    /// [`UserStoreError::Exists`], [`UserStoreError::VersionConflict`] or
    /// [`UserStoreError::NotFound`].
    UserRefused(UserStoreError),
    /// Whether a user delete found its user.
    UserDeleted(bool),
    /// The secret value stored after an init.
    Secrets(SecretSet),
    /// A secret compare-and-set went through.
    SecretsWritten,
    /// A secret write was refused and wrote nothing: only ever
    /// [`SecretStoreError::Conflict`] or [`SecretStoreError::NotFound`].
    SecretsRefused(SecretStoreError),
    /// The answer of a counter reserve (a lock is an answer, not a refusal:
    /// it writes nothing, as every refusal).
    Reserved(sessiond_core::Reserved),
    /// A counter release or clear went through.
    CountersWritten,
    /// Whether a key insert wrote (false: a first key into a store that
    /// had keys).
    KeyInserted(bool),
    /// Whether a key delete found its key.
    KeyDeleted(bool),
    /// A key touch went through (or found nothing to touch).
    KeyTouched,
    /// A key write was refused and wrote nothing: only ever
    /// [`KeyStoreError::Exists`].
    KeyRefused(KeyStoreError),
    /// An event batch was written (ids already stored skipped).
    EventsAppended,
    /// How many events a prune removed.
    EventsPruned(u64),
}

/// The caller's answer: success or a refusal that changed nothing.
pub(crate) type Outcome = Result<Done, StoreError>;

impl Op {
    /// True for the one write that may be lost in a crash.
    pub(crate) fn is_touch(&self) -> bool {
        matches!(self, Op::Touch { .. })
    }

    /// Applies the operation. `Ok(Err(_))` is a refusal that wrote nothing;
    /// `Err(_)` an engine failure after which the transaction must be dropped.
    pub(crate) fn apply(&self, t: &mut Tables<'_>) -> Result<Outcome, StoreError> {
        match self {
            Op::Insert {
                session,
                limit,
                now,
                revocation,
                audit,
            } => insert(t, session, *limit, *now, *revocation, audit),
            Op::InsertAll(sessions) => insert_all(t, sessions),
            Op::Update {
                session,
                expected_version,
                audit,
            } => update(t, session, *expected_version, audit),
            Op::Touch {
                id,
                last_seen_at,
                idle_expires_at,
                client,
            } => touch(t, id, *last_seen_at, *idle_expires_at, client),
            Op::Revoke { id, revocation, audit } => {
                let revoked = match t.get(id)? {
                    Some(stored) => revoke_loaded(t, stored, *revocation)?,
                    None => None,
                };
                if revoked.is_some() {
                    crate::events::write(t, &audit.events)?;
                }
                Ok(Ok(Done::Revoked(revoked.map(Box::new))))
            }
            Op::RevokeSubject {
                tenant,
                subject,
                except,
                revocation,
                now,
                audit,
            } => {
                let mut revoked = Vec::new();
                for session in t.live_of_subject(tenant, subject, *now)? {
                    if Some(&session.id) != except.as_ref()
                        && let Some(done) = revoke_loaded(t, session, *revocation)?
                    {
                        revoked.push(done);
                    }
                }
                crate::events::write(t, &audit.picked_events(&revoked))?;
                Ok(Ok(Done::Sessions(revoked)))
            }
            Op::Purge { now, limit, audit } => purge(t, *now, *limit, audit),
            Op::InsertUser(user) => crate::users::insert(t, user),
            Op::UpdateUser { user, expected_version } => crate::users::update(t, user, *expected_version),
            Op::DeleteUser { tenant, name } => crate::users::delete(t, tenant, name),
            Op::InitSecrets { name, initial } => crate::secrets::init(t, name, initial),
            Op::PutSecrets {
                name,
                secrets,
                expected,
            } => crate::secrets::put(t, name, secrets, expected),
            Op::ReserveCounters { keys, now } => crate::counters::reserve(t, keys, *now),
            Op::ReleaseCounters { keys, now } => crate::counters::release(t, keys, *now),
            Op::ClearCounter(key) => crate::counters::clear(t, key),
            Op::InsertKey { key, only_if_none } => crate::api_keys::insert(t, key, *only_if_none),
            Op::DeleteKey(id) => crate::api_keys::delete(t, id),
            Op::TouchKey { id, at } => crate::api_keys::touch(t, id, *at),
            Op::AppendEvents(events) => crate::events::append(t, events),
            Op::PruneEvents { tenant, retention } => crate::events::prune(t, tenant.as_ref(), *retention),
        }
    }
}

/// All of `sessions` or none: every id and token hash is checked (against
/// the store and each other) before the first is written.
fn insert_all(t: &mut Tables<'_>, sessions: &[Session]) -> Result<Outcome, StoreError> {
    let mut ids = std::collections::HashSet::with_capacity(sessions.len());
    let mut hashes = std::collections::HashSet::with_capacity(sessions.len());
    for session in sessions {
        if !ids.insert(&session.id) || t.get(&session.id)?.is_some() {
            return Ok(Err(StoreError::Collision));
        }
        for hash in token_hashes(session) {
            if !hashes.insert(hash) || t.token_owner(&hash)?.is_some() {
                return Ok(Err(StoreError::Collision));
            }
        }
    }
    for session in sessions {
        t.put(session, None)?;
    }
    Ok(Ok(Done::InsertedAll))
}

fn insert(
    t: &mut Tables<'_>,
    session: &Session,
    limit: SubjectLimit,
    now: OffsetDateTime,
    revocation: Revocation,
    audit: &Audit,
) -> Result<Outcome, StoreError> {
    if t.get(&session.id)?.is_some() {
        return Ok(Err(StoreError::Collision));
    }
    for hash in token_hashes(session) {
        if t.token_owner(&hash)?.is_some() {
            return Ok(Err(StoreError::Collision));
        }
    }
    let mut inserted = Inserted::default();
    let max = match limit {
        SubjectLimit::Unlimited => None,
        SubjectLimit::Deny(max) | SubjectLimit::EvictOldest(max) => Some(max as usize),
    };
    if let Some(max) = max {
        let mut live = t.live_of_subject(&session.tenant, &session.subject, now)?;
        if live.len() >= max {
            if matches!(limit, SubjectLimit::Deny(_)) {
                return Ok(Err(StoreError::LimitReached));
            }
            live.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            let excess = live.len() + 1 - max.max(1);
            for victim in live.into_iter().take(excess) {
                if let Some(evicted) = revoke_loaded(t, victim, revocation)? {
                    inserted.evicted.push(evicted);
                }
            }
        }
    }
    t.put(session, None)?;
    crate::events::write(t, &audit.all_events(&inserted.evicted))?;
    Ok(Ok(Done::Inserted(inserted)))
}

fn update(t: &mut Tables<'_>, session: &Session, expected_version: u64, audit: &Audit) -> Result<Outcome, StoreError> {
    let Some(stored) = t.get(&session.id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    if stored.version != expected_version {
        return Ok(Err(StoreError::VersionConflict {
            current: stored.version,
        }));
    }
    for hash in token_hashes(session) {
        if t.token_owner(&hash)?.is_some_and(|owner| owner != session.id.as_str()) {
            return Ok(Err(StoreError::Collision));
        }
    }
    t.put(session, Some(&stored))?;
    crate::events::write(t, &audit.events)?;
    Ok(Ok(Done::Updated))
}

fn touch(
    t: &mut Tables<'_>,
    id: &SessionId,
    last_seen_at: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
    client: &ClientInfo,
) -> Result<Outcome, StoreError> {
    let untouched = Ok(Ok(Done::Touched {
        wrote: false,
        shortened: false,
    }));
    let Some(stored) = t.get(id)? else {
        return untouched;
    };
    if stored.revoked.is_some() || stored.last_seen_at >= last_seen_at {
        return untouched;
    }
    let mut session = stored.clone();
    session.last_seen_at = last_seen_at;
    session.idle_expires_at = idle_expires_at;
    session.client = client.clone();
    t.put(&session, Some(&stored))?;
    Ok(Ok(Done::Touched {
        wrote: true,
        shortened: session.expires_at() < stored.expires_at(),
    }))
}

/// Marks a record revoked (version + 1) unless it already is. `stored`
/// must be its current state in this transaction.
fn revoke_loaded(t: &mut Tables<'_>, stored: Session, revocation: Revocation) -> Result<Option<Session>, StoreError> {
    if stored.revoked.is_some() {
        return Ok(None);
    }
    let mut session = stored.clone();
    session.revoked = Some(revocation);
    session.version += 1;
    t.put(&session, Some(&stored))?;
    Ok(Some(session))
}

/// Walks the expiry index from its start: the cost is the number of
/// records removed, whatever the size of the store.
fn purge(t: &mut Tables<'_>, now: OffsetDateTime, limit: usize, audit: &Audit) -> Result<Outcome, StoreError> {
    // Every key whose deadline is <= now sorts before (now + 1ns, "").
    let end: (i128, &str) = (deadline_key(now).saturating_add(1), "");
    let mut due: Vec<String> = Vec::new();
    for entry in t.expiry.range(..end).map_err(engine)?.take(limit) {
        let (key, _) = entry.map_err(engine)?;
        due.push(key.value().1.to_owned());
    }
    let mut purged = Vec::with_capacity(due.len());
    for id in due {
        let session = load(&t.sessions, &id)?.ok_or_else(|| inconsistent("expiry index names a missing record"))?;
        t.delete(&session)?;
        purged.push(session);
    }
    crate::events::write(t, &audit.picked_events(purged.iter().filter(|s| s.revoked.is_none())))?;
    // Forgotten failure counters go with the same round (see `counters.rs`).
    crate::counters::purge(t, now, limit)?;
    Ok(Ok(Done::Sessions(purged)))
}
