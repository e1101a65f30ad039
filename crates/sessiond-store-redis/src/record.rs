//! The record encoding: one Redis string per session, stored under its
//! current token's key, so a verify is one `GET` and no script.
//!
//! A compact binary layout rather than the hash of JSON and text fields
//! this crate wrote first (layout 1): a hash whose values exceed 64 bytes
//! leaves Redis' compact listpack form, and that record cost 3,515 bytes of
//! Redis memory per session (`scripts/store_bytes`, 100,000 sessions). The
//! scripts read and rewrite only the head and the segments before `body`
//! (`common.lua`, `record_decode`/`record_encode`) and read the tenant and
//! subject at the body's start; the rest of the body is Rust's alone, so
//! application data round-trips byte for byte (Lua's cjson would round
//! numbers to 14 digits).
//!
//! Layout 3 (integers little-endian; `seg` is a u16 length and its bytes):
//!
//! ```text
//! u8 layout (3) | u64 version
//! i64 last_seen_us | i64 idle_expires_us | i64 absolute_expires_us | i64 created_us
//! seg previous   empty, or [32] hash and i64 valid_until_us
//! seg revocation empty when live, else i64 at_us and the reason's name
//! seg client     the last seen client (`client` below)
//! body: seg tenant | seg subject | [16] id | i64 authenticated_us
//!       u8 remember_me | u8 aal | seg origin name | seg created client
//!       data JSON (the rest)
//! client: u8 flags, then a seg per flag set but `SAME_AS_CREATED`:
//!       1 ip, 2 user agent, 4 sealed (text), 8 sealed (`v1` in binary:
//!       [4] key id, then salt, ciphertext and tag), 16 the same as the
//!       client at creation (the sealing layer's `=created`)
//! ```
//!
//! What layout 2 held beside this and layout 3 leaves out, for Redis'
//! memory (issue 17: 1,089 bytes per session, ≤ 700 asked): the token hash
//! (the key name holds it, in 32 bytes rather than 64 hex digits since
//! layout 3; replies carry it, see [`decode_tagged`]), the
//! subject index's key name (`common.lua` derives it from the tenant and
//! subject), the id as text (16 bytes instead of 22 and a length), and a
//! sealed client as base64 text (binary is three quarters of it). Sealed
//! values still read back as the exact text the sealing layer wrote: a
//! value whose text would not round-trip is kept as text.
//!
//! Times are whole unix microseconds, the precision the manager writes; a
//! record reads back in UTC. Numbers stay below 2^53, so Lua's doubles hold
//! them exactly. A key's value that starts with `>` is a pointer instead:
//! the key name of the record it leads to ([`POINTER`]). Values of other
//! layouts (1 and 2, written by earlier versions) read as absent.
//!
//! Decoding never trusts the bytes: every length is checked, every value
//! goes through the constructors the rest of sessiond uses, and trailing
//! bytes are refused. A bad record is [`StoreError::Corrupt`], never a
//! panic.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::Value;
use sessiond_core::{
    Aal, ClientInfo, PreviousToken, Revocation, RevokeReason, Session, SessionId, SessionOrigin, StoreError, Subject,
    Tenant, TokenHash,
};
use time::OffsetDateTime;

use crate::error::corrupt;

/// The first byte of a record in this layout.
pub(crate) const LAYOUT: u8 = 3;

/// The first byte of a pointer: a previous token's key holds `>` and the
/// record's key name.
pub(crate) const POINTER: u8 = b'>';

const CLIENT_IP: u8 = 1;
const CLIENT_USER_AGENT: u8 = 2;
const CLIENT_SEALED: u8 = 4;
const CLIENT_SEALED_BINARY: u8 = 8;
const CLIENT_SAME_AS_CREATED: u8 = 16;
const CLIENT_FLAGS: u8 = CLIENT_IP | CLIENT_USER_AGENT | CLIENT_SEALED | CLIENT_SEALED_BINARY | CLIENT_SAME_AS_CREATED;

/// What the sealing layer stores as the last seen client when it is the
/// client at creation (`sessiond_core::sealed_store`).
const SAME_AS_CREATED: &str = "=created";

/// The sealing layer's text form: `v1.<8 hex digits>.<base64url>`.
const SEALED_VERSION: &str = "v1.";
const KEY_ID_LEN: usize = 4;

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

/// A sealed value's key id and bytes, when its text is the sealing layer's
/// `v1` form and reads back to exactly the same text.
fn sealed_binary(sealed: &str) -> Option<Vec<u8>> {
    let rest = sealed.strip_prefix(SEALED_VERSION)?;
    let (key_id, body) = rest.split_once('.')?;
    if key_id.len() != KEY_ID_LEN * 2 {
        return None;
    }
    let mut out = Vec::with_capacity(KEY_ID_LEN + body.len() * 3 / 4);
    for pair in key_id.as_bytes().chunks_exact(2) {
        let digit = |c: u8| char::from(c).to_digit(16);
        let (hi, lo) = (digit(pair[0])?, digit(pair[1])?);
        out.push(u8::try_from(hi * 16 + lo).ok()?);
    }
    URL_SAFE_NO_PAD.decode_vec(body, &mut out).ok()?;
    (sealed_text(&out).as_deref() == Some(sealed)).then_some(out)
}

/// The text of a sealed value kept in binary.
fn sealed_text(binary: &[u8]) -> Option<String> {
    if binary.len() < KEY_ID_LEN {
        return None;
    }
    let (key_id, body) = binary.split_at(KEY_ID_LEN);
    let mut text = String::with_capacity(SEALED_VERSION.len() + 9 + body.len() * 4 / 3 + 1);
    text.push_str(SEALED_VERSION);
    for byte in key_id {
        text.push_str(&format!("{byte:02x}"));
    }
    text.push('.');
    URL_SAFE_NO_PAD.encode_string(body, &mut text);
    Some(text)
}

/// The client segment's bytes.
pub(crate) fn encode_client(client: &ClientInfo) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![0];
    for (bit, value) in [(CLIENT_IP, &client.ip), (CLIENT_USER_AGENT, &client.user_agent)] {
        if let Some(value) = value {
            out[0] |= bit;
            put_seg(&mut out, value.as_bytes(), "a client")?;
        }
    }
    match client.sealed.as_deref() {
        None => {}
        Some(SAME_AS_CREATED) => out[0] |= CLIENT_SAME_AS_CREATED,
        Some(sealed) => match sealed_binary(sealed) {
            Some(binary) => {
                out[0] |= CLIENT_SEALED_BINARY;
                put_seg(&mut out, &binary, "a sealed client")?;
            }
            None => {
                out[0] |= CLIENT_SEALED;
                put_seg(&mut out, sealed.as_bytes(), "a sealed client")?;
            }
        },
    }
    Ok(out)
}

/// The 16 bytes an id encodes.
fn id_bytes(id: &SessionId) -> Result<[u8; 16], StoreError> {
    let mut bytes = [0u8; 16];
    match URL_SAFE_NO_PAD.decode_slice(id.as_str(), &mut bytes) {
        Ok(16) => Ok(bytes),
        // `SessionId::parse` admits nothing else.
        _ => Err(corrupt(format!("session id {id:?} is not 16 bytes of base64url"))),
    }
}

/// The whole record of `session`.
pub(crate) fn encode(session: &Session) -> Result<Vec<u8>, StoreError> {
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
    let mut previous = Vec::with_capacity(40);
    if let Some(p) = session.previous_token {
        previous.extend_from_slice(p.hash.as_bytes());
        put_i64(&mut previous, micros_i64(p.valid_until));
    }
    put_seg(&mut out, &previous, "the previous token")?;
    let revocation = session.revoked.as_ref().map(encode_revocation).unwrap_or_default();
    put_seg(&mut out, &revocation, "the revocation")?;
    put_seg(&mut out, &encode_client(&session.client)?, "the client")?;
    put_seg(&mut out, session.tenant.as_str().as_bytes(), "the tenant")?;
    put_seg(&mut out, session.subject.as_str().as_bytes(), "the subject")?;
    out.extend_from_slice(&id_bytes(&session.id)?);
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
    let sealed_forms = flags & (CLIENT_SEALED | CLIENT_SEALED_BINARY | CLIENT_SAME_AS_CREATED);
    if flags & !CLIENT_FLAGS != 0 || sealed_forms.count_ones() > 1 {
        return Err(corrupt("unknown client flags".into()));
    }
    let mut part = |bit: u8, what: &str| -> Result<Option<String>, StoreError> {
        if flags & bit == 0 {
            return Ok(None);
        }
        Ok(Some(r.text(what)?.to_owned()))
    };
    let ip = part(CLIENT_IP, "client ip")?;
    let user_agent = part(CLIENT_USER_AGENT, "client user agent")?;
    let sealed = match sealed_forms {
        CLIENT_SEALED => Some(r.text("sealed client")?.to_owned()),
        CLIENT_SEALED_BINARY => {
            Some(sealed_text(r.seg("sealed client")?).ok_or_else(|| corrupt("sealed client is too short".into()))?)
        }
        CLIENT_SAME_AS_CREATED => Some(SAME_AS_CREATED.to_owned()),
        _ => None,
    };
    r.done("the client")?;
    Ok(ClientInfo { ip, user_agent, sealed })
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

/// A session from a record's bytes, stored under `token_hash`'s key.
pub(crate) fn decode_bytes(bytes: &[u8], token_hash: TokenHash) -> Result<Session, StoreError> {
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
    let previous_token = decode_previous(r.seg("previous token")?)?;
    let revoked = decode_revocation(r.seg("revocation")?)?;
    let client = decode_client(r.seg("client")?)?;
    let tenant = Tenant::new(r.text("tenant")?).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    let subject = Subject::from_record(r.text("subject")?).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    let id = SessionId::parse(&URL_SAFE_NO_PAD.encode(r.array::<16>("id")?))
        .ok_or_else(|| corrupt("record id is malformed".into()))?;
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

fn reply_bytes(value: &Value) -> Result<&[u8], StoreError> {
    bytes(value).ok_or_else(|| corrupt(format!("unexpected record reply: {}", crate::scripts::kind(value))))
}

/// What a `GET` of a token key answered.
pub(crate) enum Stored {
    /// A session record.
    Record(Box<Session>),
    /// `>` and the key name of a record.
    Pointer,
    /// No key, or one written by an earlier layout: its sessions are not
    /// read, as if they had ended.
    Absent,
}

/// What a `GET` of the key of `token_hash` answered.
pub(crate) fn classify(value: &Value, token_hash: TokenHash) -> Result<Stored, StoreError> {
    if matches!(value, Value::Nil) {
        return Ok(Stored::Absent);
    }
    let raw = reply_bytes(value)?;
    match raw.first() {
        Some(&LAYOUT) => Ok(Stored::Record(Box::new(decode_bytes(raw, token_hash)?))),
        Some(&POINTER) => Ok(Stored::Pointer),
        _ => Ok(Stored::Absent),
    }
}

/// A session from a script's reply: the record's token hash (32 bytes),
/// then the record (`common.lua`'s `tagged`), or nil.
pub(crate) fn decode_tagged(value: &Value) -> Result<Option<Session>, StoreError> {
    if matches!(value, Value::Nil) {
        return Ok(None);
    }
    let raw = reply_bytes(value)?;
    let (hash, record) = raw
        .split_first_chunk::<32>()
        .ok_or_else(|| corrupt("a record reply is shorter than its token hash".into()))?;
    decode_bytes(record, TokenHash::from_bytes(*hash)).map(Some)
}

/// Every record in an array reply of tagged records (nil entries skipped).
pub(crate) fn decode_all(values: &[Value]) -> Result<Vec<Session>, StoreError> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        if let Some(session) = decode_tagged(value)? {
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
        let bytes = encode(session).unwrap_or_else(|e| panic!("{e}"));
        decode_bytes(&bytes, session.token_hash).unwrap_or_else(|e| panic!("{e}"))
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

    fn sealed_client(sealed: &str) -> ClientInfo {
        ClientInfo {
            ip: None,
            user_agent: None,
            sealed: Some(sealed.to_owned()),
        }
    }

    #[test]
    fn sealed_clients_are_kept_in_binary_and_read_back_as_the_same_text() {
        let keyring = sessiond_core::sealing::Keyring::new([[7u8; 32]]).unwrap_or_else(|e| panic!("{e}"));
        let clear = br#"{"ip":"203.0.113.7","user_agent":"Mozilla/5.0 (X11; Linux x86_64)"}"#;
        let place = sessiond_core::sealing::Place::SessionClient { id: "x" };
        let sealed = keyring.seal(place, clear).unwrap_or_else(|e| panic!("{e}"));
        let encoded = encode_client(&sealed_client(&sealed)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(encoded[0], CLIENT_SEALED_BINARY);
        // A flag, a length, the key id's 4 bytes and the rest unencoded.
        let binary = sealed.len() - "v1.01234567.".len();
        assert_eq!(encoded.len(), 1 + 2 + 4 + binary * 3 / 4);
        assert_eq!(
            decode_client(&encoded).unwrap_or_else(|e| panic!("{e}")),
            sealed_client(&sealed)
        );
        // The sealing layer's marker for "the client at creation" is a flag.
        let same = encode_client(&sealed_client("=created")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(same, vec![CLIENT_SAME_AS_CREATED]);
        assert_eq!(
            decode_client(&same).unwrap_or_else(|e| panic!("{e}")),
            sealed_client("=created")
        );
        // Text that would not read back the same (upper-case hex, padding,
        // another version) stays text.
        let upper = sealed.replacen(&sealed[3..11], &sealed[3..11].to_uppercase(), 1);
        for odd in [
            upper.as_str(),
            "v1.k.abc",
            "v2.01234567.AAAA",
            "v1.01234567.AAAA=",
            "v1.0123456g.AAAA",
        ] {
            let encoded = encode_client(&sealed_client(odd)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(encoded[0], CLIENT_SEALED, "{odd}");
            assert_eq!(
                decode_client(&encoded).unwrap_or_else(|e| panic!("{e}")),
                sealed_client(odd)
            );
        }
        // Two sealed forms at once are not a client this layout writes.
        assert!(matches!(
            decode_client(&[CLIENT_SEALED_BINARY | CLIENT_SAME_AS_CREATED, 0, 0]),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn the_head_and_the_names_are_where_the_scripts_read_them() {
        let session = sample();
        let bytes = encode(&session).unwrap_or_else(|e| panic!("{e}"));
        // common.lua's HEAD format '<BI8i8i8i8i8', then the segments
        // prev, rev and client, then the body's tenant and subject.
        assert_eq!(bytes[0], LAYOUT);
        assert_eq!(bytes[1..9], 4u64.to_le_bytes());
        assert_eq!(bytes[9..17], micros_i64(session.last_seen_at).to_le_bytes());
        assert_eq!(bytes[41..43], 40u16.to_le_bytes());
        let mut r = Reader { bytes: &bytes[41..] };
        for segment in ["prev", "rev", "client"] {
            r.seg(segment).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(r.text("tenant").ok(), Some("default"));
        assert_eq!(r.text("subject").ok(), Some("alice"));
    }

    #[test]
    fn pointers_and_older_layouts_are_not_records() {
        let hash = sample().token_hash;
        let pointer = Value::BulkString(b">sessiond:t:ab".to_vec());
        assert!(matches!(classify(&pointer, hash), Ok(Stored::Pointer)));
        // Layout 1's token pointers held a key name; layout 2's records
        // began with 2.
        for old in [&b"sessiond:{0123456789abcdef}:s:x"[..], &[2, 0, 0, 0]] {
            assert!(matches!(
                classify(&Value::BulkString(old.to_vec()), hash),
                Ok(Stored::Absent)
            ));
        }
        assert!(matches!(classify(&Value::Nil, hash), Ok(Stored::Absent)));
        assert!(matches!(decode_tagged(&Value::Nil), Ok(None)));
    }

    #[test]
    fn tagged_replies_carry_the_token_hash() {
        let session = sample();
        let mut reply = session.token_hash.as_bytes().to_vec();
        reply.extend(encode(&session).unwrap_or_else(|e| panic!("{e}")));
        let read = decode_tagged(&Value::BulkString(reply.clone())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read, Some(session));
        // A reply cut inside the hash, or inside the record.
        for cut in [31, 40] {
            let short = Value::BulkString(reply[..cut].to_vec());
            assert!(
                matches!(decode_tagged(&short), Err(StoreError::Corrupt(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn damaged_records_are_corrupt_not_absent() {
        let session = sample();
        let bytes = encode(&session).unwrap_or_else(|e| panic!("{e}"));
        for cut in [1, 9, 50, 80, bytes.len() - 1] {
            let value = Value::BulkString(bytes[..cut].to_vec());
            assert!(
                matches!(classify(&value, session.token_hash), Err(StoreError::Corrupt(_))),
                "cut at {cut}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(b'}');
        assert!(matches!(
            classify(&Value::BulkString(trailing), session.token_hash),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            classify(&Value::Int(3), session.token_hash),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn micros_floor_before_the_epoch_too() {
        assert_eq!(micros(datetime!(1970-01-01 00:00:00.000001500 UTC)), "1");
        assert_eq!(micros(datetime!(1969-12-31 23:59:59.9999995 UTC)), "-1");
    }
}
