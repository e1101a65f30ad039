//! [`SessionManager`]: the lifecycle rules, on top of any [`SessionStore`].

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::anonymous::AnonymousLimit;
use crate::audit::{Audit, Picked};
use crate::client_binding::Signals;
use crate::clock::{Clock, SystemClock, truncate_to_micros};
use crate::counters::{CounterRule, CounterStore};
use crate::error::Error;
use crate::event_id::EventIds;
use crate::event_store::StoredEvent;
use crate::events::{AnomalyReason, Event, EventKind, EventSink, NoEvents, Rejection};
use crate::ids::{SessionId, Subject, Tenant};
use crate::origin::SessionOrigin;
use crate::policy::{LimitAction, Policy};
use crate::rotation::Rotation;
use crate::session::{Aal, ClientInfo, PreviousToken, Revocation, RevokeReason, Session};
use crate::store::{SessionStore, StoreError, SubjectLimit};
use crate::token::{Token, TokenHash};

/// Attempts before a write that keeps losing races or colliding gives up.
/// Collisions of 256-bit values and endless races are both practically
/// impossible; the bound only guarantees termination.
const MAX_ATTEMPTS: usize = 8;

/// The data object of a session.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// What a new session starts with, besides its subject.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Longer timeouts and a persistent cookie.
    pub remember_me: bool,
    /// Assurance level of the login.
    pub aal: Aal,
    /// Initial application data.
    pub data: SessionData,
    /// Who logged in from where.
    pub client: ClientInfo,
    /// Which entry point creates the session ([`SessionOrigin::Api`] unless
    /// the portal's own login says otherwise).
    pub origin: SessionOrigin,
}

/// Creates, verifies, rotates and ends sessions.
///
/// A manager is a cheap handle (clone it freely) bound to one tenant; use
/// [`SessionManager::for_tenant`] to get a handle on another tenant over the
/// same store.
#[derive(Debug, Clone)]
pub struct SessionManager {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tenant: Tenant,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) policy: Policy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: Arc<dyn EventSink>,
    /// Set when the store records lifecycle events with the writes.
    pub(crate) audit_ids: Option<Arc<EventIds>>,
    /// Where anonymous creations are counted per client address.
    pub(crate) anonymous_limit: Option<AnonymousLimit>,
}

/// Builds a [`SessionManager`]; see [`SessionManager::builder`].
#[derive(Debug)]
pub struct SessionManagerBuilder {
    store: Arc<dyn SessionStore>,
    policy: Policy,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    audit_ids: Option<Arc<EventIds>>,
    anonymous_limit: Option<AnonymousLimit>,
    tenant: Tenant,
}

impl SessionManagerBuilder {
    /// Replaces the default [`Policy`].
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Replaces the [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends events to `events` instead of discarding them.
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// Has the store record each lifecycle event in the same atomic change
    /// as the session write it records ([`crate::Audit`]), with ids from
    /// `ids`; the store must then also be the [`crate::EventStore`] events
    /// are read from. Only events with no session write of their own (a
    /// refused verify, a touch, which may be lost anyway) still go to the
    /// sink. Without this, every event goes to the sink after its write.
    pub fn store_events(mut self, ids: Arc<EventIds>) -> Self {
        self.audit_ids = Some(ids);
        self
    }

    /// Counts anonymous sessions created per client address in `counters`
    /// (shared by every node over the store) under `rule`: the creation
    /// after `rule.free` ones succeeds and locks the address for the rule's
    /// delay ([`Error::AnonymousLimit`] until it ends), so one address
    /// cannot fill the store with visitors. Creations that name no address
    /// are not counted.
    pub fn anonymous_limit(mut self, counters: Arc<dyn CounterStore>, rule: CounterRule) -> Self {
        self.anonymous_limit = Some(AnonymousLimit { counters, rule });
        self
    }

    /// Binds the manager to a tenant other than `default`.
    pub fn tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = tenant;
        self
    }

    /// Validates the policy and builds the manager.
    pub fn build(self) -> Result<SessionManager, Error> {
        self.policy.validate()?;
        Ok(SessionManager {
            shared: Arc::new(Shared {
                store: self.store,
                policy: self.policy,
                clock: self.clock,
                events: self.events,
                audit_ids: self.audit_ids,
                anonymous_limit: self.anonymous_limit,
            }),
            tenant: self.tenant,
        })
    }
}

/// `at + duration`, saturating at the largest representable instant instead
/// of panicking on overflow.
pub(crate) fn after(at: OffsetDateTime, duration: Duration) -> OffsetDateTime {
    time::Duration::try_from(duration)
        .ok()
        .and_then(|d| at.checked_add(d))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

impl SessionManager {
    /// Starts building a manager over `store` with the default policy, the
    /// system clock, no events and the `default` tenant.
    pub fn builder(store: Arc<dyn SessionStore>) -> SessionManagerBuilder {
        SessionManagerBuilder {
            store,
            policy: Policy::default(),
            clock: Arc::new(SystemClock),
            events: Arc::new(NoEvents),
            audit_ids: None,
            anonymous_limit: None,
            tenant: Tenant::default_tenant(),
        }
    }

    /// The same manager, acting in another tenant.
    pub fn for_tenant(&self, tenant: Tenant) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            tenant,
        }
    }

    /// The tenant this handle acts in.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.store
    }

    /// The manager's clock, truncated to microseconds like every stored
    /// timestamp: what callers compare session times against.
    pub fn now(&self) -> OffsetDateTime {
        truncate_to_micros(self.shared.clock.now())
    }

    pub(crate) fn event(
        &self,
        at: OffsetDateTime,
        kind: EventKind,
        session: Option<&Session>,
        client: Option<&ClientInfo>,
    ) -> Event {
        Event {
            at,
            kind,
            tenant: session.map_or_else(|| self.tenant.clone(), |s| s.tenant.clone()),
            session_id: session.map(|s| s.id.clone()),
            subject: session.and_then(|s| s.signed_in_subject().cloned()),
            client: client.filter(|c| !c.is_empty()).cloned(),
            count: 1,
        }
    }

    /// Sends an event of a change the store did not record to the sink.
    pub(crate) fn emit(
        &self,
        at: OffsetDateTime,
        kind: EventKind,
        session: Option<&Session>,
        client: Option<&ClientInfo>,
    ) {
        self.shared.events.emit(self.event(at, kind, session, client));
    }

    /// The audit of a write that records `known`, and `picked` for the
    /// records the store picks: empty unless the store records events.
    pub(crate) fn audit(&self, known: Vec<Event>, picked: Option<(OffsetDateTime, EventKind)>) -> Audit {
        let Some(ids) = &self.shared.audit_ids else {
            return Audit::NONE;
        };
        Audit {
            // Picked ids first, so a login's `created` sorts after the
            // evictions it caused, as it happened.
            picked: picked.map(|(at, kind)| Picked {
                at,
                kind,
                ids: ids.reserve(at),
            }),
            events: known
                .into_iter()
                .map(|event| StoredEvent {
                    id: ids.next_id(event.at),
                    event,
                })
                .collect(),
        }
    }

    /// After a write: sends its events to the sink, or, when the store
    /// recorded them with the write, tells the sink they were stored.
    pub(crate) fn emit_unless_stored<'a>(&self, events: impl IntoIterator<Item = &'a Event>) {
        let stored = self.shared.audit_ids.is_some();
        for event in events {
            if stored {
                self.shared.events.stored(event);
            } else {
                self.shared.events.emit(event.clone());
            }
        }
    }

    fn reject(
        &self,
        at: OffsetDateTime,
        why: Rejection,
        session: Option<&Session>,
        client: Option<&ClientInfo>,
    ) -> Error {
        self.emit(at, EventKind::VerifyFailed(why), session, client);
        Error::Rejected(why)
    }

    /// Checks `data` against the limit of a signed-in session.
    pub(crate) fn check_data(&self, data: &SessionData) -> Result<(), Error> {
        check_data_size(data, self.shared.policy.max_data_bytes)
    }

    /// Starts a new session for `subject` (a login) and returns its token,
    /// which is shown only this once.
    ///
    /// Always creates a fresh session and token: nothing the client brought
    /// is reused, so session fixation is impossible. Enforces the
    /// per-subject limit atomically with the insert.
    ///
    /// A subject read back from a record written before the subject rule
    /// ([`Subject::from_record`]) is refused like one from a request: every
    /// new session's subject meets [`Subject::new`]'s rule.
    pub async fn create(&self, subject: &Subject, options: CreateOptions) -> Result<(Token, Session), Error> {
        subject.check_new()?;
        self.check_data(&options.data)?;
        let policy = &self.shared.policy;
        let (idle, _) = policy.timeouts(options.remember_me);
        let absolute = policy.absolute_timeout_at(options.remember_me, options.aal);
        let limit = match (policy.max_sessions_per_subject, policy.on_session_limit) {
            (0, _) => SubjectLimit::Unlimited,
            (n, LimitAction::Deny) => SubjectLimit::Deny(n),
            (n, LimitAction::EvictOldest) => SubjectLimit::EvictOldest(n),
        };
        self.insert_new(subject, idle, absolute, limit, options).await
    }

    /// A new session's id and token: random, and where the store has
    /// shards, both in the subject's (or, for an anonymous session, in the
    /// id's).
    fn draw_new(&self, subject: &Subject) -> Result<(SessionId, Token), Error> {
        let Some(shards) = self.shared.store.shards() else {
            return Ok((SessionId::generate()?, Token::generate()?));
        };
        let id = shards.id_in(shards.for_subject(&self.tenant, subject))?;
        let token = shards.token_in(shards.of_id(&id))?;
        Ok((id, token))
    }

    /// A new token for the session `id` (a rotation): in the id's shard
    /// where the store has shards, so the record never changes shard.
    fn draw_token_for(&self, id: &SessionId) -> Result<Token, Error> {
        match self.shared.store.shards() {
            Some(shards) => Ok(shards.token_in(shards.of_id(id))?),
            None => Ok(Token::generate()?),
        }
    }

    /// Inserts a fresh session (new id, new token) for `subject` with these
    /// timeouts, under `limit`; what [`SessionManager::create`] and
    /// [`SessionManager::create_anonymous`] share once they have checked
    /// their input.
    pub(crate) async fn insert_new(
        &self,
        subject: &Subject,
        idle: Duration,
        absolute: Duration,
        limit: SubjectLimit,
        options: CreateOptions,
    ) -> Result<(Token, Session), Error> {
        let now = self.now();
        let eviction = Revocation {
            at: now,
            reason: RevokeReason::Limit,
        };
        let client = options.client.sanitized();
        let absolute_expires_at = after(now, absolute);
        let mut last_error = StoreError::Collision;
        for _ in 0..MAX_ATTEMPTS {
            let (id, token) = self.draw_new(subject)?;
            let session = Session {
                id,
                tenant: self.tenant.clone(),
                subject: subject.clone(),
                token_hash: token.hash(),
                previous_token: None,
                created_at: now,
                last_seen_at: now,
                authenticated_at: now,
                idle_expires_at: after(now, idle).min(absolute_expires_at),
                absolute_expires_at,
                remember_me: options.remember_me,
                aal: options.aal,
                data: options.data.clone(),
                created_client: client.clone(),
                client: client.clone(),
                version: 1,
                revoked: None,
                origin: options.origin,
            };
            let created = self.event(now, EventKind::Created, Some(&session), Some(&session.client));
            // Only an evicting limit can make the store pick records; without
            // one there is no template to send (nor ids to reserve).
            let evicts = matches!(limit, SubjectLimit::EvictOldest(_));
            let picked = evicts.then_some((now, EventKind::Revoked(RevokeReason::Limit)));
            let audit = self.audit(vec![created.clone()], picked);
            match self.shared.store.insert(&session, limit, now, eviction, &audit).await {
                Ok(inserted) => {
                    let evicted = inserted
                        .evicted
                        .iter()
                        .map(|s| self.event(now, EventKind::Revoked(RevokeReason::Limit), Some(s), None));
                    self.emit_unless_stored(&evicted.chain([created]).collect::<Vec<_>>());
                    return Ok((token, session));
                }
                Err(StoreError::LimitReached) => return Err(Error::SessionLimit),
                Err(StoreError::Collision) => last_error = StoreError::Collision,
                Err(other) => return Err(other.into()),
            }
        }
        Err(last_error.into())
    }

    /// Finds the session a presented token names, checking every rule, and
    /// returns it if valid.
    ///
    /// Read-only unless the last persisted use is older than the policy's
    /// touch interval; then the idle deadline slides forward (never past the
    /// absolute one). Any failure to find a valid session is
    /// [`Error::Rejected`]; the [`Rejection`] goes to the event log and must
    /// not be shown to the client.
    pub async fn verify(&self, token: &str, client: Option<&ClientInfo>) -> Result<Arc<Session>, Error> {
        let now = self.now();
        let (_, session) = self.find_valid(token, now, client, AllowGrace::Yes).await?;
        let changed = match client {
            Some(client) => self.bind(&session, now, client).await?,
            None => false,
        };
        // A change of client is written at once (a touch records the
        // client as last seen), so its anomaly is recorded only once.
        if !changed && now - session.last_seen_at < self.shared.policy.touch_interval {
            return Ok(session);
        }
        // Boxed: the write path is rare, and keeping its state out of this
        // future keeps the common read-only verify small and cheap to move.
        Ok(Box::pin(self.touch(session, now, client)).await)
    }

    /// Applies the policy's client binding to a valid `session` presented
    /// by `client`: under `revoke`, a change ends the session (the anomaly
    /// stored with the revocation) and the token is refused; under
    /// `signal`, a change not yet seen (the last-seen client did not show
    /// it) records an `anomaly` event. Returns whether there was such a
    /// new change, for the caller to write `client` as the last seen.
    async fn bind(&self, session: &Session, now: OffsetDateTime, client: &ClientInfo) -> Result<bool, Error> {
        let binding = &self.shared.policy.client_binding;
        let seen = binding.signals(&session.created_client, client);
        if seen.is_empty() {
            return Ok(false);
        }
        let client = client.clone().sanitized();
        let anomalies = |signals: Signals| -> Vec<Event> {
            signals
                .anomalies()
                .map(|reason| self.event(now, EventKind::Anomaly(reason), Some(session), Some(&client)))
                .collect()
        };
        if binding.revokes(seen) {
            Box::pin(self.revoke_for(session, RevokeReason::HijackSuspected, anomalies(seen))).await?;
            return Err(self.reject(now, Rejection::Revoked, Some(session), Some(&client)));
        }
        let new = seen.since(binding.signals(&session.created_client, &session.client));
        for event in anomalies(new) {
            self.shared.events.emit(event);
        }
        Ok(!new.is_empty())
    }

    /// How the client of a request (`client`, or the last seen one when
    /// `None`) differs from the one that created `session`, under the
    /// policy's binding: what session responses carry as `signals`.
    pub fn signals(&self, session: &Session, client: Option<&ClientInfo>) -> Signals {
        let seen = client.filter(|c| !c.is_empty()).unwrap_or(&session.client);
        self.shared.policy.client_binding.signals(&session.created_client, seen)
    }

    /// Looks up the session a token names and applies the validity rules.
    /// Returns whether the token was the current one (`true`) or a previous
    /// one within its rotation grace.
    pub(crate) async fn find_valid(
        &self,
        token: &str,
        now: OffsetDateTime,
        client: Option<&ClientInfo>,
        grace: AllowGrace,
    ) -> Result<(bool, Arc<Session>), Error> {
        let token = Token::parse(token).map_err(|_| self.reject(now, Rejection::Malformed, None, client))?;
        let hash = token.hash();
        let session = match self.shared.store.get_by_token(&hash).await? {
            Some(s) if s.tenant == self.tenant => s,
            _ => return Err(self.reject(now, Rejection::Unknown, None, client)),
        };
        let is_current = session.token_hash == hash;
        let in_grace = || {
            grace == AllowGrace::Yes
                && session
                    .previous_token
                    .is_some_and(|p| p.hash == hash && now < p.valid_until)
        };
        let why = if session.revoked.is_some() {
            Some(Rejection::Revoked)
        } else if !is_current && !in_grace() {
            Some(Rejection::Superseded)
        } else if now >= session.absolute_expires_at {
            Some(Rejection::ExpiredAbsolute)
        } else if now >= session.idle_expires_at {
            Some(Rejection::ExpiredIdle)
        } else {
            None
        };
        if why == Some(Rejection::Superseded) && self.is_reuse(&session, &hash, now) {
            // Fail closed: if the revocation cannot be written, the caller
            // gets the store's error, never the session. Boxed like verify's
            // touch: a rare write kept out of the common read's future.
            let theft = self.event(now, EventKind::Anomaly(AnomalyReason::Theft), Some(&session), client);
            Box::pin(self.revoke_for(&session, RevokeReason::Theft, vec![theft])).await?;
        }
        match why {
            Some(why) => Err(self.reject(now, why, Some(&session), client)),
            None => Ok((is_current, session)),
        }
    }

    /// True when `hash` is the session's rotated-out token, presented after
    /// its grace while the session is otherwise live, and the policy asks
    /// for theft detection. (Within the grace, a rotate refused the old
    /// token only because rotate takes the current one: not theft.)
    fn is_reuse(&self, session: &Session, hash: &TokenHash, now: OffsetDateTime) -> bool {
        self.shared.policy.reuse_detection
            && session.is_live(now)
            && session
                .previous_token
                .is_some_and(|p| p.hash == *hash && now >= p.valid_until)
    }

    /// Slides the idle deadline of a session whose last persisted use is
    /// older than the touch interval.
    async fn touch(&self, mut session: Arc<Session>, now: OffsetDateTime, client: Option<&ClientInfo>) -> Arc<Session> {
        let idle = self.shared.policy.idle_timeout_of(&session);
        let idle_expires_at = after(now, idle).min(session.absolute_expires_at);
        let client = client.map_or_else(|| session.client.clone(), |c| c.clone().sanitized());
        match self
            .shared
            .store
            .touch(&session.id, now, idle_expires_at, &client)
            .await
        {
            Ok(true) => {
                let touched = Arc::make_mut(&mut session);
                touched.last_seen_at = now;
                touched.idle_expires_at = idle_expires_at;
                touched.client = client;
                self.emit(now, EventKind::Touched, Some(&session), Some(&session.client));
            }
            // Another request touched it first, or it was revoked meanwhile;
            // the answer stays what the read established.
            Ok(false) => {}
            // A lost touch only makes the session expire earlier; the read
            // that proved validity succeeded, so the answer stands.
            Err(error) => tracing::warn!(%error, session_id = %session.id, "session touch failed"),
        }
        session
    }

    /// Replaces the token of a valid session (on step-up, re-authentication,
    /// privilege change, or periodically) and returns the new one.
    ///
    /// The old token keeps verifying for the policy's rotation grace, then
    /// dies; it cannot itself be rotated. `rotation` says what happens to the
    /// level, `authenticated_at` and the absolute deadline; it is checked
    /// against the session as read for each compare-and-set attempt, so the
    /// decision holds for the version actually written.
    pub async fn rotate(&self, token: &str, rotation: Rotation) -> Result<(Token, Session), Error> {
        self.rotate_from(token, rotation, None).await
    }

    /// [`SessionManager::rotate`] for a request from `client`, to which
    /// the policy's client binding applies as in
    /// [`SessionManager::verify`]; a changed client is written as the
    /// last seen one with the rotation.
    pub async fn rotate_from(
        &self,
        token: &str,
        rotation: Rotation,
        client: Option<&ClientInfo>,
    ) -> Result<(Token, Session), Error> {
        let now = self.now();
        let grace = self.shared.policy.rotation_grace;
        for _ in 0..MAX_ATTEMPTS {
            let (_, current) = self.find_valid(token, now, client, AllowGrace::No).await?;
            let changed = match client {
                Some(client) => self.bind(&current, now, client).await?,
                None => false,
            };
            let mut next = Session::clone(&current);
            if let Some(client) = client.filter(|_| changed) {
                next.client = client.clone().sanitized();
            }
            let kind = rotation.apply(&mut next, now, &self.shared.policy)?;
            let new_token = self.draw_token_for(&next.id)?;
            next.previous_token = Some(PreviousToken {
                hash: current.token_hash,
                valid_until: after(now, grace),
            });
            next.token_hash = new_token.hash();
            next.last_seen_at = now;
            next.version = current.version + 1;
            let rotated = self.event(now, kind, Some(&next), None);
            let audit = self.audit(vec![rotated.clone()], None);
            match self.shared.store.update(&next, current.version, &audit).await {
                Ok(()) => {
                    self.emit_unless_stored([&rotated]);
                    return Ok((new_token, next));
                }
                // Changed under us (data update, touch-free rotation, revoke):
                // read again; a concurrent rotation makes our token stale.
                Err(StoreError::VersionConflict { .. } | StoreError::Collision) => continue,
                Err(StoreError::NotFound) => return Err(self.reject(now, Rejection::Unknown, None, None)),
                Err(other) => return Err(other.into()),
            }
        }
        Err(Error::VersionConflict { current: 0 })
    }
}

/// Whether a previous token within its rotation grace is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllowGrace {
    Yes,
    No,
}

/// Refuses `data` larger than `max` bytes of compact JSON.
pub(crate) fn check_data_size(data: &SessionData, max: usize) -> Result<(), Error> {
    let size = json_size(data);
    if size > max {
        return Err(Error::DataTooLarge { size, max });
    }
    Ok(())
}

/// Size of a value as compact JSON, without building the string.
fn json_size(data: &SessionData) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, data) {
        Ok(()) => counter.0,
        // A map of JSON values always serializes; treat the impossible as too large.
        Err(_) => usize::MAX,
    }
}
