//! The record encoding: one Redis string per session, stored under its
//! current token's key, so a verify is one `GET` and no script.
//!
//! A compact binary layout rather than the hash of JSON and text fields
//! this crate wrote before (layout 1): a hash whose values exceed 64 bytes
//! leaves Redis' compact listpack form, and that record cost 3,515 bytes of
//! Redis memory per session (`scripts/store_bytes`, 100,000 sessions). The
//! scripts read and rewrite only the head and the segments before `body`
//! (`common.lua`, `record_decode`/`record_encode`); the body is Rust's
//! alone, so application data round-trips byte for byte (Lua's cjson would
//! round numbers to 14 digits).
//!
//! Layout (integers little-endian; `seg` is a u16 length and its bytes):
//!
//! ```text
//! u8 layout (2) | u64 version
//! i64 last_seen_us | i64 idle_expires_us | i64 absolute_expires_us | i64 created_us
//! [32] token hash
//! seg previous   empty, or [32] hash and i64 valid_until_us
//! seg subject index key (scripts re-index the record from it)
//! seg id
//! seg revocation empty when live, else i64 at_us and the reason's name
//! seg client     the last seen client (`client` below)
//! body: seg tenant | seg subject | i64 authenticated_us | u8 remember_me
//!       u8 aal | seg origin name | seg created client | data JSON (the rest)
//! client: u8 flags (1 ip, 2 user_agent, 4 sealed), then a seg per flag set
//! ```
//!
//! Times are whole unix microseconds, the precision the manager writes; a
//! record reads back in UTC. Numbers stay below 2^53, so Lua's doubles hold
//! them exactly. A key's value that starts with `>` is a pointer instead:
//! the key name of the record it leads to ([`POINTER`]).
//!
//! Decoding never trusts the bytes: every length is checked, every value
//! goes through the constructors the rest of sessiond uses, and trailing
//! bytes are refused. A bad record is [`StoreError::Corrupt`], never a
//! panic.

use redis::Value;
use sessiond_core::{
    Aal, ClientInfo, PreviousToken, Revocation, RevokeReason, Session, SessionId, SessionOrigin, StoreError, Subject,
    Tenant, TokenHash,
};
use time::OffsetDateTime;

use crate::error::corrupt;

/// The first byte of a record in this layout.
pub(crate) const LAYOUT: u8 = 2;

/// The first byte of a pointer: a previous token's key and an id's key
/// hold `>` and the record's key name.
pub(crate) const POINTER: u8 = b'>';

const CLIENT_IP: u8 = 1;
const CLIENT_USER_AGENT: u8 = 2;
const CLIENT_SEALED: u8 = 4;

/// Unix microseconds (floor), as text for the scripts.
pub(crate) fn micros(at: OffsetDateTime) -> String {
    micros_i64(at).to_string()
}

fn micros_i64(at: OffsetDateTime) -> i64 {
    // Within ±292,000 years of 1970; `OffsetDateTime` cannot leave that.
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1000)).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

fn too_long(what: &str) -> StoreError {
    StoreError::Backend(Box::new(crate::error::Unexpected(format!(
        "{what} is longer than a record segment (64 KiB)"
    ))))
}

/// Appends `bytes` as a segment: a u16 length, then the bytes.
fn put_seg(out: &mut Vec<u8>, bytes: &[u8], what: &str) -> Result<(), StoreError> {
    let len = u16::try_from(bytes.len()).map_err(|_| too_long(what))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// The revocation segment's bytes.
pub(crate) fn encode_revocation(revocation: &Revocation) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    put_i64(&mut out, micros_i64(revocation.at));
    out.extend_from_slice(revocation.reason.as_str().as_bytes());
    out
}

/// The client segment's bytes.
pub(crate) fn encode_client(client: &ClientInfo) -> Result<Vec<u8>, StoreError> {
    let parts = [
        (CLIENT_IP, &client.ip),
        (CLIENT_USER_AGENT, &client.user_agent),
        (CLIENT_SEALED, &client.sealed),
    ];
    let mut out = vec![parts.iter().filter(|(_, v)| v.is_some()).fold(0, |f, (bit, _)| f | bit)];
    for (_, value) in parts {
        if let Some(value) = value {
            put_seg(&mut out, value.as_bytes(), "a client")?;
        }
    }
    Ok(out)
}

/// The whole record of `session`, whose subject index key is `subject_index`.
pub(crate) fn encode(session: &Session, subject_index: &str) -> Result<Vec<u8>, StoreError> {
    let data = serde_json::to_vec(&session.data).map_err(|e| StoreError::Backend(Box::new(e)))?;
    let mut out = Vec::with_capacity(160 + data.len());
    out.push(LAYOUT);
    out.extend_from_slice(&session.version.to_le_bytes());
    for at in [
        session.last_seen_at,
        session.idle_expires_at,
        session.absolute_expires_at,
        session.created_at,
    ] {
        put_i64(&mut out, micros_i64(at));
    }
    out.extend_from_slice(session.token_hash.as_bytes());
    let mut previous = Vec::with_capacity(40);
    if let Some(p) = session.previous_token {
        previous.extend_from_slice(p.hash.as_bytes());
        put_i64(&mut previous, micros_i64(p.valid_until));
    }
    put_seg(&mut out, &previous, "the previous token")?;
    put_seg(&mut out, subject_index.as_bytes(), "the subject index key")?;
    put_seg(&mut out, session.id.as_str().as_bytes(), "the id")?;
    let revocation = session.revoked.as_ref().map(encode_revocation).unwrap_or_default();
    put_seg(&mut out, &revocation, "the revocation")?;
    put_seg(&mut out, &encode_client(&session.client)?, "the client")?;
    put_seg(&mut out, session.tenant.as_str().as_bytes(), "the tenant")?;
    put_seg(&mut out, session.subject.as_str().as_bytes(), "the subject")?;
    put_i64(&mut out, micros_i64(session.authenticated_at));
    out.push(u8::from(session.remember_me));
    out.push(u8::from(session.aal));
    put_seg(&mut out, session.origin.as_str().as_bytes(), "the origin")?;
    put_seg(
        &mut out,
        &encode_client(&session.created_client)?,
        "the client at creation",
    )?;
    out.extend_from_slice(&data);
    Ok(out)
}

/// Reads a record front to back; every read checks the length left.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < n {
            return Err(corrupt(format!("record ends inside {what}")));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], StoreError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, StoreError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i64(&mut self, what: &str) -> Result<i64, StoreError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    fn time(&mut self, what: &str) -> Result<OffsetDateTime, StoreError> {
        from_micros(self.i64(what)?)
    }

    fn seg(&mut self, what: &str) -> Result<&'a [u8], StoreError> {
        let len = u16::from_le_bytes(self.array(what)?);
        self.take(usize::from(len), what)
    }

    fn text(&mut self, what: &str) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.seg(what)?).map_err(|_| corrupt(format!("{what} is not UTF-8")))
    }

    fn done(&self, what: &str) -> Result<(), StoreError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(corrupt(format!("{what} has trailing bytes")))
        }
    }
}

fn decode_client(bytes: &[u8]) -> Result<ClientInfo, StoreError> {
    let mut r = Reader { bytes };
    let flags = r.u8("client flags")?;
    if flags & !(CLIENT_IP | CLIENT_USER_AGENT | CLIENT_SEALED) != 0 {
        return Err(corrupt("unknown client flags".into()));
    }
    let mut part = |bit: u8, what: &str| -> Result<Option<String>, StoreError> {
        if flags & bit == 0 {
            return Ok(None);
        }
        Ok(Some(r.text(what)?.to_owned()))
    };
    let client = ClientInfo {
        ip: part(CLIENT_IP, "client ip")?,
        user_agent: part(CLIENT_USER_AGENT, "client user agent")?,
        sealed: part(CLIENT_SEALED, "sealed client")?,
    };
    r.done("the client")?;
    Ok(client)
}

fn decode_revocation(bytes: &[u8]) -> Result<Option<Revocation>, StoreError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut r = Reader { bytes };
    let at = r.time("revocation time")?;
    let name = std::str::from_utf8(r.bytes).map_err(|_| corrupt("revocation reason is not UTF-8".into()))?;
    let reason = RevokeReason::from_name(name).ok_or_else(|| corrupt("unknown revocation reason".into()))?;
    Ok(Some(Revocation { at, reason }))
}

fn decode_previous(bytes: &[u8]) -> Result<Option<PreviousToken>, StoreError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let mut r = Reader { bytes };
    let previous = PreviousToken {
        hash: TokenHash::from_bytes(r.array("previous token hash")?),
        valid_until: r.time("previous token deadline")?,
    };
    r.done("the previous token")?;
    Ok(Some(previous))
}

/// A session from a record's bytes.
pub(crate) fn decode_bytes(bytes: &[u8]) -> Result<Session, StoreError> {
    let mut r = Reader { bytes };
    match r.u8("layout")? {
        LAYOUT => {}
        other => return Err(corrupt(format!("record layout {other} is not {LAYOUT}"))),
    }
    let version = u64::from_le_bytes(r.array("version")?);
    let last_seen_at = r.time("last seen")?;
    let idle_expires_at = r.time("idle deadline")?;
    let absolute_expires_at = r.time("absolute deadline")?;
    let created_at = r.time("creation time")?;
    let token_hash = TokenHash::from_bytes(r.array("token hash")?);
    let previous_token = decode_previous(r.seg("previous token")?)?;
    r.seg("subject index key")?;
    let id = SessionId::parse(r.text("id")?).ok_or_else(|| corrupt("record id is malformed".into()))?;
    let revoked = decode_revocation(r.seg("revocation")?)?;
    let client = decode_client(r.seg("client")?)?;
    let tenant = Tenant::new(r.text("tenant")?).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    let subject = Subject::from_record(r.text("subject")?).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    let authenticated_at = r.time("authentication time")?;
    let remember_me = match r.u8("remember me")? {
        0 => false,
        1 => true,
        _ => return Err(corrupt("remember me is not 0 or 1".into())),
    };
    let aal = Aal::try_from(r.u8("aal")?).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    let origin = SessionOrigin::from_name(r.text("origin")?).ok_or_else(|| corrupt("unknown session origin".into()))?;
    let created_client = decode_client(r.seg("client at creation")?)?;
    let data = serde_json::from_slice(r.bytes).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    Ok(Session {
        id,
        tenant,
        subject,
        token_hash,
        previous_token,
        created_at,
        last_seen_at,
        authenticated_at,
        idle_expires_at,
        absolute_expires_at,
        remember_me,
        aal,
        data,
        client,
        created_client,
        version,
        revoked,
        origin,
    })
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// What a key held: a record, a pointer to one, or nothing usable.
pub(crate) enum Stored {
    /// A session record.
    Record(Box<Session>),
    /// `>` and the key name of a record.
    Pointer,
    /// No key, or one written by layout 1 (before this encoding): its
    /// sessions are not read, as if they had ended.
    Absent,
}

/// What a `GET` (or a script returning a key's value) answered.
pub(crate) fn classify(value: &Value) -> Result<Stored, StoreError> {
    let raw = match value {
        Value::Nil => return Ok(Stored::Absent),
        other => {
            bytes(other).ok_or_else(|| corrupt(format!("unexpected record reply: {}", crate::scripts::kind(other))))?
        }
    };
    match raw.first() {
        Some(&LAYOUT) => Ok(Stored::Record(Box::new(decode_bytes(raw)?))),
        Some(&POINTER) => Ok(Stored::Pointer),
        _ => Ok(Stored::Absent),
    }
}

/// A session from a reply holding a record, or `None` when the reply is
/// nil, a pointer or a layout-1 value.
pub(crate) fn decode(value: &Value) -> Result<Option<Session>, StoreError> {
    match classify(value)? {
        Stored::Record(session) => Ok(Some(*session)),
        Stored::Pointer | Stored::Absent => Ok(None),
    }
}

/// Every record in an array reply (nil entries skipped).
pub(crate) fn decode_all(values: &[Value]) -> Result<Vec<Session>, StoreError> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        if let Some(session) = decode(value)? {
            out.push(session);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_core::{Aal, SessionId, SessionOrigin, Subject, Tenant, Token};
    use time::macros::datetime;

    fn sample() -> Session {
        let at = datetime!(2026-03-01 12:00:00.123456 UTC);
        Session {
            id: SessionId::generate().unwrap_or_else(|e| panic!("{e}")),
            tenant: Tenant::default_tenant(),
            subject: Subject::new("alice").unwrap_or_else(|e| panic!("{e}")),
            token_hash: Token::generate().unwrap_or_else(|e| panic!("{e}")).hash(),
            previous_token: Some(PreviousToken {
                hash: Token::generate().unwrap_or_else(|e| panic!("{e}")).hash(),
                valid_until: at + time::Duration::seconds(30),
            }),
            created_at: at,
            last_seen_at: at + time::Duration::minutes(1),
            authenticated_at: at,
            idle_expires_at: at + time::Duration::minutes(30),
            absolute_expires_at: at + time::Duration::hours(12),
            remember_me: true,
            aal: Aal::AAL1,
            data: serde_json::json!({"cart": [1, 2.5, "x"], "n": 12345678901234567_u64})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            created_client: ClientInfo {
                ip: Some("192.0.2.10".into()),
                user_agent: Some("Created/1".into()),
                sealed: None,
            },
            client: ClientInfo {
                ip: None,
                user_agent: None,
                sealed: Some("v1.k.abc".into()),
            },
            version: 4,
            revoked: Some(Revocation {
                at: at + time::Duration::minutes(2),
                reason: RevokeReason::HijackSuspected,
            }),
            origin: SessionOrigin::Portal,
        }
    }

    fn roundtrip(session: &Session) -> Session {
        let bytes = encode(session, "sessiond:{ab}:u:default/alice").unwrap_or_else(|e| panic!("{e}"));
        decode_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn records_decode_back_to_the_same_session() {
        let session = sample();
        assert_eq!(roundtrip(&session), session);
        let plain = Session {
            previous_token: None,
            revoked: None,
            client: ClientInfo::default(),
            created_client: ClientInfo::default(),
            data: serde_json::Map::new(),
            origin: SessionOrigin::Api,
            remember_me: false,
            ..session
        };
        assert_eq!(roundtrip(&plain), plain);
    }

    #[test]
    fn the_head_is_where_the_scripts_read_it() {
        let session = sample();
        let bytes = encode(&session, "ix").unwrap_or_else(|e| panic!("{e}"));
        // common.lua's HEAD format '<BI8i8i8i8i8c32', then the segments.
        assert_eq!(bytes[0], LAYOUT);
        assert_eq!(bytes[1..9], 4u64.to_le_bytes());
        assert_eq!(bytes[9..17], micros_i64(session.last_seen_at).to_le_bytes());
        assert_eq!(bytes[41..73], session.token_hash.as_bytes()[..]);
        assert_eq!(bytes[73..75], 40u16.to_le_bytes());
    }

    #[test]
    fn pointers_and_older_layouts_are_not_records() {
        let pointer = Value::BulkString(b">sessiond:t:ab".to_vec());
        assert!(matches!(classify(&pointer), Ok(Stored::Pointer)));
        // Layout 1's token pointers held a key name; its records were hashes.
        let old = Value::BulkString(b"sessiond:{0123456789abcdef}:s:x".to_vec());
        assert!(matches!(classify(&old), Ok(Stored::Absent)));
        assert!(matches!(decode(&Value::Nil), Ok(None)));
    }

    #[test]
    fn damaged_records_are_corrupt_not_absent() {
        let bytes = encode(&sample(), "ix").unwrap_or_else(|e| panic!("{e}"));
        for cut in [1, 9, 50, 80, bytes.len() - 1] {
            let value = Value::BulkString(bytes[..cut].to_vec());
            assert!(matches!(decode(&value), Err(StoreError::Corrupt(_))), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(b'}');
        assert!(matches!(
            decode(&Value::BulkString(trailing)),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(decode(&Value::Int(3)), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn micros_floor_before_the_epoch_too() {
        assert_eq!(micros(datetime!(1970-01-01 00:00:00.000001500 UTC)), "1");
        assert_eq!(micros(datetime!(1969-12-31 23:59:59.9999995 UTC)), "-1");
    }
}
