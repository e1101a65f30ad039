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

/// The JSON of [`SessionResponse`] (no token) or [`TokenResponse`] for
/// `session`, byte for byte what serde writes for them (checked by a test),
/// written straight from the session: no [`SessionView`] with its copied
/// strings and data, and no escaping pass over the fields that never need one
/// (times, numbers, booleans, field names).
pub fn session_json(token: Option<&str>, s: &Session) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(640);
    out.push(b'{');
    if let Some(token) = token {
        out.extend_from_slice(b"\"token\":");
        serde_json::to_writer(&mut out, token)?;
        out.push(b',');
    }
    out.extend_from_slice(b"\"session\":{\"id\":");
    serde_json::to_writer(&mut out, s.id.as_str())?;
    out.extend_from_slice(b",\"subject\":");
    serde_json::to_writer(&mut out, s.subject.as_str())?;
    let times = [
        (&b",\"created_at\":"[..], s.created_at),
        (b",\"last_seen_at\":", s.last_seen_at),
        (b",\"authenticated_at\":", s.authenticated_at),
        (b",\"idle_expires_at\":", s.idle_expires_at),
        (b",\"absolute_expires_at\":", s.absolute_expires_at),
        (b",\"expires_at\":", s.expires_at()),
    ];
    for (name, at) in times {
        out.extend_from_slice(name);
        let mut buf = [0u8; rfc3339::LONGEST];
        match rfc3339::format(at, &mut buf) {
            Some(len) => {
                out.push(b'"');
                out.extend_from_slice(&buf[..len]);
                out.push(b'"');
            }
            None => serde_json::to_writer(&mut out, &Stamp(at))?,
        }
    }
    out.extend_from_slice(if s.remember_me {
        b",\"remember_me\":true"
    } else {
        b",\"remember_me\":false"
    });
    out.extend_from_slice(b",\"aal\":");
    decimal(u64::from(s.aal.get()), &mut out);
    out.extend_from_slice(b",\"data\":");
    serde_json::to_writer(&mut out, &s.data)?;
    out.extend_from_slice(b",\"client\":{");
    if let Some(ip) = &s.client.ip {
        out.extend_from_slice(b"\"ip\":");
        serde_json::to_writer(&mut out, ip)?;
    }
    if let Some(agent) = &s.client.user_agent {
        if s.client.ip.is_some() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"user_agent\":");
        serde_json::to_writer(&mut out, agent)?;
    }
    out.extend_from_slice(b"},\"version\":");
    decimal(s.version, &mut out);
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// A time serialised the way [`SessionView`] does.
struct Stamp(OffsetDateTime);

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rfc3339::serialize(&self.0, serializer)
    }
}

/// Appends `n` in decimal.
pub fn decimal(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
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

/// RFC 3339 timestamps written from a stack buffer: byte for byte what
/// `time::serde::rfc3339` writes (checked by a test), without its `String`
/// per timestamp. Offsets other than UTC and years outside 0–9999 take
/// `time`'s own path.
mod rfc3339 {
    use serde::{Deserializer, Serializer};
    use time::{OffsetDateTime, UtcOffset};

    /// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`
    pub(super) const LONGEST: usize = 30;

    fn two(out: &mut [u8], at: usize, n: u8) {
        out[at] = b'0' + n / 10;
        out[at + 1] = b'0' + n % 10;
    }

    /// The text of `at`, or `None` when `time`'s formatter must decide.
    pub(super) fn format(at: OffsetDateTime, out: &mut [u8; LONGEST]) -> Option<usize> {
        let year = u16::try_from(at.year()).ok().filter(|y| *y < 10_000)?;
        if at.offset() != UtcOffset::UTC {
            return None;
        }
        two(out, 0, u8::try_from(year / 100).ok()?);
        two(out, 2, u8::try_from(year % 100).ok()?);
        out[4] = b'-';
        two(out, 5, u8::from(at.month()));
        out[7] = b'-';
        two(out, 8, at.day());
        out[10] = b'T';
        two(out, 11, at.hour());
        out[13] = b':';
        two(out, 14, at.minute());
        out[16] = b':';
        two(out, 17, at.second());
        let mut len = 19;
        let mut nanos = at.nanosecond();
        if nanos != 0 {
            out[len] = b'.';
            let mut digits = 9;
            while nanos.is_multiple_of(10) {
                nanos /= 10;
                digits -= 1;
            }
            for i in (0..digits).rev() {
                out[len + 1 + i] = b'0' + u8::try_from(nanos % 10).ok()?;
                nanos /= 10;
            }
            len += 1 + digits;
        }
        out[len] = b'Z';
        Some(len + 1)
    }

    /// For `#[serde(with = "rfc3339")]`.
    pub(super) fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; LONGEST];
        match format(*at, &mut buf).and_then(|len| std::str::from_utf8(&buf[..len]).ok()) {
            Some(text) => serializer.serialize_str(text),
            None => time::serde::rfc3339::serialize(at, serializer),
        }
    }

    /// For `#[serde(with = "rfc3339")]`: `time`'s parser.
    pub(super) fn deserialize<'a, D: Deserializer<'a>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
        time::serde::rfc3339::deserialize(deserializer)
    }

    #[cfg(test)]
    mod tests {
        use time::format_description::well_known::Rfc3339;
        use time::{Duration, OffsetDateTime, UtcOffset};

        #[test]
        fn writes_what_time_writes() {
            let mut at = OffsetDateTime::from_unix_timestamp(0).unwrap();
            let mut step = Duration::nanoseconds(1);
            let mut nanos_seen = 0;
            for i in 0..20_000i64 {
                let mut buf = [0u8; super::LONGEST];
                let len = super::format(at, &mut buf).unwrap();
                assert_eq!(
                    std::str::from_utf8(&buf[..len]).unwrap(),
                    at.format(&Rfc3339).unwrap(),
                    "{at:?}"
                );
                nanos_seen += i64::from(at.nanosecond() != 0);
                at += step;
                step = Duration::nanoseconds((step.whole_nanoseconds() as i64 * 7 + i) % 400_000_000_000_007);
            }
            assert!(nanos_seen > 100);
            for year in [0, 1, 999, 2026, 9999] {
                let at = OffsetDateTime::now_utc().replace_year(year).unwrap();
                let mut buf = [0u8; super::LONGEST];
                let len = super::format(at, &mut buf).unwrap();
                assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), at.format(&Rfc3339).unwrap());
            }
            let mut buf = [0u8; super::LONGEST];
            let offset = OffsetDateTime::now_utc().to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
            assert_eq!(super::format(offset, &mut buf), None);
            let ancient = OffsetDateTime::now_utc().replace_year(-5).unwrap();
            assert_eq!(super::format(ancient, &mut buf), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use sessiond_core::{Aal, ClientInfo, Session, SessionId, Subject, Tenant, Token};
    use time::{Duration, OffsetDateTime};

    use super::*;

    fn session(client: ClientInfo, data: &str, version: u64) -> Session {
        let now = OffsetDateTime::now_utc();
        Session {
            id: SessionId::generate().unwrap(),
            tenant: Tenant::default_tenant(),
            subject: Subject::new("alice@example.com").unwrap(),
            token_hash: Token::generate().unwrap().hash(),
            previous_token: None,
            revoked: None,
            created_at: now - Duration::hours(1),
            last_seen_at: now,
            authenticated_at: now.replace_nanosecond(0).unwrap(),
            idle_expires_at: now + Duration::minutes(30),
            absolute_expires_at: now + Duration::hours(12),
            remember_me: version.is_multiple_of(2),
            aal: Aal::try_from(2).unwrap(),
            data: serde_json::from_str(data).unwrap(),
            client,
            version,
        }
    }

    #[test]
    fn session_json_is_what_serde_writes() {
        let clients = [
            ClientInfo::default(),
            ClientInfo {
                ip: Some("10.0.0.1".to_owned()),
                user_agent: None,
            },
            ClientInfo {
                ip: None,
                user_agent: Some("Mozilla \"5\"\t\u{1}".to_owned()),
            },
            ClientInfo {
                ip: Some("::1".to_owned()),
                user_agent: Some("curl/8".to_owned()),
            },
        ];
        for (i, client) in clients.into_iter().enumerate() {
            let s = session(client, r#"{"b":[1,2.5,null],"a":{"x":"\u00e9\"y"}}"#, 7 + i as u64);
            let plain = serde_json::to_vec(&SessionResponse {
                session: SessionView::from(&s),
            })
            .unwrap();
            assert_eq!(
                String::from_utf8(session_json(None, &s).unwrap()).unwrap(),
                String::from_utf8(plain).unwrap()
            );
            let with_token = serde_json::to_vec(&TokenResponse {
                token: "tok\"en".to_owned(),
                session: SessionView::from(&s),
            })
            .unwrap();
            assert_eq!(session_json(Some("tok\"en"), &s).unwrap(), with_token);
        }
    }
}
