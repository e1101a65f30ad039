//! The claims of a sessiond access token, read only after its signature
//! verified, and the checks made on them.
//!
//! Required: `iss`, `aud`, `sub`, `sid`, `tid`, `aal`, `auth_time`, `iat`,
//! `exp`, `jti`; `nbf` is optional. A required claim that is absent is
//! [`VerifyError::MissingClaim`]; one of the wrong JSON type, an empty string,
//! an `aal` outside 1..=3, a fractional or out-of-range time, or a claim
//! given twice is [`VerifyError::Malformed`]. Other claims are ignored.
//!
//! Times are compared with a leeway `L` for clock skew between sessiond and
//! this host: expired when `now >= exp + L`; not yet valid when
//! `nbf > now + L` or `iat > now + L`.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::VerifyError;

/// The claims of a verified access token: who (`sub`, `tid`), which session
/// (`sid`), how strongly authenticated (`aal`, `auth_time`) and for how long.
///
/// Only [`Verifier`](crate::Verifier) makes these, so every instance comes
/// from a token whose signature, issuer, audience, lifetime and session
/// were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessClaims {
    /// `iss`: the issuer; equal to the configured one.
    pub iss: String,
    /// `aud`: the audiences, as the token listed them; one is the configured one.
    pub aud: Vec<String>,
    /// `sub`: the subject, the user the session belongs to.
    pub sub: String,
    /// `sid`: the session id (the public id, as in `GET /v1/sessions/{id}`).
    pub sid: String,
    /// `tid`: the tenant of the session.
    pub tid: String,
    /// `aal`: the authenticator assurance level, 1 to 3.
    pub aal: u8,
    /// `auth_time`: when the user last authenticated in this session.
    pub auth_time: OffsetDateTime,
    /// `iat`: when the token was issued.
    pub iat: OffsetDateTime,
    /// `exp`: when the token expires.
    pub exp: OffsetDateTime,
    /// `jti`: the token's unique id.
    pub jti: String,
}

/// What the claims must say.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub issuer: String,
    pub audience: String,
    /// Leeway in whole seconds.
    pub leeway: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Raw {
    iss: Option<String>,
    aud: Option<Audience>,
    sub: Option<String>,
    sid: Option<String>,
    tid: Option<String>,
    aal: Option<u8>,
    auth_time: Option<i64>,
    iat: Option<i64>,
    exp: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
}

fn required<T>(value: Option<T>, name: &'static str) -> Result<T, VerifyError> {
    value.ok_or(VerifyError::MissingClaim(name))
}

fn non_empty(value: Option<String>, name: &'static str) -> Result<String, VerifyError> {
    let value = required(value, name)?;
    if value.is_empty() {
        return Err(VerifyError::Malformed("a required string claim is empty"));
    }
    Ok(value)
}

fn instant(seconds: i64) -> Result<OffsetDateTime, VerifyError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| VerifyError::Malformed("a time claim is out of range"))
}

/// Reads the verified payload and checks it against `expected` at `now`
/// (Unix seconds).
pub(crate) fn check(payload: &[u8], expected: &Expected, now: i64) -> Result<AccessClaims, VerifyError> {
    let raw: Raw = serde_json::from_slice(payload)
        .map_err(|_| VerifyError::Malformed("claims are not a JSON object of the expected types"))?;
    let iss = required(raw.iss, "iss")?;
    let aud = match required(raw.aud, "aud")? {
        Audience::One(one) => vec![one],
        Audience::Many(many) => many,
    };
    let sub = non_empty(raw.sub, "sub")?;
    let sid = non_empty(raw.sid, "sid")?;
    let tid = non_empty(raw.tid, "tid")?;
    let aal = required(raw.aal, "aal")?;
    let auth_time = required(raw.auth_time, "auth_time")?;
    let iat = required(raw.iat, "iat")?;
    let exp = required(raw.exp, "exp")?;
    let jti = non_empty(raw.jti, "jti")?;
    if !(1..=3).contains(&aal) {
        return Err(VerifyError::Malformed("aal is not 1, 2 or 3"));
    }
    let claims = AccessClaims {
        auth_time: instant(auth_time)?,
        iat: instant(iat)?,
        exp: instant(exp)?,
        iss,
        aud,
        sub,
        sid,
        tid,
        aal,
        jti,
    };
    if raw.nbf.is_some_and(|nbf| instant(nbf).is_err()) {
        return Err(VerifyError::Malformed("a time claim is out of range"));
    }

    if claims.iss != expected.issuer {
        return Err(VerifyError::WrongIssuer);
    }
    if !claims.aud.contains(&expected.audience) {
        return Err(VerifyError::WrongAudience);
    }
    if now >= exp.saturating_add(expected.leeway) {
        return Err(VerifyError::Expired);
    }
    let horizon = now.saturating_add(expected.leeway);
    if iat > horizon || raw.nbf.is_some_and(|nbf| nbf > horizon) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn expected() -> Expected {
        Expected {
            issuer: "https://sessiond.test".into(),
            audience: "api".into(),
            leeway: 30,
        }
    }

    fn claims() -> Value {
        json!({
            "iss": "https://sessiond.test", "aud": "api", "sub": "user-42",
            "sid": "s1", "tid": "default", "aal": 2, "auth_time": NOW - 100,
            "iat": NOW - 10, "exp": NOW + 290, "jti": "j1"
        })
    }

    fn run(value: &Value) -> Result<AccessClaims, VerifyError> {
        check(value.to_string().as_bytes(), &expected(), NOW)
    }

    fn with(key: &str, value: Value) -> Value {
        let mut c = claims();
        c[key] = value;
        c
    }

    fn without(key: &str) -> Value {
        let mut c = claims();
        if let Some(map) = c.as_object_mut() {
            map.remove(key);
        }
        c
    }

    #[test]
    fn good_claims_are_returned_whole() -> Result<(), VerifyError> {
        let c = run(&claims())?;
        assert_eq!(c.aud, ["api"]);
        assert_eq!(
            (c.sub.as_str(), c.sid.as_str(), c.tid.as_str()),
            ("user-42", "s1", "default")
        );
        assert_eq!(c.aal, 2);
        assert_eq!(c.exp.unix_timestamp(), NOW + 290);
        assert_eq!(c.auth_time.unix_timestamp(), NOW - 100);
        Ok(())
    }

    #[test]
    fn every_required_claim_is_required() {
        for name in [
            "iss",
            "aud",
            "sub",
            "sid",
            "tid",
            "aal",
            "auth_time",
            "iat",
            "exp",
            "jti",
        ] {
            match run(&without(name)) {
                Err(VerifyError::MissingClaim(missing)) => assert_eq!(missing, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn ill_typed_claims_are_malformed() {
        let cases = [
            with("aal", json!(0)),
            with("aal", json!(4)),
            with("aal", json!(300)),
            with("aal", json!("2")),
            with("exp", json!(1.5)),
            with("exp", json!(i64::MAX)),
            with("nbf", json!("soon")),
            with("sub", json!(42)),
            with("sub", json!("")),
            with("aud", json!(["api", 7])),
            json!([1, 2]),
        ];
        for case in cases {
            assert!(matches!(run(&case), Err(VerifyError::Malformed(_))), "{case}");
        }
        let duplicated = br#"{"sub":"a","sub":"b"}"#;
        assert!(matches!(
            check(duplicated, &expected(), NOW),
            Err(VerifyError::Malformed(_))
        ));
    }

    #[test]
    fn issuer_and_audience_must_match() {
        assert!(matches!(
            run(&with("iss", json!("https://evil.test"))),
            Err(VerifyError::WrongIssuer)
        ));
        assert!(matches!(
            run(&with("aud", json!("other"))),
            Err(VerifyError::WrongAudience)
        ));
        assert!(matches!(run(&with("aud", json!([]))), Err(VerifyError::WrongAudience)));
        assert!(run(&with("aud", json!(["other", "api"]))).is_ok());
    }

    #[test]
    fn times_are_checked_with_the_leeway() {
        assert!(run(&with("exp", json!(NOW - 29))).is_ok());
        assert!(matches!(run(&with("exp", json!(NOW - 30))), Err(VerifyError::Expired)));
        assert!(run(&with("iat", json!(NOW + 30))).is_ok());
        assert!(matches!(
            run(&with("iat", json!(NOW + 31))),
            Err(VerifyError::NotYetValid)
        ));
        assert!(run(&with("nbf", json!(NOW + 30))).is_ok());
        assert!(matches!(
            run(&with("nbf", json!(NOW + 31))),
            Err(VerifyError::NotYetValid)
        ));
    }
}
