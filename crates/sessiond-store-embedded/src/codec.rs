//! The on-disk encoding of a session record.
//!
//! A compact, versioned binary layout of our own rather than serde_json:
//! verify decodes one record per call, and JSON's text timestamps and field
//! names cost several times more to parse than fixed-width integers. Only
//! the application `data` map stays JSON text, because it *is* JSON.
//!
//! Layout (all integers little-endian), after a leading layout byte:
//!
//! ```text
//! str id | str tenant | str subject | [32] token_hash
//! u8 has_previous [ [32] hash | time valid_until ]
//! time created_at | time last_seen_at | time authenticated_at
//! time idle_expires_at | time absolute_expires_at
//! u8 remember_me | u8 aal | str data_json
//! opt_str ip | opt_str user_agent | u64 version
//! u8 has_revocation [ time at | u8 reason ]
//! u8 origin                      (layouts 2 to 4: 1 = api, 2 = portal)
//! opt_str sealed_client          (layouts 3 and 4)
//! opt_str created_ip | opt_str created_user_agent
//! opt_str created_sealed         (layout 4 only: `created_client`)
//! ```
//!
//! Layout 1 is layout 2 without the origin byte; its records were written
//! before sessions recorded their origin and read back as `api`, never as
//! portal logins (issue 12, finding 3). Layout 2 is layout 3 without the
//! sealed client (`ClientInfo::sealed`), which records written before
//! sealing never have. Layout 3 is layout 4 without the client at creation
//! (`Session::created_client`); its records, and those of layouts 1 and 2,
//! read back with an empty one, which client binding compares with nothing.
//!
//! where `str` is a u32 length and UTF-8 bytes, `opt_str` a presence byte
//! then a `str`, and `time` an i128 of Unix nanoseconds and an i32 UTC
//! offset in seconds (so a record reads back exactly as it was written).
//!
//! A portal account ([`UserRecord`]) has a layout of its own, with its own
//! leading layout byte (numbered independently of the session's):
//!
//! ```text
//! str tenant | str name | str password_hash | u8 disabled
//! time created_at | time password_changed_at | u64 version
//! ```
//!
//! Decoding never trusts the bytes: every length is checked, every value is
//! validated through the same constructors the rest of sessiond uses, and
//! trailing bytes are refused. A bad record is an error, never a panic.

use sessiond_core::{
    Aal, ClientInfo, PreviousToken, Revocation, RevokeReason, Session, SessionId, SessionOrigin, Subject, Tenant,
    TokenHash, UserRecord,
};
use time::{OffsetDateTime, UtcOffset};

/// The first record layout, without the origin; still read. A new layout
/// gets a new number, and decoding dispatches on it.
const LAYOUT_V1: u8 = 1;

/// Layout 1 and the origin byte; still read.
const LAYOUT_V2: u8 = 2;

/// Layout 2 and the sealed client; still read.
const LAYOUT_V3: u8 = 3;

/// The record layout this build writes: layout 3 and the client at
/// creation (IP, User-Agent, sealed form).
const LAYOUT_V4: u8 = 4;

/// The user record layout this build writes and reads.
const USER_LAYOUT_V1: u8 = 1;

/// A stored record that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable session record: {0}")]
pub struct DecodeError(&'static str);

/// Why a record could not be encoded (its data map did not serialize).
#[derive(Debug, thiserror::Error)]
#[error("session data could not be encoded")]
pub struct EncodeError(#[source] serde_json::Error);

/// Encodes `session` into a fresh buffer.
pub(crate) fn encode(session: &Session) -> Result<Vec<u8>, EncodeError> {
    let data = serde_json::to_vec(&session.data).map_err(EncodeError)?;
    let mut out = Vec::with_capacity(256 + data.len());
    out.push(LAYOUT_V4);
    put_str(&mut out, session.id.as_str());
    put_str(&mut out, session.tenant.as_str());
    put_str(&mut out, session.subject.as_str());
    out.extend_from_slice(session.token_hash.as_bytes());
    match &session.previous_token {
        Some(previous) => {
            out.push(1);
            out.extend_from_slice(previous.hash.as_bytes());
            put_time(&mut out, previous.valid_until);
        }
        None => out.push(0),
    }
    for t in [
        session.created_at,
        session.last_seen_at,
        session.authenticated_at,
        session.idle_expires_at,
        session.absolute_expires_at,
    ] {
        put_time(&mut out, t);
    }
    out.push(u8::from(session.remember_me));
    out.push(session.aal.get());
    put_bytes(&mut out, &data);
    put_opt_str(&mut out, session.client.ip.as_deref());
    put_opt_str(&mut out, session.client.user_agent.as_deref());
    out.extend_from_slice(&session.version.to_le_bytes());
    match &session.revoked {
        Some(revocation) => {
            out.push(1);
            put_time(&mut out, revocation.at);
            out.push(reason_code(revocation.reason));
        }
        None => out.push(0),
    }
    out.push(origin_code(session.origin));
    put_opt_str(&mut out, session.client.sealed.as_deref());
    put_opt_str(&mut out, session.created_client.ip.as_deref());
    put_opt_str(&mut out, session.created_client.user_agent.as_deref());
    put_opt_str(&mut out, session.created_client.sealed.as_deref());
    Ok(out)
}

/// Decodes a record written by [`encode`].
pub(crate) fn decode(bytes: &[u8]) -> Result<Session, DecodeError> {
    let mut r = Reader(bytes);
    let layout = r.u8()?;
    if !matches!(layout, LAYOUT_V1 | LAYOUT_V2 | LAYOUT_V3 | LAYOUT_V4) {
        return Err(DecodeError("unknown record layout"));
    }
    let id = SessionId::parse(r.str()?).ok_or(DecodeError("invalid session id"))?;
    let tenant = Tenant::new(r.str()?).map_err(|_| DecodeError("invalid tenant"))?;
    // The rule of the time it was written: older records may hold subjects
    // a new session may not.
    let subject = Subject::from_record(r.str()?).map_err(|_| DecodeError("invalid subject"))?;
    let token_hash = TokenHash::from_bytes(r.array()?);
    let previous_token = match r.flag()? {
        true => Some(PreviousToken {
            hash: TokenHash::from_bytes(r.array()?),
            valid_until: r.time()?,
        }),
        false => None,
    };
    let created_at = r.time()?;
    let last_seen_at = r.time()?;
    let authenticated_at = r.time()?;
    let idle_expires_at = r.time()?;
    let absolute_expires_at = r.time()?;
    let remember_me = r.flag()?;
    let aal = Aal::try_from(r.u8()?).map_err(|_| DecodeError("invalid aal"))?;
    let data = serde_json::from_slice(r.bytes()?).map_err(|_| DecodeError("invalid data json"))?;
    let mut client = ClientInfo {
        ip: r.opt_str()?.map(str::to_owned),
        user_agent: r.opt_str()?.map(str::to_owned),
        sealed: None,
    };
    let version = u64::from_le_bytes(r.array()?);
    let revoked = match r.flag()? {
        true => Some(Revocation {
            at: r.time()?,
            reason: reason_from_code(r.u8()?)?,
        }),
        false => None,
    };
    let origin = match layout {
        LAYOUT_V1 => SessionOrigin::Api,
        _ => origin_from_code(r.u8()?)?,
    };
    if matches!(layout, LAYOUT_V3 | LAYOUT_V4) {
        client.sealed = r.opt_str()?.map(str::to_owned);
    }
    let created_client = match layout {
        LAYOUT_V4 => ClientInfo {
            ip: r.opt_str()?.map(str::to_owned),
            user_agent: r.opt_str()?.map(str::to_owned),
            sealed: r.opt_str()?.map(str::to_owned),
        },
        _ => ClientInfo::default(),
    };
    if !r.0.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
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
        created_client,
        client,
        version,
        revoked,
        origin,
    })
}

/// Encodes a portal account into a fresh buffer.
pub(crate) fn encode_user(user: &UserRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + user.name.as_str().len() + user.password_hash.len());
    out.push(USER_LAYOUT_V1);
    put_str(&mut out, user.tenant.as_str());
    put_str(&mut out, user.name.as_str());
    put_str(&mut out, &user.password_hash);
    out.push(u8::from(user.disabled));
    put_time(&mut out, user.created_at);
    put_time(&mut out, user.password_changed_at);
    out.extend_from_slice(&user.version.to_le_bytes());
    out
}

/// Decodes a portal account written by [`encode_user`].
pub(crate) fn decode_user(bytes: &[u8]) -> Result<UserRecord, DecodeError> {
    let mut r = Reader(bytes);
    match r.u8()? {
        USER_LAYOUT_V1 => {}
        _ => return Err(DecodeError("unknown user record layout")),
    }
    let tenant = Tenant::new(r.str()?).map_err(|_| DecodeError("invalid tenant"))?;
    let name = Subject::from_record(r.str()?).map_err(|_| DecodeError("invalid user name"))?;
    let password_hash = r.str()?.to_owned();
    let disabled = r.flag()?;
    let created_at = r.time()?;
    let password_changed_at = r.time()?;
    let version = u64::from_le_bytes(r.array()?);
    if !r.0.is_empty() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(UserRecord {
        tenant,
        name,
        password_hash,
        disabled,
        created_at,
        password_changed_at,
        version,
    })
}

/// An instant as the i128 the expiry index sorts by.
pub(crate) fn deadline_key(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos()
}

/// Stable one-byte codes: never renumber, only add.
fn reason_code(reason: RevokeReason) -> u8 {
    match reason {
        RevokeReason::Logout => 1,
        RevokeReason::Admin => 2,
        RevokeReason::PasswordChange => 3,
        RevokeReason::Limit => 4,
        RevokeReason::Theft => 5,
        RevokeReason::User => 6,
        RevokeReason::HijackSuspected => 7,
        RevokeReason::SignedIn => 8,
    }
}

fn reason_from_code(code: u8) -> Result<RevokeReason, DecodeError> {
    Ok(match code {
        1 => RevokeReason::Logout,
        2 => RevokeReason::Admin,
        3 => RevokeReason::PasswordChange,
        4 => RevokeReason::Limit,
        5 => RevokeReason::Theft,
        6 => RevokeReason::User,
        7 => RevokeReason::HijackSuspected,
        8 => RevokeReason::SignedIn,
        _ => return Err(DecodeError("unknown revocation reason")),
    })
}

/// Stable one-byte codes of the origin: never renumber, only add.
fn origin_code(origin: SessionOrigin) -> u8 {
    match origin {
        SessionOrigin::Api => 1,
        SessionOrigin::Portal => 2,
    }
}

fn origin_from_code(code: u8) -> Result<SessionOrigin, DecodeError> {
    match code {
        1 => Ok(SessionOrigin::Api),
        2 => Ok(SessionOrigin::Portal),
        _ => Err(DecodeError("unknown session origin")),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every field is far below 4 GiB (bounded by the manager's policy); a
    // longer one would be refused by redb's value size limit first.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
        None => out.push(0),
    }
}

fn put_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    out.extend_from_slice(&t.unix_timestamp_nanos().to_le_bytes());
    out.extend_from_slice(&t.offset().whole_seconds().to_le_bytes());
}

/// A cursor over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated record"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("invalid flag byte")),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = u32::from_le_bytes(self.array()?);
        let len = usize::try_from(len).map_err(|_| DecodeError("length out of range"))?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError("invalid utf-8"))
    }

    fn opt_str(&mut self) -> Result<Option<&'a str>, DecodeError> {
        match self.flag()? {
            true => self.str().map(Some),
            false => Ok(None),
        }
    }

    fn time(&mut self) -> Result<OffsetDateTime, DecodeError> {
        let nanos = i128::from_le_bytes(self.array()?);
        let offset = i32::from_le_bytes(self.array()?);
        let utc = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| DecodeError("time out of range"))?;
        let offset = UtcOffset::from_whole_seconds(offset).map_err(|_| DecodeError("offset out of range"))?;
        utc.checked_to_offset(offset).ok_or(DecodeError("time out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessiond_testkit::conformance::{NOW, sample};

    fn full() -> Session {
        let mut s = sample("acme", "user-1", NOW);
        s.previous_token = Some(PreviousToken {
            hash: TokenHash::from_bytes([7; 32]),
            valid_until: NOW.to_offset(time::macros::offset!(+02:30)),
        });
        s.revoked = Some(Revocation {
            at: NOW,
            reason: RevokeReason::PasswordChange,
        });
        s.remember_me = true;
        s.origin = SessionOrigin::Portal;
        s
    }

    fn sealed_client() -> Session {
        let mut s = sample("t", "s", NOW);
        s.client = ClientInfo {
            ip: None,
            user_agent: None,
            sealed: Some("v1.01020304.sealed".to_owned()),
        };
        s.created_client = ClientInfo {
            ip: None,
            user_agent: None,
            sealed: Some("v1.01020304.created".to_owned()),
        };
        s
    }

    /// `session` as a layout 3 record (written before the client at
    /// creation was kept): layout 4 without the three trailing absence
    /// bytes of an empty created client.
    fn layout_3(session: &Session) -> Vec<u8> {
        let mut bytes = encode(&Session {
            created_client: ClientInfo::default(),
            ..session.clone()
        })
        .unwrap();
        assert_eq!(bytes.split_off(bytes.len() - 3), [0, 0, 0]);
        bytes[0] = LAYOUT_V3;
        bytes
    }

    /// `session` with the created client an old layout leaves empty.
    fn without_created_client(session: &Session) -> Session {
        Session {
            created_client: ClientInfo::default(),
            ..session.clone()
        }
    }

    #[test]
    fn records_round_trip_exactly() {
        let plain = sample("t", "s", NOW);
        assert_ne!(plain.created_client, ClientInfo::default());
        assert_ne!(plain.created_client, plain.client);
        for s in [plain, full(), sealed_client()] {
            let bytes = encode(&s).unwrap();
            assert_eq!(bytes[0], LAYOUT_V4);
            let back = decode(&bytes).unwrap();
            assert_eq!(back, s);
            assert_eq!(back.created_client, s.created_client);
            let offset = back.previous_token.map(|p| p.valid_until.offset());
            assert_eq!(offset, s.previous_token.map(|p| p.valid_until.offset()));
        }
    }

    #[test]
    fn created_clients_are_the_last_fields_in_order() {
        let mut s = sample("t", "s", NOW);
        s.created_client = ClientInfo {
            ip: Some("192.0.2.9".into()),
            user_agent: None,
            sealed: Some("v1.01020304.x".into()),
        };
        let bytes = encode(&s).unwrap();
        let mut tail = vec![1];
        tail.extend_from_slice(&9u32.to_le_bytes());
        tail.extend_from_slice(b"192.0.2.9");
        tail.push(0);
        tail.push(1);
        tail.extend_from_slice(&13u32.to_le_bytes());
        tail.extend_from_slice(b"v1.01020304.x");
        assert_eq!(bytes[bytes.len() - tail.len()..], tail[..]);
    }

    #[test]
    fn layout_3_records_read_back_without_a_created_client() {
        for session in [full(), sealed_client()] {
            let bytes = layout_3(&session);
            let back = decode(&bytes).unwrap();
            assert_eq!(back.created_client, ClientInfo::default());
            assert_eq!(back, without_created_client(&session));
        }
        // A layout 4 record with a created client is not a layout 3 one.
        let mut tagged = encode(&full()).unwrap();
        tagged[0] = LAYOUT_V3;
        assert_eq!(decode(&tagged), Err(DecodeError("trailing bytes")));
    }

    #[test]
    fn layout_1_records_read_back_as_api_sessions() {
        let session = full();
        let mut bytes = layout_3(&session);
        // Layout 1 is layout 3 without the trailing origin byte and the
        // sealed client's absence byte.
        assert_eq!(bytes.pop(), Some(0));
        assert_eq!(bytes.pop(), Some(2));
        bytes[0] = LAYOUT_V1;
        let back = decode(&bytes).unwrap();
        assert_eq!(back.origin, SessionOrigin::Api);
        assert_eq!(
            Session {
                origin: SessionOrigin::Portal,
                ..back
            },
            without_created_client(&session)
        );
        let mut unknown = layout_3(&session);
        let origin = unknown.len() - 2;
        unknown[origin] = 9;
        assert_eq!(decode(&unknown), Err(DecodeError("unknown session origin")));
    }

    #[test]
    fn layout_2_records_read_back_without_a_sealed_client() {
        let session = full();
        let mut bytes = layout_3(&session);
        assert_eq!(bytes.pop(), Some(0));
        bytes[0] = LAYOUT_V2;
        assert_eq!(decode(&bytes).unwrap(), without_created_client(&session));
        let mut sealed = layout_3(&sealed_client());
        sealed[0] = LAYOUT_V2;
        assert_eq!(decode(&sealed), Err(DecodeError("trailing bytes")));
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        let bytes = encode(&full()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(DecodeError("trailing bytes")));
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let bytes = encode(&full()).unwrap();
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                let _ = decode(&bad);
            }
        }
        assert_eq!(decode(&[9]), Err(DecodeError("unknown record layout")));
    }

    fn user() -> UserRecord {
        let mut user = sessiond_testkit::user_conformance::sample_user("acme", "émile");
        user.disabled = true;
        user.version = u64::MAX - 1;
        user.password_changed_at = NOW.to_offset(time::macros::offset!(-05:00));
        user
    }

    #[test]
    fn user_records_round_trip_exactly() {
        let user = user();
        let back = decode_user(&encode_user(&user)).unwrap();
        assert_eq!(back, user);
        assert_eq!(back.password_hash, user.password_hash);
        assert_eq!(back.password_changed_at.offset(), user.password_changed_at.offset());
    }

    #[test]
    fn damaged_user_records_are_errors_never_panics() {
        let bytes = encode_user(&user());
        for cut in 0..bytes.len() {
            assert!(decode_user(&bytes[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode_user(&longer), Err(DecodeError("trailing bytes")));
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                let _ = decode_user(&bad);
            }
        }
        assert_eq!(decode_user(&[2]), Err(DecodeError("unknown user record layout")));
    }
}
