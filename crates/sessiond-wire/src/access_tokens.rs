//! The wire model of access tokens: refresh, minting, the JWK Set and the
//! revocation feed (API.md, "Access tokens, refresh and theft detection").

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ClientView, SessionView};

/// `POST /v1/sessions/refresh`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The session token (it doubles as the refresh token); rotated by the
    /// call.
    pub token: String,
    /// The end user's client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientView>,
}

/// `POST /v1/sessions/access-token`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AccessTokenRequest {
    /// The session token; not rotated.
    pub token: String,
}

/// A new access token.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessTokenResponse {
    /// An EdDSA JWT (RFC 9068 profile, `typ` `at+jwt`). A bearer
    /// credential: send it only to services that verify it.
    pub access_token: String,
    /// Its `exp`.
    #[serde(with = "time::serde::rfc3339")]
    pub access_token_expires_at: OffsetDateTime,
}

/// A rotated session token, a new access token and the session.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshResponse {
    /// The new session token; the old one dies after the rotation grace,
    /// and is treated as stolen if presented after it.
    pub token: String,
    /// An EdDSA JWT (RFC 9068 profile).
    pub access_token: String,
    /// Its `exp`.
    #[serde(with = "time::serde::rfc3339")]
    pub access_token_expires_at: OffsetDateTime,
    /// The session.
    pub session: SessionView,
}

/// `GET /.well-known/jwks.json`: the public keys whose tokens may be live,
/// and the next key before it signs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwksView {
    /// The keys.
    pub keys: Vec<JwkView>,
}

impl From<&sessiond_core::Jwks> for JwksView {
    fn from(set: &sessiond_core::Jwks) -> Self {
        Self {
            keys: set
                .keys
                .iter()
                .map(|k| JwkView {
                    kty: k.kty.to_owned(),
                    crv: k.crv.to_owned(),
                    x: k.x.clone(),
                    kid: k.kid.clone(),
                    use_: k.use_.to_owned(),
                    alg: k.alg.to_owned(),
                })
                .collect(),
        }
    }
}

/// An Ed25519 public key (RFC 8037).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwkView {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id: the key's RFC 7638 thumbprint.
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `EdDSA`.
    pub alg: String,
}

/// Query of `GET /v1/revocations`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationsParams {
    /// Only entries after this cursor (the `cursor` of an earlier answer,
    /// or the `id` of a streamed entry).
    pub after: Option<String>,
}

/// A revoked session whose access tokens may not have expired yet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationView {
    /// The session.
    pub session_id: String,
    /// Its tenant.
    pub tenant: String,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    /// Every access token of the session has expired by then: a verifier
    /// may forget the entry afterwards.
    #[serde(with = "time::serde::rfc3339")]
    pub access_tokens_valid_until: OffsetDateTime,
}

/// `GET /v1/revocations`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationsResponse {
    /// Oldest first.
    pub revoked: Vec<RevocationView>,
    /// Pass as `after` to get only later entries; `null` when there were
    /// none (pass the same `after` again).
    pub cursor: Option<String>,
}
