//! What the API answers with on success.

use serde::{Deserialize, Serialize};
use sessiond_core::StoredEvent;
use time::OffsetDateTime;

use crate::{ClientView, SessionView};

/// A new token and its session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The bearer token: hand it to the end user (e.g. in a cookie). Shown once.
    pub token: String,
    /// The session.
    pub session: SessionView,
}

/// One session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionResponse {
    /// The session.
    pub session: SessionView,
}

/// A subject's sessions, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsResponse {
    /// The sessions.
    pub sessions: Vec<SessionView>,
}

/// How many sessions were revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedResponse {
    /// The count.
    pub revoked: usize,
}

/// An audit event as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventView {
    /// Unique across the store and time-ordered: pass it as `before` for
    /// the next page.
    pub id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `created`, `verify_failed`, `touched`, `rotated`, `elevated`,
    /// `data_updated`, `revoked`, `expired_purged` or `anomaly`.
    pub kind: String,
    /// The session, when known.
    pub session_id: Option<String>,
    /// The subject, when known.
    pub subject: Option<String>,
    /// Why (for `verify_failed` and `revoked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The client involved, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
    /// How many failures this one event stands for, when more than one:
    /// `verify_failed` events that name no session are counted per client
    /// address and minute instead of recorded one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

impl From<&StoredEvent> for EventView {
    fn from(stored: &StoredEvent) -> Self {
        let e = &stored.event;
        Self {
            id: stored.id.to_string(),
            at: e.at,
            kind: e.kind.name().to_owned(),
            session_id: e.session_id.as_ref().map(ToString::to_string),
            subject: e.subject.as_ref().map(ToString::to_string),
            reason: e.kind.reason().map(str::to_owned),
            client: e.client.as_ref().map(ClientView::from),
            count: (e.count > 1).then_some(e.count),
        }
    }
}

/// Audit events, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventsResponse {
    /// The events.
    pub events: Vec<EventView>,
}
