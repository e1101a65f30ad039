//! Access tokens: short-lived EdDSA JWTs in the RFC 9068 profile, minted for
//! a live session so other services can check it without a lookup.
//!
//! A token never outlives its session: `exp` is the earlier of now plus the
//! lifetime and the session's own expiry. Its level (`aal`) and
//! `auth_time` are the session's. Revoking the session cannot recall a
//! token already given out; the revocation feed tells verifiers instead.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::RandomnessError;
use crate::session::Session;
use crate::signing_keys::SigningKeys;

/// The JOSE `typ` of an access token (RFC 9068, section 2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Why no token could be minted.
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    /// No key signs yet (the store holds only published ones).
    #[error("no signing key is in force")]
    NoSigningKey,
    /// The session is already past its expiry.
    #[error("the session has expired")]
    SessionExpired,
    /// The session is anonymous: it proves nobody's identity, so no token
    /// says it does.
    #[error("an anonymous session gets no access token")]
    Anonymous,
    /// No randomness for the token id.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    /// Signing failed.
    #[error("cannot sign the access token")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// The claims of an access token.
#[derive(Debug, Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    sid: &'a str,
    tid: &'a str,
    aal: u8,
    auth_time: i64,
    iat: i64,
    exp: i64,
    jti: String,
}

/// A minted access token.
#[derive(Clone)]
pub struct AccessToken {
    /// The compact JWS. A bearer credential: never log it.
    pub token: String,
    /// When it expires (its `exp`).
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Mints access tokens with the shared signing keys.
#[derive(Debug, Clone)]
pub struct AccessTokenIssuer {
    keys: Arc<SigningKeys>,
    issuer: Arc<str>,
    audience: Arc<str>,
}

impl AccessTokenIssuer {
    /// Tokens naming `issuer` and `audience`, living as long as the keys'
    /// schedule says.
    pub fn new(keys: Arc<SigningKeys>, issuer: &str, audience: &str) -> Self {
        Self {
            keys,
            issuer: Arc::from(issuer),
            audience: Arc::from(audience),
        }
    }

    /// The signing keys.
    pub fn keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    /// How long a token lives at most.
    pub fn ttl(&self) -> Duration {
        self.keys.schedule().ttl()
    }

    /// A token for `session` (which the caller has just found live) at
    /// `now`.
    pub fn mint(&self, session: &Session, now: OffsetDateTime) -> Result<AccessToken, AccessTokenError> {
        if session.is_anonymous() {
            return Err(AccessTokenError::Anonymous);
        }
        let iat = now.unix_timestamp();
        let ttl = i64::try_from(self.ttl().as_secs()).unwrap_or(i64::MAX);
        let exp = iat.saturating_add(ttl).min(session.expires_at().unix_timestamp());
        if exp <= iat {
            return Err(AccessTokenError::SessionExpired);
        }
        let (kid, key) = self.keys.signer_at(iat).ok_or(AccessTokenError::NoSigningKey)?;
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(RandomnessError::new)?;
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            sub: session.subject.as_str(),
            sid: session.id.as_str(),
            tid: session.tenant.as_str(),
            aal: session.aal.get(),
            auth_time: session.authenticated_at.unix_timestamp(),
            iat,
            exp,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(kid.to_string());
        let token = jsonwebtoken::encode(&header, &claims, &key).map_err(AccessTokenError::Sign)?;
        let expires_at = OffsetDateTime::from_unix_timestamp(exp).unwrap_or(now);
        Ok(AccessToken { token, expires_at })
    }
}
