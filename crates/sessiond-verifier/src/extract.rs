//! The axum extractor: `Authorization: Bearer <access token>` in, verified
//! [`AccessClaims`] out, and refusals answered per RFC 6750 with a
//! problem+json body.
//!
//! | request | status | `WWW-Authenticate` | `code` |
//! |---|---|---|---|
//! | no `Authorization`, or another scheme | 401 | `Bearer` | `missing_token` |
//! | several `Authorization` headers, or an empty bearer token | 401 | `Bearer error="invalid_token"` | `malformed_token` |
//! | a token that fails a check | 401 | `Bearer error="invalid_token"` | the [`VerifyError::code`] |
//! | the JWKS is unreachable and the key not cached | 503 | — | `jwks_unavailable` |
//!
//! A missing token carries no error code, as RFC 6750 §3.1 asks. An
//! unreachable JWKS is not the client's fault: 503 tells it to retry with
//! the same token rather than throw it away. Every refusal is
//! `Cache-Control: no-store`.

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::claims::AccessClaims;
use crate::error::VerifyError;
use crate::verifier::Verifier;

/// The claims of the request's verified bearer access token.
///
/// The [`Verifier`] comes from the router state through [`FromRef`], so the
/// state either is a `Verifier` or derives `FromRef` with one in a field.
/// As `Option<AccessToken>`, a request without a token yields `None`, while
/// a bad token is still refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken(pub AccessClaims);

/// Why [`AccessToken`] refused a request; answers as described in the
/// [module docs](self).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenRejection {
    /// No bearer token in the request.
    #[error("no bearer access token")]
    Missing,
    /// `Authorization` given twice, or `Bearer` with no token.
    #[error("malformed Authorization header")]
    BadHeader,
    /// The token failed verification.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
}

impl AccessTokenRejection {
    /// The stable `code` of the problem body.
    pub fn code(&self) -> &'static str {
        match self {
            AccessTokenRejection::Missing => "missing_token",
            AccessTokenRejection::BadHeader => "malformed_token",
            AccessTokenRejection::Invalid(error) => error.code(),
        }
    }

    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AccessTokenRejection::Invalid(error) if error.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl IntoResponse for AccessTokenRejection {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let body = serde_json::json!({
            "type": format!("urn:sessiond:problem:{code}"),
            "title": self.to_string(),
            "status": status.as_u16(),
            "code": code,
        });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let challenge = match &self {
            AccessTokenRejection::Missing => Some("Bearer"),
            AccessTokenRejection::Invalid(error) if error.is_transient() => None,
            _ => Some(r#"Bearer error="invalid_token""#),
        };
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// The bearer token of the request: `Ok(None)` when there is none.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AccessTokenRejection> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AccessTokenRejection::BadHeader);
    }
    let Ok(value) = value.to_str() else {
        return Err(AccessTokenRejection::BadHeader);
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        // "Bearer" alone is a bearer header without a token.
        return if value.eq_ignore_ascii_case("bearer") {
            Err(AccessTokenRejection::BadHeader)
        } else {
            Ok(None)
        };
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = token.trim_matches(' ');
    if token.is_empty() {
        return Err(AccessTokenRejection::BadHeader);
    }
    Ok(Some(token))
}

impl<S> FromRequestParts<S> for AccessToken
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AccessTokenRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?.ok_or(AccessTokenRejection::Missing)?;
        let verifier = Verifier::from_ref(state);
        Ok(AccessToken(verifier.verify_async(token).await?))
    }
}

impl<S> OptionalFromRequestParts<S> for AccessToken
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AccessTokenRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let Some(token) = bearer(&parts.headers)? else {
            return Ok(None);
        };
        let verifier = Verifier::from_ref(state);
        Ok(Some(AccessToken(verifier.verify_async(token).await?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn the_bearer_token_is_found() {
        assert!(matches!(bearer(&headers(&["Bearer abc"])), Ok(Some("abc"))));
        assert!(matches!(bearer(&headers(&["bearer  abc "])), Ok(Some("abc"))));
        assert!(matches!(bearer(&headers(&[])), Ok(None)));
        assert!(matches!(bearer(&headers(&["Basic dXNlcjpwdw=="])), Ok(None)));
        assert!(matches!(
            bearer(&headers(&["Bearer"])),
            Err(AccessTokenRejection::BadHeader)
        ));
        assert!(matches!(
            bearer(&headers(&["Bearer  "])),
            Err(AccessTokenRejection::BadHeader)
        ));
        assert!(matches!(
            bearer(&headers(&["Bearer a", "Bearer b"])),
            Err(AccessTokenRejection::BadHeader)
        ));
    }

    #[test]
    fn refusals_answer_per_rfc_6750() {
        let missing = AccessTokenRejection::Missing.into_response();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(missing.headers()[WWW_AUTHENTICATE], "Bearer");
        let expired = AccessTokenRejection::Invalid(VerifyError::Expired).into_response();
        assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(expired.headers()[WWW_AUTHENTICATE], r#"Bearer error="invalid_token""#);
        assert_eq!(expired.headers()[CONTENT_TYPE], "application/problem+json");
    }
}
