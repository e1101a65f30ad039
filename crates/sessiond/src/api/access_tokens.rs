//! Access tokens: `/v1/sessions/refresh`, `/v1/sessions/access-token` and
//! the public `/.well-known/jwks.json`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sessiond_core::{Rotation, Session};
use sessiond_wire::{AccessTokenRequest, AccessTokenResponse, JwksView, RefreshRequest, RefreshResponse, SessionView};

use super::AppState;
use super::doc::InvalidToken;
use super::error::ApiError;
use super::extract::{ApiJson, Caller};

/// Mints a token for `session`, which the manager has just found live.
fn mint(state: &AppState, session: &Session) -> Result<sessiond_core::AccessToken, ApiError> {
    let now = state.manager.now();
    Ok(state.tokens.mint(session, now)?)
}

/// Rotates the session token and mints an access token: the session token
/// doubles as the refresh token.
#[utoipa::path(post, path = "/v1/sessions/refresh", operation_id = "refresh_session", tag = "access tokens",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new session token (the old one dies after the rotation grace) and a new access token",
            body = RefreshResponse),
        (status = 401, response = InvalidToken),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    Caller(manager): Caller,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<RefreshResponse>, ApiError> {
    // Client binding applies as on verify; a changed client is written
    // with the rotation.
    let client = req.client.map(|c| c.into_client()).transpose()?;
    let (token, session) = manager
        .rotate_from(&req.token, Rotation::Plain, client.as_ref())
        .await?;
    let signals = manager.signals(&session, client.as_ref());
    let access = mint(&state, &session)?;
    Ok(Json(RefreshResponse {
        token: token.expose_secret().to_owned(),
        access_token: access.token,
        access_token_expires_at: access.expires_at,
        session: SessionView::with_signals(&session, signals),
    }))
}

/// Mints an access token for a live session without rotating its token.
#[utoipa::path(post, path = "/v1/sessions/access-token", operation_id = "mint_access_token", tag = "access tokens",
    request_body = AccessTokenRequest,
    responses(
        (status = 200, description = "A new access token", body = AccessTokenResponse),
        (status = 401, response = InvalidToken),
    ))]
pub async fn access_token(
    State(state): State<AppState>,
    Caller(manager): Caller,
    ApiJson(req): ApiJson<AccessTokenRequest>,
) -> Result<Json<AccessTokenResponse>, ApiError> {
    let session = manager.verify(&req.token, None).await?;
    let access = mint(&state, &session)?;
    Ok(Json(AccessTokenResponse {
        access_token: access.token,
        access_token_expires_at: access.expires_at,
    }))
}

/// The public keys that verify access tokens: every key whose tokens may
/// still be live, and the next one before it signs.
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "jwks", tag = "access tokens", security(),
    responses((status = 200, description = "JWK Set (RFC 7517) of Ed25519 keys; cacheable for the max-age given",
        body = JwksView, content_type = "application/json",
        headers(("Cache-Control" = String, description = "public, max-age inside a new key's lead time")))))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.tokens.keys();
    let set = JwksView::from(&keys.jwks());
    let max_age = keys.schedule().jwks_max_age().as_secs();
    let mut response = Json(set).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}
