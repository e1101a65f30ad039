//! The record encoding: a Redis hash per session.
//!
//! `body` is the whole [`Session`] as JSON, written by Rust only (a body
//! written before sessions recorded their `origin` has none, and reads back
//! as an API session; one written before they kept `created_client` has
//! none either, and reads back with an empty one). The client at creation
//! lives in the body alone: no script writes it, so a touch (which writes
//! the `client` field) cannot change it. The fields
//! that scripts change without Rust (a touch, a revocation) live beside it
//! and win over the body when read back: `v` (version), `rev` (revocation
//! JSON), `seen` and `idle` (RFC 3339) and `client` (JSON). Scripts never
//! decode or re-encode JSON, so application data round-trips byte for byte
//! (Lua's cjson would round numbers to 14 digits).
//!
//! Numeric copies for the scripts' comparisons and ordering: `seen_us`,
//! `exp_us` (the earlier deadline), `abs_us`, `created_us`, in unix
//! microseconds. The manager truncates every time to microseconds, so these
//! compare exactly. `th`/`ph` (token hashes, `ph` empty when none), `sx`
//! (subject index key) and `id` let scripts find every index entry of a
//! record from the record alone.

use redis::Value;
use sessiond_core::{ClientInfo, Revocation, Session, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::corrupt;

/// Unix microseconds (floor), as text for the scripts.
pub(crate) fn micros(at: OffsetDateTime) -> String {
    (at.unix_timestamp_nanos().div_euclid(1000)).to_string()
}

fn rfc3339(at: OffsetDateTime) -> Result<String, StoreError> {
    at.format(&Rfc3339).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// The revocation as stored in `rev`.
pub(crate) fn revocation_json(revocation: &Revocation) -> Result<String, StoreError> {
    json(revocation)
}

/// The revocation field of `session`, or `""` when live.
pub(crate) fn revoked_field(session: &Session) -> Result<String, StoreError> {
    session.revoked.as_ref().map_or(Ok(String::new()), revocation_json)
}

/// The client as stored in `client`.
pub(crate) fn client_json(client: &ClientInfo) -> Result<String, StoreError> {
    json(client)
}

/// RFC 3339 text of a time, as stored in `seen` and `idle`.
pub(crate) fn time_text(at: OffsetDateTime) -> Result<String, StoreError> {
    rfc3339(at)
}

/// Every field but `rev`, as `HSET` pairs.
pub(crate) fn fields(session: &Session, subject_index: &str) -> Result<Vec<(&'static str, String)>, StoreError> {
    Ok(vec![
        ("body", json(session)?),
        ("v", session.version.to_string()),
        ("seen", rfc3339(session.last_seen_at)?),
        ("seen_us", micros(session.last_seen_at)),
        ("idle", rfc3339(session.idle_expires_at)?),
        ("client", json(&session.client)?),
        ("exp_us", micros(session.expires_at())),
        ("abs_us", micros(session.absolute_expires_at)),
        ("created_us", micros(session.created_at)),
        ("th", session.token_hash.to_hex()),
        (
            "ph",
            session.previous_token.map(|p| p.hash.to_hex()).unwrap_or_default(),
        ),
        ("sx", subject_index.to_owned()),
        ("id", session.id.as_str().to_owned()),
    ])
}

fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text<'a>(value: &'a Value, what: &'static str) -> Result<&'a str, StoreError> {
    bytes(value)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| corrupt(format!("field {what} is missing or not text")))
}

fn time_field(value: &Value, what: &'static str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text(value, what)?, &Rfc3339).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

/// A session from the `READ` fields of `common.lua` (`body`, `v`, `rev`,
/// `seen`, `idle`, `client`), or `None` when the reply is nil (no record).
pub(crate) fn decode(value: &Value) -> Result<Option<Session>, StoreError> {
    let fields = match value {
        Value::Nil => return Ok(None),
        Value::Array(fields) => fields,
        other => {
            return Err(corrupt(format!(
                "unexpected record reply: {}",
                crate::scripts::kind(other)
            )));
        }
    };
    let [body, version, revoked, seen, idle, client] = fields.as_slice() else {
        return Err(corrupt(format!("record reply has {} fields, not 6", fields.len())));
    };
    if matches!(body, Value::Nil) {
        return Ok(None);
    }
    let body = bytes(body).ok_or_else(|| corrupt("record body is not a string".into()))?;
    let mut session: Session = serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    session.version = text(version, "v")?
        .parse()
        .map_err(|e: std::num::ParseIntError| StoreError::Corrupt(Box::new(e)))?;
    session.revoked = match revoked {
        Value::Nil => None,
        other => Some(serde_json::from_str(text(other, "rev")?).map_err(|e| StoreError::Corrupt(Box::new(e)))?),
    };
    session.last_seen_at = time_field(seen, "seen")?;
    session.idle_expires_at = time_field(idle, "idle")?;
    session.client = serde_json::from_str(text(client, "client")?).map_err(|e| StoreError::Corrupt(Box::new(e)))?;
    Ok(Some(session))
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
            previous_token: None,
            created_at: at,
            last_seen_at: at,
            authenticated_at: at,
            idle_expires_at: at + time::Duration::minutes(30),
            absolute_expires_at: at + time::Duration::hours(12),
            remember_me: false,
            aal: Aal::AAL1,
            data: serde_json::Map::new(),
            created_client: ClientInfo {
                ip: Some("192.0.2.10".into()),
                user_agent: Some("Created/1".into()),
                sealed: None,
            },
            client: ClientInfo::default(),
            version: 4,
            revoked: None,
            origin: SessionOrigin::Portal,
        }
    }

    fn reply(fields: &[(&'static str, String)], rev: Option<String>) -> Value {
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Value::Nil, |(_, v)| Value::BulkString(v.clone().into_bytes()))
        };
        Value::Array(vec![
            get("body"),
            get("v"),
            rev.map_or(Value::Nil, |r| Value::BulkString(r.into_bytes())),
            get("seen"),
            get("idle"),
            get("client"),
        ])
    }

    #[test]
    fn fields_decode_back_to_the_same_session() {
        let session = sample();
        let fields = fields(&session, "ix").unwrap_or_else(|e| panic!("{e}"));
        let back = decode(&reply(&fields, None)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, Some(session));
    }

    #[test]
    fn bodies_written_before_the_origin_read_back_as_api_sessions() {
        let session = sample();
        let mut fields = fields(&session, "ix").unwrap_or_else(|e| panic!("{e}"));
        for (name, value) in &mut fields {
            if *name == "body" {
                let mut body: serde_json::Value = serde_json::from_str(value).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    body.as_object_mut().and_then(|b| b.remove("origin")),
                    Some("portal".into())
                );
                *value = body.to_string();
            }
        }
        let back = decode(&reply(&fields, None))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("absent"));
        assert_eq!(back.origin, SessionOrigin::Api);
    }

    /// The body as JSON, changed by `edit`.
    fn edit_body(
        fields: &mut [(&'static str, String)],
        edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
    ) {
        for (name, value) in fields.iter_mut() {
            if *name == "body" {
                let mut body: serde_json::Value = serde_json::from_str(value).unwrap_or_else(|e| panic!("{e}"));
                edit(body.as_object_mut().unwrap_or_else(|| panic!("body is an object")));
                *value = body.to_string();
            }
        }
    }

    #[test]
    fn the_created_client_is_the_bodys_and_the_client_field_does_not_touch_it() {
        let session = sample();
        let mut fields = fields(&session, "ix").unwrap_or_else(|e| panic!("{e}"));
        // What a touch leaves: a new `client` field, the body as it was.
        let touched = ClientInfo {
            ip: Some("198.51.100.3".into()),
            user_agent: Some("Touched/2".into()),
            sealed: None,
        };
        for (name, value) in &mut fields {
            if *name == "client" {
                *value = client_json(&touched).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        let back = decode(&reply(&fields, None))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("absent"));
        assert_eq!(
            (&back.client, &back.created_client),
            (&touched, &session.created_client)
        );

        // A body written before `created_client` was kept.
        edit_body(&mut fields, |body| {
            assert_eq!(
                body.remove("created_client"),
                Some(serde_json::json!({"ip": "192.0.2.10", "user_agent": "Created/1"}))
            );
        });
        let back = decode(&reply(&fields, None))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("absent"));
        assert_eq!(back.created_client, ClientInfo::default());
        assert_eq!(back.client, touched);
    }

    #[test]
    fn side_fields_win_over_the_body() {
        let session = sample();
        let mut fields = fields(&session, "ix").unwrap_or_else(|e| panic!("{e}"));
        for (name, value) in &mut fields {
            if *name == "v" {
                *value = "9".into();
            }
        }
        let how = Revocation {
            at: session.created_at,
            reason: sessiond_core::RevokeReason::Logout,
        };
        let rev = revocation_json(&how).unwrap_or_else(|e| panic!("{e}"));
        let back = decode(&reply(&fields, Some(rev)))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("absent"));
        assert_eq!((back.version, back.revoked), (9, Some(how)));
    }

    #[test]
    fn damaged_records_are_corrupt_not_absent() {
        let bad = Value::Array(vec![Value::BulkString(b"{".to_vec()); 6]);
        assert!(matches!(decode(&bad), Err(StoreError::Corrupt(_))));
        let short = Value::Array(vec![Value::Nil; 2]);
        assert!(matches!(decode(&short), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode(&Value::Nil), Ok(None)));
    }

    #[test]
    fn micros_floor_before_the_epoch_too() {
        assert_eq!(micros(datetime!(1970-01-01 00:00:00.000001500 UTC)), "1");
        assert_eq!(micros(datetime!(1969-12-31 23:59:59.9999995 UTC)), "-1");
    }
}
