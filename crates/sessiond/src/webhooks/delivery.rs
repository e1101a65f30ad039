//! One attempt: the JSON body, its signature, one POST.
//!
//! The body is `{"type", "timestamp", "tenant", "data"}`: `type` is the
//! event kind, `timestamp` when it happened, `data` the event exactly as
//! `GET /v1/events` shows it, and `tenant` whose it is (an endpoint may get
//! every tenant's events). The same event always makes the same body and
//! `webhook-id` (its event id), on every retry and every node.
//!
//! Redirects are not followed (a signed body must not be carried to an
//! address nobody configured), each attempt has its own timeout, and
//! certificates are checked against the system's roots.

use std::time::Duration;

use serde::Serialize;
use sessiond_core::{StoredEvent, Tenant};
use sessiond_wire::EventView;
use time::OffsetDateTime;

use super::config::Endpoint;
use super::signature::sign;

/// The body of a delivery.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    tenant: &'a str,
    data: EventView,
}

/// Why an attempt failed, in words safe to keep and show: never the URL's
/// credentials, the secret, or the receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    /// The receiver answered outside 2xx.
    #[error("HTTP {0}")]
    Status(u16),
    /// No answer within the endpoint's timeout.
    #[error("timeout")]
    Timeout,
    /// No connection (refused, DNS, TLS).
    #[error("connection failed")]
    Connect,
    /// Anything else on the way.
    #[error("request failed")]
    Other,
}

/// The HTTP client of one endpoint.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sessiond-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The body of `stored`'s delivery.
pub fn body(tenant: &Tenant, stored: &StoredEvent) -> Vec<u8> {
    let payload = Payload {
        kind: stored.event.kind.name(),
        timestamp: stored.event.at,
        tenant: tenant.as_str(),
        data: EventView::from(stored),
    };
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// POSTs `stored` to `endpoint`, signed at `now`.
pub async fn attempt(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    tenant: &Tenant,
    stored: &StoredEvent,
    now: OffsetDateTime,
) -> Result<(), AttemptError> {
    let body = body(tenant, stored);
    let signed = sign(&endpoint.key, stored.id.as_str(), now.unix_timestamp(), &body);
    let sent = client
        .post(endpoint.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", signed.id)
        .header("webhook-timestamp", signed.timestamp.to_string())
        .header("webhook-signature", signed.signature)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(AttemptError::Status(response.status().as_u16())),
        Err(error) if error.is_timeout() => Err(AttemptError::Timeout),
        Err(error) if error.is_connect() => Err(AttemptError::Connect),
        Err(_) => Err(AttemptError::Other),
    }
}
