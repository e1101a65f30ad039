//! [`SealedSessions`] and [`SealedEvents`]: any store, with session data
//! and clients sealed at rest.
//!
//! Sealing wraps the store rather than living in each engine, so every
//! engine (and every engine still to come) stores the same sealed form and
//! the conformance suite checks the wrapper like any other store. What a
//! store keeps in clear is what it must compare, index or expire by: ids,
//! tenant, subject, token hashes, deadlines, version, revocation, origin.
//!
//! The stored form of a session: non-empty `data` is the one-member object
//! `{"$sealed": "<sealed JSON of data>"}`, bound to the tenant and id
//! (empty data stays `{}`: see [`Sealer::seal_session`]); a
//! non-empty `client` is `{"sealed": "<sealed JSON of ip and user_agent>"}`,
//! bound to the id, and a non-empty `created_client` the same, bound to the
//! id under a place of its own (so neither opens as the other). An event's
//! client is sealed the same way, bound to its tenant and event id.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::audit::Audit;
use crate::event_store::{EventFilter, EventStore, EventStoreError, Retention, StoredEvent};
use crate::ids::{SessionId, Subject, Tenant};
use crate::opened_cache::OpenedCache;
use crate::sealing::{Keyring, OpenError, Place, sealed_by};
use crate::session::{ClientInfo, Revocation, Session};
use crate::store::{IdPage, Inserted, SessionStore, StoreError, SubjectLimit};
use crate::token::TokenHash;

/// A stored `client` equal to the session's `created_client`, which is
/// sealed alone: until a session is used from another client (the common
/// case) its client is sealed once, not twice, which saves a sealed
/// User-Agent per record (about 250 bytes; `scripts/store_bytes`). A touch
/// writes the client sealed as before. Never a sealed value: those start
/// with `v1.`.
const SAME_AS_CREATED: &str = "=created";

/// The member of a stored `data` object that holds the sealed data.
pub const SEALED_DATA_MEMBER: &str = "$sealed";

/// Seals records on the way into a store and opens them on the way out.
///
/// Without a keyring (encryption off) records pass unchanged, but a sealed
/// record read back is an error, never shown sealed as if it were data.
#[derive(Debug, Clone, Default)]
pub struct Sealer {
    keyring: Option<Arc<Keyring>>,
}

impl Sealer {
    /// Seals with `keyring`'s first key; opens with any of its keys.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring: Some(keyring) }
    }

    /// Encryption off.
    pub fn off() -> Self {
        Self { keyring: None }
    }

    /// The keyring, when encryption is on.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    /// `session` as the store keeps it.
    ///
    /// Empty data is kept as it is, `{}`. Sealed, its length would show it
    /// empty all the same (a value's ciphertext is as long as its text), so
    /// sealing it hides nothing; it cost every session without data about
    /// 80 bytes at rest and every read of one a key derivation and an
    /// AES-GCM open, forward auth's portal logins among them. A record that
    /// a writer of the store changes to `{}` shows its owner no data, which
    /// such a writer could already do by writing data in clear (records
    /// written with encryption off are read).
    pub fn seal_session<'a>(&self, session: &'a Session) -> Result<Cow<'a, Session>, StoreError> {
        let Some(keyring) = &self.keyring else {
            return Ok(Cow::Borrowed(session));
        };
        let mut stored = session.clone();
        if !session.data.is_empty() {
            let data = serde_json::to_vec(&session.data).map_err(|e| StoreError::Backend(Box::new(e)))?;
            let place = Place::SessionData {
                tenant: session.tenant.as_str(),
                id: session.id.as_str(),
            };
            let sealed = keyring
                .seal(place, &data)
                .map_err(|e| StoreError::Backend(Box::new(e)))?;
            stored.data =
                serde_json::Map::from_iter([(SEALED_DATA_MEMBER.to_owned(), serde_json::Value::String(sealed))]);
        }
        stored.client = if !session.client.is_empty() && session.client == session.created_client {
            ClientInfo {
                ip: None,
                user_agent: None,
                sealed: Some(SAME_AS_CREATED.to_owned()),
            }
        } else {
            self.seal_client(&session.id, &session.client)?.into_owned()
        };
        stored.created_client = seal_client(
            Some(keyring),
            Place::SessionCreatedClient {
                id: session.id.as_str(),
            },
            &session.created_client,
        )
        .map_err(|e| StoreError::Backend(Box::new(e)))?
        .into_owned();
        Ok(Cow::Owned(stored))
    }

    /// A session's client as the store keeps it.
    pub fn seal_client<'a>(&self, id: &SessionId, client: &'a ClientInfo) -> Result<Cow<'a, ClientInfo>, StoreError> {
        seal_client(
            self.keyring.as_deref(),
            Place::SessionClient { id: id.as_str() },
            client,
        )
        .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// A stored session as callers read it.
    pub fn open_session(&self, mut stored: Session) -> Result<Session, OpenError> {
        if let Some(sealed) = sealed_data(&stored) {
            let keyring = self.keyring.as_deref().ok_or(OpenError::NoKeyring)?;
            let place = Place::SessionData {
                tenant: stored.tenant.as_str(),
                id: stored.id.as_str(),
            };
            let data = keyring.open(place, sealed)?;
            // It authenticated, so it is what was sealed: JSON of a map.
            stored.data = serde_json::from_slice(&data).map_err(|_| OpenError::Malformed)?;
        }
        let place = Place::SessionCreatedClient { id: stored.id.as_str() };
        stored.created_client = open_client(self.keyring.as_deref(), place, stored.created_client)?;
        stored.client = if stored.client.sealed.as_deref() == Some(SAME_AS_CREATED) {
            stored.created_client.clone()
        } else {
            let place = Place::SessionClient { id: stored.id.as_str() };
            open_client(self.keyring.as_deref(), place, stored.client)?
        };
        Ok(stored)
    }

    /// The key id a stored session's data was sealed by; `None` when it is
    /// in clear (written while encryption was off, or empty). Its clients
    /// may name other keys: [`Sealer::sealed_only_by`] checks every sealed
    /// field.
    pub fn sealed_by(stored: &Session) -> Option<crate::sealing::DataKeyId> {
        sealed_data(stored).and_then(sealed_by)
    }

    /// True when every field of `stored` that is sealed at rest (data,
    /// client, created client) is sealed by `key`, empty data and an empty
    /// client counting as sealed (there is nothing to seal). A record in
    /// clear, or with any field under another key, is not: a reseal must
    /// rewrite it.
    pub fn sealed_only_by(stored: &Session, key: crate::sealing::DataKeyId) -> bool {
        (stored.data.is_empty() || Self::sealed_by(stored) == Some(key))
            && client_sealed_only_by(&stored.client, key)
            && client_sealed_only_by(&stored.created_client, key)
    }

    /// True when `stored` has nothing to open and encryption is off.
    fn is_clear(&self, stored: &Session) -> bool {
        self.keyring.is_none()
            && sealed_data(stored).is_none()
            && stored.client.sealed.is_none()
            && stored.created_client.sealed.is_none()
    }

    fn open_all(&self, stored: Vec<Session>) -> Result<Vec<Session>, StoreError> {
        stored
            .into_iter()
            .map(|s| self.open_session(s).map_err(|e| StoreError::Corrupt(Box::new(e))))
            .collect()
    }

    /// Records a write has already changed: opened where they open, else
    /// returned with empty data and clients. The write is done; failing it
    /// now would report a change that was made as one that was not.
    fn open_written(&self, stored: Vec<Session>) -> Vec<Session> {
        stored
            .into_iter()
            .map(|s| {
                let id = s.id.clone();
                self.open_session(s.clone()).unwrap_or_else(|error| {
                    tracing::warn!(session = %id, %error, "a written session's sealed fields do not open");
                    Session {
                        data: serde_json::Map::new(),
                        client: ClientInfo::default(),
                        created_client: ClientInfo::default(),
                        ..s
                    }
                })
            })
            .collect()
    }

    /// `audit` with its events' clients sealed.
    pub fn seal_audit<'a>(&self, audit: &'a Audit) -> Result<Cow<'a, Audit>, StoreError> {
        if self.keyring.is_none() || audit.events.iter().all(|e| e.event.client.is_none()) {
            return Ok(Cow::Borrowed(audit));
        }
        let events = self
            .seal_events(&audit.events)
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Cow::Owned(Audit {
            events: events.into_owned(),
            picked: audit.picked,
        }))
    }

    fn seal_events<'a>(&self, events: &'a [StoredEvent]) -> Result<Cow<'a, [StoredEvent]>, crate::sealing::SealError> {
        let Some(keyring) = self.keyring.as_deref() else {
            return Ok(Cow::Borrowed(events));
        };
        let mut sealed = events.to_vec();
        for stored in &mut sealed {
            if let Some(client) = &stored.event.client {
                let place = Place::EventClient {
                    tenant: stored.event.tenant.as_str(),
                    id: stored.id.as_str(),
                };
                let client = seal_client(Some(keyring), place, client)?.into_owned();
                stored.event.client = Some(client);
            }
        }
        Ok(Cow::Owned(sealed))
    }

    /// An event read back. A client sealed by a key no longer configured
    /// reads as unknown (events are not resealed; they age out), anything
    /// else that does not open is an error.
    fn open_event(&self, mut stored: StoredEvent) -> Result<StoredEvent, OpenError> {
        if let Some(client) = stored.event.client.take() {
            let place = Place::EventClient {
                tenant: stored.event.tenant.as_str(),
                id: stored.id.as_str(),
            };
            stored.event.client = match open_client(self.keyring.as_deref(), place, client) {
                Ok(client) => Some(client),
                Err(OpenError::UnknownKey(key)) => {
                    tracing::warn!(event = %stored.id, %key, "event client sealed by a retired data key");
                    None
                }
                Err(other) => return Err(other),
            };
        }
        Ok(stored)
    }
}

fn sealed_data(stored: &Session) -> Option<&str> {
    if stored.data.len() != 1 {
        return None;
    }
    match stored.data.get(SEALED_DATA_MEMBER) {
        Some(serde_json::Value::String(s)) if sealed_by(s).is_some() => Some(s),
        _ => None,
    }
}

/// True when `client` is sealed by `key`, or empty (nothing to seal).
fn client_sealed_only_by(client: &ClientInfo, key: crate::sealing::DataKeyId) -> bool {
    match client.sealed.as_deref() {
        // Sealed as the created client is.
        Some(SAME_AS_CREATED) => true,
        Some(sealed) => sealed_by(sealed) == Some(key),
        None => client.ip.is_none() && client.user_agent.is_none(),
    }
}

fn seal_client<'a>(
    keyring: Option<&Keyring>,
    place: Place<'_>,
    client: &'a ClientInfo,
) -> Result<Cow<'a, ClientInfo>, crate::sealing::SealError> {
    let Some(keyring) = keyring else {
        return Ok(Cow::Borrowed(client));
    };
    if client.ip.is_none() && client.user_agent.is_none() {
        return Ok(Cow::Owned(ClientInfo::default()));
    }
    let clear = ClientInfo {
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        sealed: None,
    };
    // Serializing two optional strings cannot fail.
    let json = serde_json::to_vec(&clear).unwrap_or_default();
    Ok(Cow::Owned(ClientInfo {
        ip: None,
        user_agent: None,
        sealed: Some(keyring.seal(place, &json)?),
    }))
}

fn open_client(keyring: Option<&Keyring>, place: Place<'_>, stored: ClientInfo) -> Result<ClientInfo, OpenError> {
    let Some(sealed) = &stored.sealed else {
        return Ok(stored);
    };
    let keyring = keyring.ok_or(OpenError::NoKeyring)?;
    let json = keyring.open(place, sealed)?;
    let client: ClientInfo = serde_json::from_slice(&json).map_err(|_| OpenError::Malformed)?;
    Ok(ClientInfo {
        ip: client.ip,
        user_agent: client.user_agent,
        sealed: None,
    })
}

/// What [`SealedSessions::reseal`] did to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resealed {
    /// Every sealed field (data, client, created client) already sealed by
    /// the sealing key (an empty client has nothing to seal).
    Current,
    /// Rewritten under the sealing key (from a retired key, or from clear).
    Rewritten,
    /// No longer in the store.
    Gone,
    /// Changed by other writes on every attempt; a later walk retries.
    Busy,
}

/// Why [`SealedSessions::reseal`] could not reseal a record.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    /// Encryption is off: there is no key to reseal with.
    #[error("encryption is off: nothing to reseal with")]
    NoKeyring,
    /// The record does not open (its key is not configured, or it was
    /// altered); it is left as it is.
    #[error("session {id} does not open")]
    Unopenable {
        /// The record.
        id: SessionId,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A [`SessionStore`] whose records are sealed at rest by a [`Sealer`].
#[derive(Debug, Clone)]
pub struct SealedSessions {
    inner: Arc<dyn SessionStore>,
    sealer: Sealer,
    opened: Arc<OpenedCache>,
}

impl SealedSessions {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn SessionStore>, sealer: Sealer) -> Self {
        Self {
            inner,
            sealer,
            opened: Arc::default(),
        }
    }

    /// A record read by token or id, opened (once per stored record the
    /// engine keeps in memory; see [`OpenedCache`]).
    fn open_shared(&self, stored: Arc<Session>) -> Result<Arc<Session>, StoreError> {
        if self.sealer.is_clear(&stored) {
            return Ok(stored);
        }
        if let Some(hit) = self.opened.get(&stored) {
            return Ok(hit);
        }
        let opened = self
            .sealer
            .open_session(Session::clone(&stored))
            .map_err(|e| StoreError::Corrupt(Box::new(e)))?;
        let opened = Arc::new(opened);
        self.opened.put(&stored, &opened);
        Ok(opened)
    }

    /// Rewrites the record `id` under the sealing key if any of its sealed
    /// fields (data, client, created client) is sealed by another key or
    /// stored in clear, keeping its version: a reseal
    /// changes no field a caller reads, so it must not fail a concurrent
    /// compare-and-set. A record a write changes meanwhile was sealed by
    /// that write; this one then tries again. A touch that lands between
    /// the read and the rewrite may be lost, which a touch may always be.
    pub async fn reseal(&self, id: &SessionId) -> Result<Resealed, ResealError> {
        let keyring = self.sealer.keyring().ok_or(ResealError::NoKeyring)?;
        let current = keyring.sealing_key();
        for _ in 0..8 {
            let Some(stored) = self.inner.get_by_id(id).await? else {
                return Ok(Resealed::Gone);
            };
            if Sealer::sealed_only_by(&stored, current) {
                return Ok(Resealed::Current);
            }
            let version = stored.version;
            let opened = self
                .sealer
                .open_session(Arc::unwrap_or_clone(stored))
                .map_err(|source| ResealError::Unopenable { id: id.clone(), source })?;
            match self.update(&opened, version, &Audit::NONE).await {
                Ok(()) => return Ok(Resealed::Rewritten),
                Err(StoreError::NotFound) => return Ok(Resealed::Gone),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Ok(Resealed::Busy)
    }
}

#[async_trait]
impl SessionStore for SealedSessions {
    async fn insert(
        &self,
        session: &Session,
        limit: SubjectLimit,
        now: OffsetDateTime,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Inserted, StoreError> {
        let stored = self.sealer.seal_session(session)?;
        let audit = self.sealer.seal_audit(audit)?;
        let inserted = self.inner.insert(&stored, limit, now, revocation, &audit).await?;
        Ok(Inserted {
            evicted: self.sealer.open_written(inserted.evicted),
        })
    }

    async fn get_by_token(&self, hash: &TokenHash) -> Result<Option<Arc<Session>>, StoreError> {
        match self.inner.get_by_token(hash).await? {
            Some(stored) => self.open_shared(stored).map(Some),
            None => Ok(None),
        }
    }

    async fn get_by_id(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        match self.inner.get_by_id(id).await? {
            Some(stored) => self.open_shared(stored).map(Some),
            None => Ok(None),
        }
    }

    async fn update(&self, session: &Session, expected_version: u64, audit: &Audit) -> Result<(), StoreError> {
        let stored = self.sealer.seal_session(session)?;
        let audit = self.sealer.seal_audit(audit)?;
        self.inner.update(&stored, expected_version, &audit).await
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
        client: &ClientInfo,
    ) -> Result<bool, StoreError> {
        let client = self.sealer.seal_client(id, client)?;
        self.inner.touch(id, last_seen_at, idle_expires_at, &client).await
    }

    async fn revoke(
        &self,
        id: &SessionId,
        revocation: Revocation,
        audit: &Audit,
    ) -> Result<Option<Session>, StoreError> {
        let audit = self.sealer.seal_audit(audit)?;
        let revoked = self.inner.revoke(id, revocation, &audit).await?;
        Ok(revoked.and_then(|s| self.sealer.open_written(vec![s]).pop()))
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
        let audit = self.sealer.seal_audit(audit)?;
        let revoked = (self.inner)
            .revoke_subject(tenant, subject, except, revocation, now, &audit)
            .await?;
        Ok(self.sealer.open_written(revoked))
    }

    async fn list_subject(
        &self,
        tenant: &Tenant,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let stored = self.inner.list_subject(tenant, subject, now).await?;
        self.sealer.open_all(stored)
    }

    async fn purge_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
        audit: &Audit,
    ) -> Result<Vec<Session>, StoreError> {
        let audit = self.sealer.seal_audit(audit)?;
        let purged = self.inner.purge_expired(now, limit, &audit).await?;
        Ok(self.sealer.open_written(purged))
    }

    async fn scan_ids(&self, cursor: Option<&str>, limit: usize) -> Result<IdPage, StoreError> {
        self.inner.scan_ids(cursor, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    fn shards(&self) -> Option<crate::Shards> {
        self.inner.shards()
    }
}

/// An [`EventStore`] whose events' clients are sealed at rest.
#[derive(Debug, Clone)]
pub struct SealedEvents {
    inner: Arc<dyn EventStore>,
    sealer: Sealer,
}

impl SealedEvents {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn EventStore>, sealer: Sealer) -> Self {
        Self { inner, sealer }
    }
}

#[async_trait]
impl EventStore for SealedEvents {
    async fn append_events(&self, events: &[StoredEvent]) -> Result<(), EventStoreError> {
        let events = self
            .sealer
            .seal_events(events)
            .map_err(|e| EventStoreError::Backend(Box::new(e)))?;
        self.inner.append_events(&events).await
    }

    async fn query_events(&self, tenant: &Tenant, filter: &EventFilter) -> Result<Vec<StoredEvent>, EventStoreError> {
        let stored = self.inner.query_events(tenant, filter).await?;
        stored
            .into_iter()
            .map(|e| {
                self.sealer
                    .open_event(e)
                    .map_err(|e| EventStoreError::Corrupt(Box::new(e)))
            })
            .collect()
    }

    async fn prune_events(&self, tenant: Option<&Tenant>, retention: Retention) -> Result<u64, EventStoreError> {
        self.inner.prune_events(tenant, retention).await
    }
}
