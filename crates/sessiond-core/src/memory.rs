//! An in-memory [`SessionStore`]: for tests, single-process use, and as a
//! building block for caches.
//!
//! All indexes sit behind one `std::sync::RwLock`. Verification takes only
//! the read side, so concurrent verifies never wait for each other; the lock
//! is never held across an `.await` (every method is synchronous inside), so
//! a blocking lock is the right tool and cheaper than an async one.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::audit::Audit;
use crate::ids::{SessionId, Subject, Tenant};
use crate::session::{ClientInfo, Revocation, Session};
use crate::store::{IdPage, Inserted, SessionStore, StoreError, SubjectLimit};
use crate::token::{TokenHash, TokenHashBuildHasher};

/// A cloneable handle to an in-memory store; clones share the data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<RwLock<Indexes>>,
    /// Portal accounts, apart from the session indexes: user calls are rare
    /// and must not contend with verification.
    pub(crate) users: Arc<std::sync::Mutex<crate::memory_users::Users>>,
    /// Shared secret sets, apart for the same reason.
    pub(crate) secrets: Arc<std::sync::Mutex<crate::memory_secrets::Secrets>>,
    /// Failure counters, apart for the same reason.
    pub(crate) counters: Arc<std::sync::Mutex<crate::memory_counters::Counters>>,
    /// API keys and their version, apart for the same reason.
    pub(crate) keys: Arc<std::sync::Mutex<crate::memory_keys::Keys>>,
    /// Audit events by tenant, apart for the same reason.
    pub(crate) events: Arc<std::sync::Mutex<crate::memory_events::Events>>,
}

#[derive(Debug, Default)]
struct Indexes {
    by_id: HashMap<SessionId, Arc<Session>>,
    /// Current and previous token hashes, sharing the record with `by_id` so
    /// a verify is one lookup.
    by_token: HashMap<TokenHash, Arc<Session>, TokenHashBuildHasher>,
    /// Non-revoked sessions of each subject (expired ones stay until purged).
    by_subject: HashMap<(Tenant, Subject), BTreeSet<SessionId>>,
    /// `(expires_at, id)` of every record, so purge visits only what expired.
    by_expiry: BTreeSet<(OffsetDateTime, SessionId)>,
}

fn token_hashes(session: &Session) -> impl Iterator<Item = TokenHash> + '_ {
    std::iter::once(session.token_hash).chain(session.previous_token.map(|p| p.hash))
}

impl Indexes {
    fn index(&mut self, session: &Arc<Session>) {
        for hash in token_hashes(session) {
            self.by_token.insert(hash, Arc::clone(session));
        }
        // Anonymous records belong to nobody: no subject index to grow.
        if session.revoked.is_none() && !session.is_anonymous() {
            self.by_subject
                .entry((session.tenant.clone(), session.subject.clone()))
                .or_default()
                .insert(session.id.clone());
        }
        self.by_expiry.insert((session.expires_at(), session.id.clone()));
    }

    fn unindex(&mut self, session: &Session) {
        for hash in token_hashes(session) {
            if self.by_token.get(&hash).is_some_and(|owner| owner.id == session.id) {
                self.by_token.remove(&hash);
            }
        }
        let key = (session.tenant.clone(), session.subject.clone());
        if let Some(ids) = self.by_subject.get_mut(&key) {
            ids.remove(&session.id);
            if ids.is_empty() {
                self.by_subject.remove(&key);
            }
        }
        self.by_expiry.remove(&(session.expires_at(), session.id.clone()));
    }

    /// Replaces a stored record, keeping every index in step.
    fn replace(&mut self, session: Session) {
        if let Some(old) = self.by_id.get(&session.id).cloned() {
            self.unindex(&old);
        }
        let session = Arc::new(session);
        self.index(&session);
        self.by_id.insert(session.id.clone(), session);
    }

    fn live_of_subject(&self, tenant: &Tenant, subject: &Subject, now: OffsetDateTime) -> Vec<&Session> {
        let key = (tenant.clone(), subject.clone());
        self.by_subject
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .map(|s| &**s)
            .filter(|s| s.is_live(now))
            .collect()
    }

    fn revoke_one(&mut self, id: &SessionId, revocation: Revocation) -> Option<Session> {
        let mut session = Session::clone(self.by_id.get(id)?);
        if session.revoked.is_some() {
            return None;
        }
        session.revoked = Some(revocation);
        session.version += 1;
        self.replace(session.clone());
        Some(session)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records held, tombstones and expired ones included.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock cannot leave the indexes half-updated
    // in a way later calls would misread worse than a crash would, and every
    // mutation completes before any call that could panic; so a poisoned
    // lock is taken over rather than propagated.
    fn read(&self) -> RwLockReadGuard<'_, Indexes> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Indexes> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        let mut ix = self.write();
        if ix.by_id.contains_key(&session.id) || token_hashes(session).any(|h| ix.by_token.contains_key(&h)) {
            return Err(StoreError::Collision);
        }
        let mut inserted = Inserted::default();
        let max = match limit {
            SubjectLimit::Unlimited => None,
            SubjectLimit::Deny(max) | SubjectLimit::EvictOldest(max) => Some(max as usize),
        };
        if let Some(max) = max {
            let mut live: Vec<(OffsetDateTime, SessionId)> = ix
                .live_of_subject(&session.tenant, &session.subject, now)
                .into_iter()
                .map(|s| (s.created_at, s.id.clone()))
                .collect();
            if live.len() >= max {
                if matches!(limit, SubjectLimit::Deny(_)) {
                    return Err(StoreError::LimitReached);
                }
                live.sort();
                let excess = live.len() + 1 - max.max(1);
                for (_, id) in live.into_iter().take(excess) {
                    if let Some(evicted) = ix.revoke_one(&id, revocation) {
                        inserted.evicted.push(evicted);
                    }
                }
            }
        }
        ix.replace(session.clone());
        self.record_events(&audit.all_events(&inserted.evicted));
        Ok(inserted)
    }

    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.read().by_token.get(hash).cloned())
    }

    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.read().by_id.get(id).cloned())
    }

    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        let mut ix = self.write();
        let stored = ix.by_id.get(&session.id).ok_or(StoreError::NotFound)?;
        if stored.version != expected_version {
            return Err(StoreError::VersionConflict {
                current: stored.version,
            });
        }
        let taken_by_other =
            token_hashes(session).any(|h| ix.by_token.get(&h).is_some_and(|owner| owner.id != session.id));
        if taken_by_other {
            return Err(StoreError::Collision);
        }
        ix.replace(session.clone());
        self.record_events(&audit.events);
        Ok(())
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        let mut ix = self.write();
        let Some(stored) = ix.by_id.get(id) else {
            return Ok(false);
        };
        if stored.revoked.is_some() || stored.last_seen_at >= last_seen_at {
            return Ok(false);
        }
        let mut session = Session::clone(stored);
        session.last_seen_at = last_seen_at;
        session.idle_expires_at = idle_expires_at;
        session.client = client.clone();
        ix.replace(session);
        Ok(true)
    }

    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        let mut ix = self.write();
        let revoked = ix.revoke_one(id, revocation);
        if revoked.is_some() {
            self.record_events(&audit.events);
        }
        Ok(revoked)
    }

    async fn revoke_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        except: Option<&SessionId>,
        revocation: Revocation,
        now: OffsetDateTime,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        let mut ix = self.write();
        let ids: Vec<SessionId> = ix
            .live_of_subject(tenant, subject, now)
            .into_iter()
            .map(|s| s.id.clone())
            .filter(|id| Some(id) != except)
            .collect();
        let revoked: Vec<Session> = ids.iter().filter_map(|id| ix.revoke_one(id, revocation)).collect();
        self.record_events(&audit.picked_events(&revoked));
        Ok(revoked)
    }

    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        Ok(self
            .read()
            .live_of_subject(tenant, subject, now)
            .into_iter()
            .cloned()
            .collect())
    }

    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        let mut ix = self.write();
        let due: Vec<SessionId> = ix
            .by_expiry
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect();
        let mut purged = Vec::with_capacity(due.len());
        for id in due {
            if let Some(session) = ix.by_id.remove(&id) {
                ix.unindex(&session);
                purged.push(Arc::unwrap_or_clone(session));
            }
        }
        self.record_events(&audit.picked_events(purged.iter().filter(|s| s.revoked.is_none())));
        Ok(purged)
    }

    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        let indexes = self.read();
        let mut ids: Vec<&SessionId> = indexes
            .by_id
            .keys()
            .filter(|id| cursor.is_none_or(|after| id.as_str() > after))
            .collect();
        ids.sort_unstable();
        ids.truncate(limit);
        let next = (ids.len() == limit)
            .then(|| ids.last().map(|id| id.as_str().to_owned()))
            .flatten();
        Ok(IdPage {
            ids: ids.into_iter().cloned().collect(),
            next,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
