//! Request extractors that fail with our own errors: JSON bodies, the
//! API key, path and query parameters.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use sessiond_core::{KeyRole, SessionManager};

use crate::key_ring::KeyHolder;

use super::AppState;
use super::error::ApiError;

/// A JSON body: `application/json` or 415, within the body limit or 413,
/// well-formed with the right fields and types or 400.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidRequest("could not read the request body".to_owned())
            }
        })?;
        // serde's derives read a JSON array as a struct (its fields in
        // order); every body of this API is an object, so nothing else is.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::InvalidRequest("the body must be a JSON object".to_owned()));
        }
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::InvalidRequest(describe_json_error(&e)))
    }
}

/// A description of a JSON error that never echoes the input back: serde's
/// messages for wrong types quote the offending value, which could be a
/// token sent in the wrong field.
fn describe_json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let safe = message.starts_with("missing field") || message.starts_with("unknown field");
    match e.classify() {
        serde_json::error::Category::Data if safe => message,
        serde_json::error::Category::Data => {
            format!(
                "a field has the wrong type or value (line {}, column {})",
                e.line(),
                e.column()
            )
        }
        serde_json::error::Category::Eof => "the JSON body ends too early".to_owned(),
        _ => format!("malformed JSON (line {}, column {})", e.line(), e.column()),
    }
}

/// The holder of the request's API key (`Authorization: Bearer <key>`).
fn key_holder(parts: &Parts, state: &AppState) -> Result<KeyHolder, ApiError> {
    let presented = presented_key(&parts.headers).ok_or(ApiError::Unauthorized)?;
    state.keys.authenticate(presented).ok_or(ApiError::Unauthorized)
}

/// The API key of `Authorization: Bearer <key>`, if the header has that
/// form (whether the key is valid is [`KeyRing::authenticate`]'s to say).
///
/// [`KeyRing::authenticate`]: crate::key_ring::KeyRing::authenticate
pub(super) fn presented_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .map(str::trim)
}

/// The caller, authenticated by its API key: a manager acting in the key's
/// tenant.
#[derive(Debug, Clone)]
pub struct Caller(pub SessionManager);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let holder = key_holder(parts, state)?;
        Ok(Caller(state.manager.for_tenant(holder.tenant)))
    }
}

/// The caller of an admin route: an `admin` key's holder. An `app` key is
/// refused with 403 `forbidden`, a missing or unknown one with 401.
#[derive(Debug, Clone)]
pub struct Admin(pub KeyHolder);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let holder = key_holder(parts, state)?;
        if holder.role != KeyRole::Admin {
            return Err(ApiError::Forbidden);
        }
        Ok(Admin(holder))
    }
}

/// The credentials of `Authorization: Bearer <key>`. The scheme is
/// case-insensitive and followed by one or more spaces (RFC 9110 11.4).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(credentials)
}

/// A path parameter; a bad one is a 400 (an id that is merely unknown is a
/// 404, decided by the handler).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e: PathRejection| ApiError::InvalidRequest(e.body_text()))
    }
}

/// Query parameters; unknown or malformed ones are a 400.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| ApiError::InvalidRequest(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let table = [
            ("Bearer k", Some("k")),
            ("bearer k", Some("k")),
            ("BEARER k", Some("k")),
            ("Bearer  k", Some(" k")),
            ("Bearer", None),
            ("Bearerk", None),
            ("Basic k", None),
            ("k", None),
        ];
        for (value, expected) in table {
            assert_eq!(bearer_credentials(value), expected, "{value}");
        }
    }
}
