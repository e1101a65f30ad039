//! The session record: what a store keeps and what callers read.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{SessionId, Subject, Tenant};
use crate::origin::SessionOrigin;
use crate::token::TokenHash;

/// Longest IP text kept from a client (an IPv6 address with zone fits).
pub const MAX_IP_LEN: usize = 64;

/// Longest User-Agent kept; longer ones are truncated, not refused, because
/// browsers do not let users choose theirs.
pub const MAX_USER_AGENT_LEN: usize = 512;

/// Authentication assurance level (NIST SP 800-63B): 1, 2 or 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Aal(u8);

impl Aal {
    /// Single-factor authentication.
    pub const AAL1: Aal = Aal(1);
    /// Two factors.
    pub const AAL2: Aal = Aal(2);
    /// Hardware-backed, phishing-resistant two factors.
    pub const AAL3: Aal = Aal(3);

    /// The level as a number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for Aal {
    fn default() -> Self {
        Aal::AAL1
    }
}

/// An AAL outside 1..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("aal must be 1, 2 or 3")]
pub struct AalError;

impl TryFrom<u8> for Aal {
    type Error = AalError;
    fn try_from(value: u8) -> Result<Self, AalError> {
        match value {
            1..=3 => Ok(Aal(value)),
            _ => Err(AalError),
        }
    }
}

impl From<Aal> for u8 {
    fn from(value: Aal) -> u8 {
        value.0
    }
}

impl fmt::Display for Aal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a request came from: shown in device lists, kept in events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The client's IP address as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The client's User-Agent header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Both fields sealed at rest ([`crate::sealing`]). Set, with `ip` and
    /// `user_agent` empty, only in records as a store keeps them while
    /// encryption is on; what callers read is always opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

impl ClientInfo {
    /// Bounds the fields: an over-long IP is dropped (it cannot be an
    /// address), an over-long User-Agent is cut at a character boundary, and
    /// control characters are removed so the values are safe to log.
    pub fn sanitized(self) -> Self {
        let ip = self
            .ip
            .filter(|ip| ip.len() <= MAX_IP_LEN && !ip.chars().any(char::is_control));
        let user_agent = self.user_agent.map(|ua| {
            let mut clean: String = ua.chars().filter(|c| !c.is_control()).collect();
            if clean.len() > MAX_USER_AGENT_LEN {
                let mut cut = MAX_USER_AGENT_LEN;
                while !clean.is_char_boundary(cut) {
                    cut -= 1;
                }
                clean.truncate(cut);
            }
            clean
        });
        Self {
            ip,
            user_agent,
            sealed: None,
        }
    }

    /// True when neither field is known.
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.user_agent.is_none() && self.sealed.is_none()
    }
}

/// Why a session was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    /// The user logged out.
    Logout,
    /// An administrator or the owning application ended it by id or subject.
    Admin,
    /// The user changed their password; other sessions are ended.
    PasswordChange,
    /// Evicted to stay within the per-subject session limit.
    Limit,
    /// Suspected token theft.
    Theft,
    /// The user ended it from their device list.
    User,
    /// Used from a client too unlike the one that created it, under a
    /// client binding set to `revoke` ([`crate::BindMode::Revoke`]).
    HijackSuspected,
    /// An anonymous session ended because its visitor signed in: a new
    /// session under a new token took its place
    /// ([`crate::SessionManager::sign_in`]).
    SignedIn,
}

impl RevokeReason {
    /// Stable snake_case name, as in events.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::Admin => "admin",
            RevokeReason::PasswordChange => "password_change",
            RevokeReason::Limit => "limit",
            RevokeReason::Theft => "theft",
            RevokeReason::User => "user",
            RevokeReason::HijackSuspected => "hijack_suspected",
            RevokeReason::SignedIn => "signed_in",
        }
    }

    /// The reason a name from [`RevokeReason::as_str`] stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            RevokeReason::Logout,
            RevokeReason::Admin,
            RevokeReason::PasswordChange,
            RevokeReason::Limit,
            RevokeReason::Theft,
            RevokeReason::User,
            RevokeReason::HijackSuspected,
            RevokeReason::SignedIn,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == name)
    }
}

/// A revoked session's tombstone: kept until the session would have expired,
/// so that a late use of its token is reported as "revoked", not "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why.
    pub reason: RevokeReason,
}

/// The token a session had before its last rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousToken {
    /// Hash of the old token.
    pub hash: TokenHash,
    /// The old token verifies until this instant (the rotation grace).
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
}

/// A session as a store keeps it.
///
/// Fields are public because this is a record that every backend must
/// serialize and read back; the rules that relate them (deadlines, versions)
/// are kept by [`SessionManager`](crate::SessionManager), the only writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Public handle.
    pub id: SessionId,
    /// Namespace of the session.
    pub tenant: Tenant,
    /// Who the session belongs to.
    pub subject: Subject,
    /// Hash of the current token.
    pub token_hash: TokenHash,
    /// The token before the last rotation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_token: Option<PreviousToken>,
    /// Creation time (login).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last persisted use; updated at most once per touch interval.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// When the user last proved who they are (login or step-up).
    #[serde(with = "time::serde::rfc3339")]
    pub authenticated_at: OffsetDateTime,
    /// The session is invalid from this instant unless used before it.
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
    /// The session is invalid from this instant, whatever happens.
    #[serde(with = "time::serde::rfc3339")]
    pub absolute_expires_at: OffsetDateTime,
    /// Created with "remember me" (longer timeouts, persistent cookie).
    pub remember_me: bool,
    /// Assurance level of the last authentication.
    pub aal: Aal,
    /// Application data, a JSON object.
    pub data: serde_json::Map<String, serde_json::Value>,
    /// The client last seen: the one at creation, then updated on touch.
    #[serde(default)]
    pub client: ClientInfo,
    /// The client at creation, never changed afterwards: what client
    /// binding ([`crate::ClientBinding`]) compares later requests with.
    /// Empty in records written before it was kept, and for sessions
    /// created without a client; nothing is compared then.
    #[serde(default)]
    pub created_client: ClientInfo,
    /// Incremented on every change except a touch; the basis of
    /// compare-and-set updates.
    pub version: u64,
    /// Set when the session was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    /// Which entry point created the session; kept by every later write.
    /// Missing in records written before it existed, which read as
    /// [`SessionOrigin::Api`].
    #[serde(default)]
    pub origin: SessionOrigin,
}

impl Session {
    /// The earlier of the two deadlines: the session is valid strictly before it.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.idle_expires_at.min(self.absolute_expires_at)
    }

    /// Valid at `now`: not revoked and before both deadlines.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked.is_none() && now < self.expires_at()
    }

    /// A visitor's session before sign-in ([`Subject::anonymous`]): it
    /// proves nobody's identity.
    pub fn is_anonymous(&self) -> bool {
        self.subject.is_anonymous()
    }

    /// The subject, unless the session is anonymous.
    pub fn signed_in_subject(&self) -> Option<&Subject> {
        (!self.is_anonymous()).then_some(&self.subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aal_accepts_only_one_to_three() {
        assert_eq!(Aal::try_from(2), Ok(Aal::AAL2));
        assert_eq!(Aal::try_from(0), Err(AalError));
        assert_eq!(Aal::try_from(4), Err(AalError));
        assert!(serde_json::from_str::<Aal>("7").is_err());
    }

    #[test]
    fn client_info_is_bounded_and_log_safe() {
        let c = ClientInfo {
            ip: Some("1".repeat(65)),
            user_agent: Some(format!("a\r\nb{}", "é".repeat(400))),
            sealed: None,
        }
        .sanitized();
        assert_eq!(c.ip, None);
        let ua = c.user_agent.unwrap_or_default();
        assert!(ua.starts_with("ab"));
        assert!(ua.len() <= MAX_USER_AGENT_LEN);
        assert!(!ua.contains('\n'));
    }
}
