//! Audit events: one for every change in a session's life.
//!
//! Events carry ids, subjects and reasons, never tokens or token hashes.

use std::fmt::Debug;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{SessionId, Subject, Tenant};
use crate::session::{Aal, ClientInfo, RevokeReason};

/// Why a token was not accepted. Callers answer every variant identically;
/// the variant is kept for events so operators can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// Not a token at all (wrong prefix, length or alphabet); no store was asked.
    Malformed,
    /// A well-formed token that names no session (or one of another tenant).
    Unknown,
    /// Unused for longer than the idle timeout.
    ExpiredIdle,
    /// Older than the absolute timeout.
    ExpiredAbsolute,
    /// The session was revoked.
    Revoked,
    /// The token was replaced by a rotation and its grace period is over.
    /// A late use of a rotated-out token is a sign of theft.
    Superseded,
}

impl Rejection {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Unknown => "unknown",
            Rejection::ExpiredIdle => "expired_idle",
            Rejection::ExpiredAbsolute => "expired_absolute",
            Rejection::Revoked => "revoked",
            Rejection::Superseded => "superseded",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "reason")]
pub enum EventKind {
    /// A session was created (login).
    Created,
    /// A token was presented and refused.
    VerifyFailed(Rejection),
    /// The idle deadline was pushed forward.
    Touched,
    /// The token was replaced.
    Rotated,
    /// The token was replaced with a higher assurance level (step-up).
    Elevated {
        /// The new level.
        aal: Aal,
    },
    /// The session's data changed.
    DataUpdated,
    /// The session was ended.
    Revoked(RevokeReason),
    /// An expired session was removed from the store.
    ExpiredPurged,
    /// Something that may be an attack (issue 16): recorded for someone to
    /// look at, whether or not anything was refused.
    Anomaly(AnomalyReason),
}

/// What an [`EventKind::Anomaly`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyReason {
    /// Many tokens that name no session presented for one client address
    /// within a minute, counted over every node.
    TokenGuessing,
    /// A session used from an address outside the prefix of the one that
    /// created it ([`crate::ClientBinding`]).
    IpChanged,
    /// A session used from another browser family or operating system
    /// than the one that created it.
    UserAgentChanged,
    /// A rotated-out token presented after its grace: two parties hold
    /// the session, which was revoked (reason `theft`).
    Theft,
    /// Many failed portal sign-ins for one account or one client address
    /// within a minute, counted over every node.
    LoginBurst,
}

impl AnomalyReason {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyReason::TokenGuessing => "token_guessing",
            AnomalyReason::IpChanged => "ip_changed",
            AnomalyReason::UserAgentChanged => "user_agent_changed",
            AnomalyReason::Theft => "theft",
            AnomalyReason::LoginBurst => "login_burst",
        }
    }
}

impl EventKind {
    /// Stable snake_case name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::VerifyFailed(_) => "verify_failed",
            EventKind::Touched => "touched",
            EventKind::Rotated => "rotated",
            EventKind::Elevated { .. } => "elevated",
            EventKind::DataUpdated => "data_updated",
            EventKind::Revoked(_) => "revoked",
            EventKind::ExpiredPurged => "expired_purged",
            EventKind::Anomaly(_) => "anomaly",
        }
    }

    /// The reason, for kinds that have one.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            EventKind::VerifyFailed(r) => Some(r.as_str()),
            EventKind::Revoked(r) => Some(r.as_str()),
            EventKind::Anomaly(r) => Some(r.as_str()),
            _ => None,
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What.
    pub kind: EventKind,
    /// The tenant it happened in.
    pub tenant: Tenant,
    /// The session, when known (a failed verify of an unknown token has none).
    pub session_id: Option<SessionId>,
    /// The subject, when known.
    pub subject: Option<Subject>,
    /// The client involved, when known.
    pub client: Option<ClientInfo>,
    /// How many occurrences this record stands for: 1, except where a sink
    /// counts repeated anonymous failures into one record.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

fn is_one(count: &u32) -> bool {
    *count == 1
}

impl Event {
    /// A failed verify that named no session (a malformed or unknown
    /// token): anyone can cause as many as they like.
    pub fn is_anonymous_failure(&self) -> bool {
        matches!(self.kind, EventKind::VerifyFailed(_)) && self.session_id.is_none()
    }
}

/// Receives events. Implementations must not block: the manager calls
/// [`EventSink::emit`] on the request path. Buffer, and drop or count on
/// overflow, rather than wait.
pub trait EventSink: Send + Sync + Debug + 'static {
    /// Takes one event.
    fn emit(&self, event: Event);

    /// Hears of an event the store has already written with its session
    /// write ([`crate::SessionManagerBuilder::store_events`]), so it must
    /// not be stored again: for counters and other observers. The default
    /// ignores it.
    fn stored(&self, _event: &Event) {}
}

/// Discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: Event) {}
}

/// Keeps every event in memory, for tests and small tools.
#[derive(Debug, Default)]
pub struct MemoryEvents {
    events: Mutex<Vec<Event>>,
}

impl MemoryEvents {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the events received so far, oldest first.
    pub fn take(&self) -> Vec<Event> {
        match self.events.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl EventSink for MemoryEvents {
    fn emit(&self, event: Event) {
        match self.events.lock() {
            Ok(mut guard) => guard.push(event),
            Err(poisoned) => poisoned.into_inner().push(event),
        }
    }
}
