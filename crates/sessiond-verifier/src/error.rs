//! Why a token was refused, and why a verifier could not be built.
//!
//! Every refusal is a [`VerifyError`] variant with a stable snake_case
//! [`code`](VerifyError::code), so callers branch on meaning and logs stay
//! greppable. No error ever carries the token or a claim value taken from
//! it: a rejected token is still a credential someone may be trying to use,
//! and errors end up in logs. The one piece of the token an error names is
//! the `kid` of an unknown key, cut to [`MAX_KID_IN_ERROR`] characters and
//! printed escaped.

use std::sync::Arc;

use crate::token::MAX_TOKEN_LEN;

/// How many characters of an unknown `kid` an [`VerifyError::UnknownKey`] keeps.
pub const MAX_KID_IN_ERROR: usize = 64;

/// Why [`Verifier::verify`](crate::Verifier::verify) refused a token.
///
/// The checks run in a fixed order (size, structure, header, key, signature,
/// claims, revocation), so a token with several faults reports the first.
/// Nothing taken from the payload is trusted before the signature verifies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Longer than 4 KiB; refused before any parsing.
    #[error("access token longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    /// Not three canonical base64url parts (no padding, no stray bits), a
    /// header or payload that is not a JSON object of the expected types, a
    /// `crit` header, or a claim out of range. The reason is a fixed text.
    #[error("malformed access token: {0}")]
    Malformed(&'static str),
    /// `alg` is not exactly `EdDSA` (`none`, `HS256`, `RS256`, `eddsa`, …).
    #[error("unsupported algorithm: only EdDSA access tokens are accepted")]
    UnsupportedAlgorithm,
    /// `typ` is missing or not `at+jwt` / `application/at+jwt` (RFC 9068).
    #[error("wrong token type: expected at+jwt")]
    WrongType,
    /// No key with this `kid` is published (or the header has no `kid`).
    #[error("no published signing key with kid {kid:?}")]
    UnknownKey {
        /// The token's `kid`, at most [`MAX_KID_IN_ERROR`] characters;
        /// `None` when the header had none.
        kid: Option<String>,
    },
    /// The signature does not verify under the key the `kid` names: a forged
    /// or tampered token.
    #[error("access token signature does not verify")]
    BadSignature,
    /// `exp` has passed, beyond the leeway.
    #[error("access token expired")]
    Expired,
    /// `nbf` or `iat` is in the future, beyond the leeway.
    #[error("access token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("access token from another issuer")]
    WrongIssuer,
    /// `aud` neither is nor contains the configured audience.
    #[error("access token for another audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("access token lacks the required claim {0:?}")]
    MissingClaim(&'static str),
    /// The session was revoked: the revocation feed named it.
    #[error("the session of this access token was revoked")]
    Revoked,
    /// The token names a key the verifier does not hold and the JWKS could
    /// not be fetched to look for it. Transient: the token may be fine.
    #[error("signing keys unavailable")]
    JwksUnavailable(#[source] Arc<JwksError>),
}

impl VerifyError {
    /// A stable snake_case code naming the variant, for problem bodies,
    /// metrics and logs. These strings never change meaning.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::TooLarge => "token_too_large",
            VerifyError::Malformed(_) => "malformed_token",
            VerifyError::UnsupportedAlgorithm => "unsupported_algorithm",
            VerifyError::WrongType => "wrong_token_type",
            VerifyError::UnknownKey { .. } => "unknown_key",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Expired => "token_expired",
            VerifyError::NotYetValid => "token_not_yet_valid",
            VerifyError::WrongIssuer => "wrong_issuer",
            VerifyError::WrongAudience => "wrong_audience",
            VerifyError::MissingClaim(_) => "missing_claim",
            VerifyError::Revoked => "session_revoked",
            VerifyError::JwksUnavailable(_) => "jwks_unavailable",
        }
    }

    /// Whether the failure is on the verifier's side rather than the
    /// token's: only [`VerifyError::JwksUnavailable`]. A client should
    /// retry with the same token instead of discarding it.
    pub fn is_transient(&self) -> bool {
        matches!(self, VerifyError::JwksUnavailable(_))
    }

    pub(crate) fn unknown_key(kid: Option<&str>) -> Self {
        VerifyError::UnknownKey {
            kid: kid.map(|k| k.chars().take(MAX_KID_IN_ERROR).collect()),
        }
    }
}

/// Why the JWKS could not be fetched or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The request failed: connection, TLS, timeout.
    #[error("JWKS request failed")]
    Http(#[source] reqwest::Error),
    /// The server answered with a status other than 200.
    #[error("JWKS request answered {0}")]
    Status(u16),
    /// The body exceeded the size limit (1 MiB).
    #[error("JWKS document too large")]
    TooLarge,
    /// The body is not a JWK Set.
    #[error("JWKS document is not a JWK Set")]
    Json(#[source] serde_json::Error),
}

/// Why a [`Verifier`](crate::Verifier) could not be built, or could not
/// start following revocations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The base URL does not parse, or is not `http` / `https`.
    #[error("invalid sessiond base URL")]
    InvalidBaseUrl,
    /// [`issuer`](crate::VerifierBuilder::issuer) was not set.
    #[error("the expected issuer must be set")]
    MissingIssuer,
    /// [`audience`](crate::VerifierBuilder::audience) was not set.
    #[error("the expected audience must be set")]
    MissingAudience,
    /// A leeway over five minutes was asked for.
    #[error("leeway may be at most 5 minutes")]
    LeewayTooLarge,
    /// Following revocations was asked for without an API key.
    #[error("following revocations needs an API key")]
    NoApiKey,
    /// The API key cannot be sent in an HTTP header.
    #[error("the API key is not a valid header value")]
    InvalidApiKey,
    /// Following revocations needs a tokio runtime to run in.
    #[error("following revocations needs a tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be built (TLS roots, …).
    #[error("HTTP client could not be built")]
    HttpClient(#[source] reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kid_is_cut_and_escaped() {
        let long = "k\"\n".repeat(100);
        let err = VerifyError::unknown_key(Some(&long));
        let VerifyError::UnknownKey { kid: Some(kid) } = &err else {
            panic!("wrong variant");
        };
        assert_eq!(kid.chars().count(), MAX_KID_IN_ERROR);
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn codes_are_distinct() {
        let errors = [
            VerifyError::TooLarge,
            VerifyError::Malformed("x"),
            VerifyError::UnsupportedAlgorithm,
            VerifyError::WrongType,
            VerifyError::unknown_key(None),
            VerifyError::BadSignature,
            VerifyError::Expired,
            VerifyError::NotYetValid,
            VerifyError::WrongIssuer,
            VerifyError::WrongAudience,
            VerifyError::MissingClaim("sub"),
            VerifyError::Revoked,
            VerifyError::JwksUnavailable(Arc::new(JwksError::TooLarge)),
        ];
        let mut codes: Vec<_> = errors.iter().map(VerifyError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), errors.len());
        assert!(errors.iter().filter(|e| e.is_transient()).count() == 1);
    }
}
