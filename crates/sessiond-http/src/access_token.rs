//! The access-token cookie (opt-in, [`SessionLayerBuilder::access_tokens`]):
//! a second cookie holding a short-lived signed access token (a JWT, API.md
//! "Access tokens") for the session, so other services on the same host can
//! check the user without calling sessiond.
//!
//! After the handler, a request that ends with a live session (verified,
//! created or rotated) leaves the browser holding a current token. One is
//! minted when the cookie is missing or unusable, names another session,
//! when the session was just created or rotated (its level and
//! authentication time may have changed), or when less than half of the
//! token's lifetime is left. The decision reads `iat`, `exp` and `sid` from
//! the cookie's payload without checking its signature: the worst a forged
//! cookie can do is hold a token every verifier refuses, and a lifetime
//! over [`MAX_ACCESS_TOKEN_TTL`] is not believed. When the session ends
//! (logout, or a cookie naming no session) the cookie is deleted.
//!
//! A mint that fails is logged and the response goes out without the new
//! token: the session cookie still works, and the next request tries again.
//! The token itself is never logged.
//!
//! [`SessionLayerBuilder::access_tokens`]: crate::SessionLayerBuilder::access_tokens

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue};
use sessiond_core::{AccessToken, AccessTokenIssuer, Clock, MAX_ACCESS_TOKEN_TTL, SessionId, Token};
use time::OffsetDateTime;

use crate::backend::{SessionBackend, SessionInfo};
use crate::cookie::{CookieCodec, CookieLookup};

/// The access-token cookie's default name: host-only, `Secure`, `Path=/`.
pub const DEFAULT_ACCESS_TOKEN_COOKIE_NAME: &str = "__Host-sessiond_at";

/// The access-token cookie's name in development mode.
pub const DEV_ACCESS_TOKEN_COOKIE_NAME: &str = "sessiond_at";

/// Turns on the access-token cookie; see
/// [`SessionLayerBuilder::access_tokens`](crate::SessionLayerBuilder::access_tokens).
///
/// The cookie is `HttpOnly`, `Secure` (outside development mode), host-only
/// with `Path=/` whatever the session cookie's `Domain` and `Path` (a
/// bearer token goes no further than it must), has the session cookie's
/// `SameSite`, and a `Max-Age` of the token's remaining life.
#[derive(Debug, Clone)]
pub struct AccessTokenCookie {
    pub(crate) issuer: Option<AccessTokenIssuer>,
    pub(crate) name: Option<String>,
}

impl AccessTokenCookie {
    /// Tokens minted in process by `issuer`, for
    /// [`SessionLayer::in_process`](crate::SessionLayer::in_process).
    /// The same as `AccessTokenCookie::from(issuer)`.
    pub fn issued_by(issuer: AccessTokenIssuer) -> Self {
        Self {
            issuer: Some(issuer),
            name: None,
        }
    }

    /// Tokens the backend mints ([`SessionBackend::mint_access_token`]):
    /// for remote mode, where sessiond signs them, or a backend of your own.
    pub fn from_backend() -> Self {
        Self {
            issuer: None,
            name: None,
        }
    }

    /// Cookie name (default `__Host-sessiond_at`, or `sessiond_at` in dev
    /// mode). It must differ from the session cookie's.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl From<AccessTokenIssuer> for AccessTokenCookie {
    fn from(issuer: AccessTokenIssuer) -> Self {
        Self::issued_by(issuer)
    }
}

/// The built access-token cookie of a layer.
#[derive(Debug)]
pub(crate) struct AccessTokens {
    cookie: CookieCodec,
    /// What "now" is when deciding on renewal and `Max-Age`: the manager's
    /// clock in process, the system's otherwise.
    clock: Arc<dyn Clock>,
}

/// What the request's access-token cookie said, read before the handler.
#[derive(Debug)]
pub(crate) enum Presented {
    Absent,
    /// Duplicated, malformed or not a JWT we can read: as good as missing,
    /// but there is something to delete.
    Unusable,
    Token(Claims),
}

/// The claims the renewal decision needs.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Claims {
    sid: String,
    iat: i64,
    exp: i64,
}

/// How the request ended for the session, as far as the token cares.
pub(crate) enum Outcome<'a> {
    /// A live session; `fresh` right after a create or rotate.
    Live {
        token: &'a Token,
        info: &'a SessionInfo,
        fresh: bool,
    },
    /// Logged out: the cookie goes whatever the request carried.
    Ended,
    /// The session cookie was checked and names no session.
    NoSession,
    /// The session was never looked at (or could not be): leave it alone.
    Unknown,
}

impl AccessTokens {
    pub(crate) fn new(cookie: CookieCodec, clock: Arc<dyn Clock>) -> Self {
        Self { cookie, clock }
    }

    /// Reads the request's access-token cookie.
    pub(crate) fn presented(&self, headers: &HeaderMap) -> Presented {
        match self.cookie.lookup(headers) {
            CookieLookup::Absent => Presented::Absent,
            CookieLookup::Found(value) => claims(value).map_or(Presented::Unusable, Presented::Token),
            CookieLookup::Duplicate | CookieLookup::TooLarge | CookieLookup::Malformed => Presented::Unusable,
        }
    }

    /// The `Set-Cookie` that leaves the browser with a current token (or
    /// none, once the session is over), if anything needs to change.
    pub(crate) async fn settle(
        &self,
        backend: &dyn SessionBackend,
        outcome: Outcome<'_>,
        presented: &Presented,
    ) -> Option<HeaderValue> {
        match outcome {
            Outcome::Unknown => None,
            Outcome::Ended => Some(self.cookie.deletion()),
            Outcome::NoSession => (!matches!(presented, Presented::Absent)).then(|| self.cookie.deletion()),
            Outcome::Live { token, info, fresh } => {
                let now = self.clock.now();
                if !fresh && is_current(presented, info.id(), now) {
                    return None;
                }
                match backend.mint_access_token(token, info).await {
                    Ok(Some(minted)) => self.set_cookie(&minted, now),
                    // Ended between its check and the mint.
                    Ok(None) => Some(self.cookie.deletion()),
                    Err(error) => {
                        tracing::warn!(%error, "cannot mint an access token; the response keeps the session cookie only");
                        None
                    }
                }
            }
        }
    }

    fn set_cookie(&self, minted: &AccessToken, now: OffsetDateTime) -> Option<HeaderValue> {
        let left = (minted.expires_at - now).whole_seconds();
        let Some(max_age) = u64::try_from(left).ok().filter(|&s| s > 0) else {
            tracing::warn!(expires_at = %minted.expires_at, "a minted access token has already expired; not set");
            return None;
        };
        let cookie = self
            .cookie
            .set_secret(&minted.token, Some(Duration::from_secs(max_age)));
        if cookie.is_none() {
            tracing::warn!("a minted access token is not a valid cookie value; not set");
        }
        cookie
    }
}

/// The payload of a compact JWS, if it holds the claims we need. No
/// signature check: see the module comment.
fn claims(jwt: &str) -> Option<Claims> {
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&json).ok()
}

/// Whether the presented token is for session `sid` and has at least half
/// of its (believable) lifetime left at `now`.
fn is_current(presented: &Presented, sid: &SessionId, now: OffsetDateTime) -> bool {
    let Presented::Token(claims) = presented else {
        return false;
    };
    let lifetime = claims.exp.saturating_sub(claims.iat);
    let max = i64::try_from(MAX_ACCESS_TOKEN_TTL.as_secs()).unwrap_or(i64::MAX);
    let left = claims.exp.saturating_sub(now.unix_timestamp());
    claims.sid == sid.as_str() && (1..=max).contains(&lifetime) && left.saturating_mul(2) >= lifetime
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn only_a_three_part_jwt_with_the_claims_is_read() {
        let good = jwt(r#"{"sid":"s","iat":100,"exp":400,"sub":"alice"}"#);
        assert!(matches!(claims(&good), Some(Claims { iat: 100, exp: 400, .. })));
        for bad in [
            String::new(),
            "a.b".to_owned(),
            format!("{good}.x"),
            jwt(r#"{"sid":"s","exp":400}"#),
            jwt(r#"{"sid":"s","iat":"100","exp":400}"#),
            "e30.!!!.c2ln".to_owned(),
            jwt("not json"),
        ] {
            assert!(claims(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn current_means_same_session_and_at_least_half_the_lifetime_left() {
        let sid = SessionId::generate().unwrap();
        let token = |sid: &str, iat: i64, exp: i64| {
            Presented::Token(Claims {
                sid: sid.to_owned(),
                iat,
                exp,
            })
        };
        let at = |secs| OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let mine = token(sid.as_str(), 1000, 1300);
        assert!(is_current(&mine, &sid, at(1000)));
        assert!(is_current(&mine, &sid, at(1150)));
        assert!(!is_current(&mine, &sid, at(1151)));
        assert!(!is_current(&mine, &sid, at(1400)));
        assert!(!is_current(&token("other", 1000, 1300), &sid, at(1000)));
        // A lifetime no issuer gives is not believed.
        assert!(!is_current(&token(sid.as_str(), 0, 1_000_000), &sid, at(1000)));
        assert!(!is_current(&token(sid.as_str(), 1300, 1300), &sid, at(1000)));
        assert!(!is_current(&Presented::Unusable, &sid, at(1000)));
        assert!(!is_current(&Presented::Absent, &sid, at(1000)));
    }
}
