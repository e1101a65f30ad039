//! The session object of the API, and the client context inside it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sessiond_core::{ClientInfo, Session, SessionData, Signals};
use time::OffsetDateTime;

use crate::rfc3339;

/// The pattern of a session id: exactly what `SessionId::parse` accepts,
/// 22 characters of canonical base64url (16 bytes: the last character
/// carries 2 bits and 4 zero bits, so it is one of `A`, `Q`, `g`, `w`).
pub const SESSION_ID_PATTERN: &str = "^[A-Za-z0-9_-]{21}[AQgw]$";

/// The pattern of a subject: at least one character, none of them one that
/// `Subject::new` refuses (`sessiond_core::is_refused_in_subject`): control
/// characters (C0, DEL, C1), spaces and other separators (U+0020, U+00A0,
/// U+1680, U+2000–U+200A, U+2028–U+2029, U+202F, U+205F, U+3000),
/// bidirectional controls (U+061C, U+200E–U+200F, U+202A–U+202E,
/// U+2066–U+2069), and `"` `'` `,` `;` `<` `>` `\`.
///
/// The limit of 256 is in bytes of UTF-8, which JSON Schema cannot express:
/// `maxLength` counts characters, so `maxLength: 256` would promise that
/// 256 characters of `é` (512 bytes) are accepted, and any smaller
/// `maxLength` would deny subjects the server takes. The schemas leave it
/// out and say it in words ([`SUBJECT_DESCRIPTION`]).
pub const SUBJECT_PATTERN: &str = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$";

/// What the schemas say about a subject's length.
pub const SUBJECT_DESCRIPTION: &str = "1 to 256 bytes of UTF-8 without control, bidirectional-control, space or \
     separator characters and without \" ' , ; < > \\";

/// A request field the server refuses (answered 400 `invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField(pub String);

impl std::fmt::Display for InvalidField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidField {}

/// Client context a backend passes on from the end user's request.
///
/// Deserialized from a JSON object only, never from an array.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientView {
    /// The end user's IP address, IPv4 or IPv6 in text form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = ip_schema))]
    pub ip: Option<String>,
    /// The end user's User-Agent (control characters are removed, and it is
    /// cut to 512 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// The fields of a [`ClientView`], as the derive reads them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFields {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
}

impl<'de> Deserialize<'de> for ClientView {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ClientFields { ip, user_agent } = crate::strict::object(deserializer)?;
        Ok(Self { ip, user_agent })
    }
}

impl ClientView {
    /// Validates the IP and bounds the User-Agent.
    pub fn into_client(self) -> Result<ClientInfo, InvalidField> {
        if let Some(ip) = &self.ip
            && ip.parse::<IpAddr>().is_err()
        {
            return Err(InvalidField("client.ip is not an IP address".to_owned()));
        }
        Ok(ClientInfo {
            ip: self.ip,
            user_agent: self.user_agent,
            sealed: None,
        }
        .sanitized())
    }
}

impl From<&ClientInfo> for ClientView {
    fn from(c: &ClientInfo) -> Self {
        Self {
            ip: c.ip.clone(),
            user_agent: c.user_agent.clone(),
        }
    }
}

impl From<ClientView> for ClientInfo {
    /// The client as a server sent it (already validated there).
    fn from(c: ClientView) -> Self {
        ClientInfo {
            ip: c.ip,
            user_agent: c.user_agent,
            sealed: None,
        }
    }
}

/// A session as the API shows it: never its token, token hash or tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// Public id (22 characters of base64url); grants nothing.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$"))]
    pub id: String,
    /// Owner; null for an anonymous session (a visitor before sign-in).
    pub subject: Option<String>,
    /// Login time.
    #[serde(with = "rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last recorded use (updated at most once per touch interval).
    #[serde(with = "rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// Last authentication (login or step-up).
    #[serde(with = "rfc3339")]
    pub authenticated_at: OffsetDateTime,
    /// Idle deadline.
    #[serde(with = "rfc3339")]
    pub idle_expires_at: OffsetDateTime,
    /// Absolute deadline.
    #[serde(with = "rfc3339")]
    pub absolute_expires_at: OffsetDateTime,
    /// The earlier of the two.
    #[serde(with = "rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Created with "remember me".
    pub remember_me: bool,
    /// Assurance level.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3))]
    pub aal: u8,
    /// Application data.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: SessionData,
    /// Client seen last (at creation, then at the last recorded use).
    pub client: ClientView,
    /// Client at creation, never changed.
    #[serde(default)]
    pub created_client: ClientView,
    /// How the client of this request (or, when it named none, the one
    /// seen last) differs from the one at creation under the policy's
    /// client binding: `ip_changed`, `user_agent_changed`, or empty.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<SignalName>))]
    pub signals: Vec<String>,
    /// Version for `If-Match`.
    pub version: u64,
}

/// A client-binding signal.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // only its schema is used
enum SignalName {
    IpChanged,
    UserAgentChanged,
}

impl SessionView {
    /// The view of `s` with `signals`.
    pub fn with_signals(s: &Session, signals: Signals) -> Self {
        Self {
            signals: signals.names().into_iter().map(str::to_owned).collect(),
            ..Self::from(s)
        }
    }
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id.to_string(),
            subject: s.signed_in_subject().map(ToString::to_string),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            authenticated_at: s.authenticated_at,
            idle_expires_at: s.idle_expires_at,
            absolute_expires_at: s.absolute_expires_at,
            expires_at: s.expires_at(),
            remember_me: s.remember_me,
            aal: s.aal.get(),
            data: s.data.clone(),
            client: ClientView::from(&s.client),
            created_client: ClientView::from(&s.created_client),
            signals: Vec::new(),
            version: s.version,
        }
    }
}

/// `client.ip`: an IPv4 or IPv6 address as `IpAddr` parses it (dotted quad
/// without leading zeros; RFC 4291 text without a zone), or null.
#[cfg(feature = "openapi")]
fn ip_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let address = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(address(KnownFormat::Ipv4))
        .item(address(KnownFormat::Ipv6))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some("The end user's IP address, IPv4 or IPv6 in text form."))
        .build()
        .into()
}
