//! The JSON shapes of API.md: what requests carry and responses return.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sessiond_core::{ClientInfo, Event, Session, SessionData};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::error::ApiError;

/// Client context a backend passes on from the end user's request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientView {
    /// The end user's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The end user's User-Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

impl ClientView {
    /// Validates the IP and bounds the User-Agent.
    pub fn into_client(self) -> Result<ClientInfo, ApiError> {
        if let Some(ip) = &self.ip
            && ip.parse::<IpAddr>().is_err()
        {
            return Err(ApiError::InvalidRequest("client.ip is not an IP address".to_owned()));
        }
        Ok(ClientInfo {
            ip: self.ip,
            user_agent: self.user_agent,
        }
        .sanitized())
    }
}

/// `POST /v1/sessions`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Who logged in.
    pub subject: String,
    /// Longer timeouts.
    #[serde(default)]
    pub remember_me: bool,
    /// Assurance level of the login, 1 to 3 (default 1).
    pub aal: Option<u8>,
    /// Initial data object.
    #[schema(value_type = Option<Object>)]
    pub data: Option<SessionData>,
    /// The end user's client.
    pub client: Option<ClientView>,
}

/// `POST /v1/sessions/verify`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token the end user presented.
    pub token: String,
    /// The end user's client, recorded on touch.
    pub client: Option<ClientView>,
}

/// `POST /v1/sessions/rotate`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// The current token.
    pub token: String,
    /// A new assurance level (step-up); records a fresh authentication.
    pub aal: Option<u8>,
}

/// `POST /v1/sessions/revoke`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The token to end.
    pub token: String,
}

/// `PATCH /v1/sessions/{id}`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    /// The new data object, replacing the old one as a whole.
    #[schema(value_type = Object)]
    pub data: SessionData,
}

/// A session as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// Public id.
    pub id: String,
    /// Owner.
    pub subject: String,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last recorded use (updated at most once per touch interval).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Last authentication (login or step-up).
    #[serde(with = "time::serde::rfc3339")]
    pub authenticated_at: OffsetDateTime,
    /// Idle deadline.
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
    /// Absolute deadline.
    #[serde(with = "time::serde::rfc3339")]
    pub absolute_expires_at: OffsetDateTime,
    /// The earlier of the two.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Created with "remember me".
    pub remember_me: bool,
    /// Assurance level.
    pub aal: u8,
    /// Application data.
    #[schema(value_type = Object)]
    pub data: SessionData,
    /// Client seen at creation or last touch.
    pub client: ClientView,
    /// Version for `If-Match`.
    pub version: u64,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.to_string(),
            subject: s.subject.to_string(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            authenticated_at: s.authenticated_at,
            idle_expires_at: s.idle_expires_at,
            absolute_expires_at: s.absolute_expires_at,
            expires_at: s.expires_at(),
            remember_me: s.remember_me,
            aal: s.aal.get(),
            data: s.data.clone(),
            client: ClientView {
                ip: s.client.ip.clone(),
                user_agent: s.client.user_agent.clone(),
            },
            version: s.version,
        }
    }
}

/// A new token and its session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer token: hand it to the end user (e.g. in a cookie). Shown once.
    pub token: String,
    /// The session.
    pub session: SessionView,
}

/// One session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    /// The session.
    pub session: SessionView,
}

/// A subject's sessions, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionsResponse {
    /// The sessions.
    pub sessions: Vec<SessionView>,
}

/// How many sessions were revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokedResponse {
    /// The count.
    pub revoked: usize,
}

/// An audit event as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// `created`, `verify_failed`, `touched`, `rotated`, `elevated`,
    /// `data_updated`, `revoked` or `expired_purged`.
    pub kind: String,
    /// The session, when known.
    pub session_id: Option<String>,
    /// The subject, when known.
    pub subject: Option<String>,
    /// Why (for `verify_failed` and `revoked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The client involved, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        Self {
            at: e.at,
            kind: e.kind.name().to_owned(),
            session_id: e.session_id.as_ref().map(ToString::to_string),
            subject: e.subject.as_ref().map(ToString::to_string),
            reason: e.kind.reason().map(str::to_owned),
            client: e.client.as_ref().map(|c| ClientView {
                ip: c.ip.clone(),
                user_agent: c.user_agent.clone(),
            }),
        }
    }
}

/// Audit events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsResponse {
    /// The events.
    pub events: Vec<EventView>,
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    /// Only this subject.
    pub subject: Option<String>,
    /// Only this session.
    pub session_id: Option<String>,
    /// At most this many (1 to 1000, default 100).
    pub limit: Option<usize>,
}

/// Query of `DELETE /v1/subjects/{subject}/sessions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeSubjectParams {
    /// Keep this session (the caller's own).
    pub except: Option<String>,
}
