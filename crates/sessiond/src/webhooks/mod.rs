//! Webhooks (`[[webhooks]]`, API.md "Webhooks and the event stream"):
//! every audit event an endpoint wants is POSTed to it, signed per the
//! Standard Webhooks specification, at least once, with retries for 24
//! hours.
//!
//! * **Durable without a queue of its own.** The audit log in the store is
//!   the queue: a session write stores its events in the same atomic
//!   change as the session, so an acknowledged revocation has its
//!   `revoked` event in the store, and from there it is delivered whichever
//!   node survives. Each endpoint and tenant has a record in the store
//!   ([`state`]) with a settled cursor over the log, the retries, the
//!   circuit breaker and the recent failures.
//! * **Spread over nodes, sent once in the common case.** Every node runs
//!   a [`dispatcher`] per endpoint; a record is served by the node holding
//!   its lease, taken and renewed by compare-and-set. Records of different
//!   tenants may be served by different nodes.
//! * **At least once.** `webhook-id` is the event id, the same on every
//!   retry and every node; a receiver de-duplicates on it.
//! * **Every tenant** means every tenant with an API key, plus `default`
//!   and the portal's: a session is only ever made through a key of its
//!   tenant or by the portal. A tenant whose last key is deleted is no
//!   longer followed (its record stays, and resumes from its cursor if a
//!   key comes back).
//! * **Limits.** Events the log prunes (its count and age bounds) before
//!   they are delivered are lost to the webhook (`outcome="lost"`); order
//!   is kept for first attempts, not across retries; the breaker is per
//!   endpoint and tenant.

pub mod config;
pub mod delivery;
pub mod dispatcher;
pub mod signature;
pub mod state;

use std::sync::Arc;

use sessiond_core::{Clock, KeyStore, SecretStore, SecretStoreError, Tenant};

pub use config::{Endpoint, WebhookConfig, WebhookConfigError};

use crate::event_log::EventLog;

/// The configured endpoints over the store: starts the dispatchers, and
/// reads the recent failures for the admin route.
#[derive(Debug, Clone)]
pub struct Webhooks {
    endpoints: Arc<[Endpoint]>,
    secrets: Arc<dyn SecretStore>,
}

/// A failure as the admin route lists it.
#[derive(Debug, Clone)]
pub struct ListedFailure {
    /// The endpoint, without credentials or query.
    pub url: String,
    /// The failure.
    pub failure: state::Failure,
}

/// The dispatchers could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client of webhook {url}")]
pub struct StartError {
    url: String,
    #[source]
    source: reqwest::Error,
}

impl Webhooks {
    /// The endpoints, with their records in `secrets`.
    pub fn new(endpoints: Vec<Endpoint>, secrets: Arc<dyn SecretStore>) -> Self {
        Self {
            endpoints: endpoints.into(),
            secrets,
        }
    }

    /// Starts one dispatcher per endpoint on the current runtime.
    pub fn start(
        &self,
        events: &Arc<EventLog>,
        keys: &Arc<dyn KeyStore>,
        clock: &Arc<dyn Clock>,
        always: &[Tenant],
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        let node = node_id();
        let mut tasks = Vec::with_capacity(self.endpoints.len());
        for endpoint in self.endpoints.iter() {
            let client = delivery::client(endpoint.timeout).map_err(|source| StartError {
                url: endpoint.shown_url(),
                source,
            })?;
            let dispatcher = dispatcher::Dispatcher {
                endpoint: endpoint.clone(),
                client,
                secrets: Arc::clone(&self.secrets),
                events: Arc::clone(events),
                keys: Arc::clone(keys),
                clock: Arc::clone(clock),
                node: Arc::clone(&node),
                always: always.to_vec(),
            };
            tasks.push(tokio::spawn(dispatcher.run()));
        }
        Ok(tasks)
    }

    /// The recent failed attempts of `tenant`'s events, newest first.
    pub async fn failures(&self, tenant: &Tenant) -> Result<Vec<ListedFailure>, SecretStoreError> {
        let mut listed = Vec::new();
        for endpoint in self.endpoints.iter() {
            if endpoint.tenant.as_ref().is_some_and(|only| only != tenant) {
                continue;
            }
            let name = state::record_name(endpoint.url.as_str(), tenant);
            let Some(bytes) = self.secrets.secret_value(&name).await? else {
                continue;
            };
            let record = state::State::decode(&bytes).map_err(|e| SecretStoreError::Corrupt(Box::new(e)))?;
            let url = endpoint.shown_url();
            listed.extend(record.failures.into_iter().map(|failure| ListedFailure {
                url: url.clone(),
                failure,
            }));
        }
        listed.sort_by_key(|l| std::cmp::Reverse(l.failure.at));
        Ok(listed)
    }
}

/// A random id for this process: leases name it.
fn node_id() -> Arc<str> {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Unique enough among the nodes of one store: leases only need
        // nodes to differ.
        bytes = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id()).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>().into()
}
