//! The delivery loop of one endpoint on one node.
//!
//! Every [`POLL`] it visits the endpoint's record of each tenant it serves
//! ([`State`]); where this node holds the lease (or takes a free or
//! expired one) it retries what is due, then sends the settled events
//! after the cursor, oldest first, recording each outcome in the record by
//! compare-and-set before the next attempt. A compare-and-set that fails
//! means another node took the record: this one stops at once, and the
//! other goes on from what was recorded, so in the common case an event is
//! sent once, and after a crash at least once.
//!
//! The queue is the audit log itself: a session write stores its events in
//! the same atomic change as the session, so an event acknowledged to a
//! client is in the log, and so on its way to every endpoint that wants
//! it. Events the log prunes before they are delivered (its count and age
//! bounds) are lost to the webhook: a retry that no longer finds its event
//! is counted `outcome="lost"` and listed as a failure.

use std::sync::Arc;
use std::time::Duration;

use sessiond_core::{
    Clock, EventFilter, EventId, EventStoreError, KeyStore, KeyStoreError, SecretName, SecretStore, SecretStoreError,
    StoredEvent, Tenant,
};

use super::config::Endpoint;
use super::delivery::{self, AttemptError};
use super::state::{
    Failure, GIVE_UP_AFTER, LEASE, Lease, MAX_PENDING, Pending, State, backoff, millis, plus, record_name,
};
use crate::event_log::EventLog;
use crate::revocations::SETTLE;

/// How often each record is visited.
pub const POLL: Duration = Duration::from_millis(500);
/// How far back a new record starts: events of the minute before an
/// endpoint (or a tenant) is first seen are sent too.
pub const INITIAL_LOOKBACK: Duration = Duration::from_secs(60);
/// How often the tenants of an every-tenant endpoint are listed again.
const TENANTS_EVERY: Duration = Duration::from_secs(10);
/// Most new events sent per visit.
const BATCH: usize = 100;
/// Events read per store query while walking back to the cursor.
const PAGE: usize = 500;

/// Why a visit stopped early.
#[derive(Debug, thiserror::Error)]
pub enum VisitError {
    /// The record could not be read or written.
    #[error("the webhook state could not be read or written")]
    Secrets(#[from] SecretStoreError),
    /// The record is not what this version writes.
    #[error("the webhook state is corrupt")]
    Corrupt(#[from] serde_json::Error),
    /// The audit log could not be read.
    #[error("the event log could not be read")]
    Events(#[from] EventStoreError),
}

/// One endpoint's loop on this node.
#[derive(Debug)]
pub struct Dispatcher {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its HTTP client.
    pub client: reqwest::Client,
    /// Where records live.
    pub secrets: Arc<dyn SecretStore>,
    /// The audit log.
    pub events: Arc<EventLog>,
    /// Where the tenants of an every-tenant endpoint are learnt.
    pub keys: Arc<dyn KeyStore>,
    /// Time of attempts and leases.
    pub clock: Arc<dyn Clock>,
    /// This process's random id.
    pub node: Arc<str>,
    /// Tenants served even without a key (`default`, the portal's).
    pub always: Vec<Tenant>,
}

/// A record as read, and the bytes a compare-and-set expects.
struct Held {
    name: SecretName,
    state: State,
    stored: Vec<u8>,
}

impl Dispatcher {
    /// Runs forever; the server aborts it on shutdown.
    pub async fn run(self) {
        let mut tenants = Vec::new();
        let mut listed_at: Option<tokio::time::Instant> = None;
        loop {
            if listed_at.is_none_or(|at| at.elapsed() >= TENANTS_EVERY) {
                match self.tenants().await {
                    Ok(found) => {
                        tenants = found;
                        listed_at = Some(tokio::time::Instant::now());
                    }
                    Err(error) => tracing::warn!(%error, "webhooks: cannot list the tenants"),
                }
            }
            for tenant in &tenants {
                if let Err(error) = self.visit(tenant).await {
                    tracing::warn!(url = %self.endpoint.shown_url(), %tenant, %error, "webhook delivery round failed");
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The endpoint's tenant, or every tenant that has an API key (a
    /// session is made only with a key of its tenant, or by the portal in
    /// its tenant, which is in [`Dispatcher::always`]).
    async fn tenants(&self) -> Result<Vec<Tenant>, KeyStoreError> {
        if let Some(tenant) = &self.endpoint.tenant {
            return Ok(vec![tenant.clone()]);
        }
        let mut tenants = self.always.clone();
        for key in self.keys.list_keys().await? {
            if !tenants.contains(&key.tenant) {
                tenants.push(key.tenant);
            }
        }
        Ok(tenants)
    }

    /// One visit of the record of `tenant`.
    pub async fn visit(&self, tenant: &Tenant) -> Result<(), VisitError> {
        let mut held = self.load(tenant).await?;
        let now = millis(self.clock.now());
        if !held.state.may_lead(&self.node, now) {
            return Ok(());
        }
        let fresh = held
            .state
            .lease
            .as_ref()
            .is_some_and(|l| *l.node == *self.node && l.until - now > millis_of(LEASE));
        if !fresh && !self.save(&mut held).await? {
            return Ok(());
        }
        if self.retry_due(tenant, &mut held).await? {
            self.send_new(tenant, &mut held).await?;
        }
        Ok(())
    }

    async fn load(&self, tenant: &Tenant) -> Result<Held, VisitError> {
        let name = record_name(self.endpoint.url.as_str(), tenant);
        let stored = match self.secrets.secret_value(&name).await? {
            Some(stored) => stored,
            None => {
                let start = EventId::first_at(self.clock.now() - INITIAL_LOOKBACK);
                let initial = State::starting_at(start.to_string()).encode();
                self.secrets.init_secret_value(&name, &initial).await?
            }
        };
        let state = State::decode(&stored)?;
        Ok(Held { name, state, stored })
    }

    /// Writes the record with the lease renewed; false when another node
    /// changed it first (it leads now).
    async fn save(&self, held: &mut Held) -> Result<bool, VisitError> {
        let now = millis(self.clock.now());
        // Long enough to cover the next attempt's timeout.
        held.state.lease = Some(Lease {
            node: self.node.to_string(),
            until: plus(now, LEASE + self.endpoint.timeout),
        });
        let bytes = held.state.encode();
        match self.secrets.put_secret_value(&held.name, &bytes, &held.stored).await {
            Ok(()) => {
                held.stored = bytes;
                Ok(true)
            }
            Err(SecretStoreError::Conflict | SecretStoreError::NotFound) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Retries what is due; false when the lease was lost.
    async fn retry_due(&self, tenant: &Tenant, held: &mut Held) -> Result<bool, VisitError> {
        let now = millis(self.clock.now());
        let due: Vec<Pending> = held
            .state
            .pending
            .iter()
            .filter(|p| p.next_at <= now)
            .cloned()
            .collect();
        for pending in due.into_iter().take(BATCH) {
            if !held.state.breaker_allows(millis(self.clock.now())) {
                break;
            }
            held.state.pending.retain(|p| p.id != pending.id);
            match self.find(tenant, &pending.id).await? {
                None => {
                    count("lost");
                    held.state.failures.push(Failure {
                        event_id: pending.id.clone(),
                        kind: String::new(),
                        at: millis(self.clock.now()),
                        attempt: pending.attempt,
                        error: "pruned from the event log before it was delivered".to_owned(),
                        gave_up: true,
                    });
                }
                Some(stored) => self.attempt(tenant, held, &stored, Some(pending)).await,
            }
            if !self.save(held).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sends the settled events after the cursor.
    async fn send_new(&self, tenant: &Tenant, held: &mut Held) -> Result<(), VisitError> {
        let now = self.clock.now();
        if held.state.pending.len() >= MAX_PENDING || !held.state.breaker_allows(millis(now)) {
            return Ok(());
        }
        let cursor = EventId::parse(&held.state.cursor).unwrap_or_else(|_| EventId::first_at(now - INITIAL_LOOKBACK));
        let fresh = self.after(tenant, &cursor, &EventId::first_at(now - SETTLE)).await?;
        let before = held.stored.clone();
        let mut sent = 0;
        for stored in fresh {
            if held.state.pending.len() >= MAX_PENDING
                || !held.state.breaker_allows(millis(self.clock.now()))
                || sent >= BATCH
            {
                break;
            }
            held.state.cursor = stored.id.to_string();
            if !self.endpoint.wants(stored.event.kind.name()) {
                continue;
            }
            sent += 1;
            self.attempt(tenant, held, &stored, None).await;
            if !self.save(held).await? {
                return Ok(());
            }
        }
        if held.state.encode() != before {
            self.save(held).await?;
        }
        Ok(())
    }

    /// One attempt, its outcome recorded in `held` (not yet saved).
    async fn attempt(&self, tenant: &Tenant, held: &mut Held, stored: &StoredEvent, pending: Option<Pending>) {
        let outcome = delivery::attempt(&self.client, &self.endpoint, tenant, stored, self.clock.now()).await;
        let now = millis(self.clock.now());
        let error = match outcome {
            Ok(()) => {
                count("delivered");
                held.state.succeeded();
                return;
            }
            Err(error) => error,
        };
        let mut pending = pending.unwrap_or(Pending {
            id: stored.id.to_string(),
            attempt: 0,
            next_at: now,
            first_failed_at: now,
        });
        pending.attempt = pending.attempt.saturating_add(1);
        let gave_up = now.saturating_sub(pending.first_failed_at) >= millis_of(GIVE_UP_AFTER);
        count(if gave_up { "gave_up" } else { "failed" });
        log_failure(&self.endpoint, tenant, stored, pending.attempt, &error, gave_up);
        let failure = Failure {
            event_id: pending.id.clone(),
            kind: stored.event.kind.name().to_owned(),
            at: now,
            attempt: pending.attempt,
            error: error.to_string(),
            gave_up,
        };
        held.state
            .failed(failure, self.endpoint.retry_initial.saturating_mul(6));
        if !gave_up {
            pending.next_at = plus(now, backoff(self.endpoint.retry_initial, pending.attempt, random()));
            held.state.pending.push(pending);
        }
    }

    /// The event `id` of `tenant`, if the log still holds it.
    async fn find(&self, tenant: &Tenant, id: &str) -> Result<Option<StoredEvent>, VisitError> {
        let Ok(id) = EventId::parse(id) else {
            return Ok(None);
        };
        let filter = EventFilter {
            before: Some(EventId::first_at(id.at() + time::Duration::microseconds(1))),
            limit: 100,
            ..EventFilter::default()
        };
        let found = self.events.query_written(tenant, &filter).await?;
        Ok(found.into_iter().find(|stored| stored.id == id))
    }

    /// The events after `cursor` and before `settled`, oldest first.
    async fn after(
        &self,
        tenant: &Tenant,
        cursor: &EventId,
        settled: &EventId,
    ) -> Result<Vec<StoredEvent>, VisitError> {
        let mut newest_first = Vec::new();
        let mut before = Some(settled.clone());
        loop {
            let filter = EventFilter {
                before: before.clone(),
                limit: PAGE,
                ..EventFilter::default()
            };
            let page = self.events.query_written(tenant, &filter).await?;
            let full = page.len() == PAGE;
            let mut reached = false;
            for stored in page {
                if stored.id <= *cursor {
                    reached = true;
                    break;
                }
                before = Some(stored.id.clone());
                newest_first.push(stored);
            }
            if reached || !full {
                break;
            }
        }
        newest_first.reverse();
        Ok(newest_first)
    }
}

fn millis_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn count(outcome: &'static str) {
    metrics::counter!("sessiond_webhook_deliveries_total", "outcome" => outcome).increment(1);
}

fn log_failure(
    endpoint: &Endpoint,
    tenant: &Tenant,
    stored: &StoredEvent,
    attempt: u32,
    error: &AttemptError,
    gave_up: bool,
) {
    let url = endpoint.shown_url();
    if gave_up {
        tracing::error!(%url, %tenant, event = %stored.id, attempt, %error, "webhook delivery given up after 24 hours");
    } else {
        tracing::info!(%url, %tenant, event = %stored.id, attempt, %error, "webhook delivery failed; will retry");
    }
}

/// Jitter: 64 random bits from the OS, or from the standard library's
/// randomly keyed hasher if that fails (jitter needs spread, not secrecy).
fn random() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), 0u8),
    }
}
