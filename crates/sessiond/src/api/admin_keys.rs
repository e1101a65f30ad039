//! `/v1/admin/keys`: an admin key's holder makes, lists and deletes the API
//! keys of its tenant, on whichever node it calls; every node sees the
//! change within a second (see `key_ring.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sessiond_core::{KeyId, KeyRole, is_valid_key_name};
use sessiond_wire::{CreateKeyRequest, CreatedKeyResponse, KeyView, KeysResponse};

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiJson, ApiPath};
use crate::keys::{KeyError, KeySpec, create};

fn key_failure(error: impl Into<KeyError>) -> ApiError {
    match error.into() {
        KeyError::Store(e) if e.is_unavailable() => ApiError::StoreUnavailable,
        error => {
            tracing::error!(%error, "an API key operation failed");
            ApiError::Internal
        }
    }
}

/// Makes a key of the caller's tenant; the key is in this answer only.
#[utoipa::path(post, path = "/v1/admin/keys", operation_id = "create_key", tag = "admin",
    request_body = CreateKeyRequest,
    responses((status = 201, description = "Made; `key` is shown only here", body = CreatedKeyResponse)))]
pub async fn create_key(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, Json<CreatedKeyResponse>), ApiError> {
    let name = request.name.unwrap_or_default();
    if !is_valid_key_name(&name) {
        return Err(ApiError::InvalidRequest(
            "name must be at most 64 bytes without control characters".into(),
        ));
    }
    // A server on an embedded store deletes keys of this name at every start.
    if name == crate::local_admin::KEY_NAME {
        return Err(ApiError::InvalidRequest(format!(
            "the name {} is reserved for the command line's keys",
            crate::local_admin::KEY_NAME
        )));
    }
    let role = match request.role.as_deref() {
        None => KeyRole::App,
        Some(role) => role
            .parse::<KeyRole>()
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))?,
    };
    let now = state.keys.clock().now();
    if request.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::InvalidRequest("expires_at must be in the future".into()));
    }
    let spec = KeySpec {
        tenant: caller.tenant,
        role,
        name,
        expires_at: request.expires_at,
    };
    let (record, key) = create(state.keys.store().as_ref(), spec, now)
        .await
        .map_err(key_failure)?;
    // This node knows the key at once; the others at their next poll.
    if let Err(error) = state.keys.reload().await {
        tracing::warn!(%error, "could not reload API keys after making one");
    }
    tracing::info!(key = %record.id, tenant = %record.tenant, role = %record.role, by = %caller.id, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyResponse {
            key,
            id: record.id.to_string(),
            role: record.role.to_string(),
            created_at: record.created_at,
            expires_at: record.expires_at,
        }),
    ))
}

/// The caller's tenant's keys, oldest first, expired ones included; never
/// the keys themselves.
#[utoipa::path(get, path = "/v1/admin/keys", operation_id = "list_keys", tag = "admin",
    responses((status = 200, description = "Oldest first", body = KeysResponse)))]
pub async fn list_keys(State(state): State<AppState>, Admin(caller): Admin) -> Result<Json<KeysResponse>, ApiError> {
    let keys = state.keys.store().list_keys().await.map_err(key_failure)?;
    let keys = keys
        .iter()
        .filter(|k| k.tenant == caller.tenant)
        .map(KeyView::from)
        .collect();
    Ok(Json(KeysResponse { keys }))
}

/// Deletes a key of the caller's tenant: it stops working on every node
/// within a second.
#[utoipa::path(delete, path = "/v1/admin/keys/{id}", operation_id = "delete_key", tag = "admin",
    params(("id" = String, Path, description = "The key's id", pattern = "^[A-Za-z0-9_-]{1,32}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, response = super::doc::KeyNotFound),
    ))]
pub async fn delete_key(
    State(state): State<AppState>,
    Admin(caller): Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    const MISSING: &str = "no such key in your tenant";
    let id = KeyId::new(id).map_err(|_| ApiError::NotFound(MISSING))?;
    let store = state.keys.store();
    // Another tenant's key is as unknown as a missing one.
    let keys = store.list_keys().await.map_err(key_failure)?;
    if !keys.iter().any(|k| k.id == id && k.tenant == caller.tenant) {
        return Err(ApiError::NotFound(MISSING));
    }
    if !store.delete_key(&id).await.map_err(key_failure)? {
        return Err(ApiError::NotFound(MISSING));
    }
    if let Err(error) = state.keys.reload().await {
        tracing::warn!(%error, "could not reload API keys after deleting one");
    }
    tracing::info!(key = %id, tenant = %caller.tenant, by = %caller.id, "API key deleted");
    Ok(StatusCode::NO_CONTENT)
}
