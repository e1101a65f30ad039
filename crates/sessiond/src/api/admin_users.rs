//! `/v1/admin/users`: an admin key's holder manages the login portal's
//! users of its tenant on a running server, on any store — the same
//! [`Accounts`] operations as the portal's pages and `sessiond users …`.
//! Every change that must end sessions ends them (through the manager, so
//! events record it).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use sessiond_core::Subject;
use sessiond_portal::{AccountError, Accounts, PasswordError, user_name};
use sessiond_wire::{CreateUserRequest, SetPasswordRequest, UserResponse, UserView, UsersResponse};

use super::AppState;
use super::error::ApiError;
use super::extract::{Admin, ApiJson, ApiPath};

const USER_PATTERN: &str =
    "User name: 1 to 256 bytes of UTF-8 without the characters a subject refuses, percent-encoded";

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::InvalidName(_) => ApiError::InvalidRequest(error.to_string()),
            AccountError::NotFound => ApiError::NotFound("no such user in your tenant"),
            AccountError::Exists => ApiError::UserExists,
            AccountError::Password(PasswordError::Unacceptable) => ApiError::WeakPassword,
            AccountError::Password(PasswordError::Busy) | AccountError::Conflict => ApiError::Overloaded,
            AccountError::Users(e) if e.is_unavailable() => ApiError::StoreUnavailable,
            AccountError::Sessions(e) => ApiError::Core(e),
            other => {
                tracing::error!(error = %other, "a user operation failed");
                ApiError::Internal
            }
        }
    }
}

/// The accounts of the caller's tenant.
fn accounts(state: &AppState, caller: &Admin) -> Accounts {
    let manager = state.manager.for_tenant(caller.0.tenant.clone());
    Accounts::new(state.admin.users.clone(), manager, state.admin.passwords.clone())
}

fn name(raw: &str) -> Result<Subject, ApiError> {
    Ok(user_name(raw)?)
}

/// Adds a user who can sign in at the portal.
#[utoipa::path(post, path = "/v1/admin/users", operation_id = "create_user", tag = "admin",
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Added", body = UserResponse),
        (status = 400, response = super::doc::UserRefused),
        (status = 409, response = super::doc::UserExists),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Admin,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserResponse>), ApiError> {
    let name = name(&request.username)?;
    let user = accounts(&state, &caller).add(&name, request.password).await?;
    tracing::info!(user = %user.name, tenant = %user.tenant, by = %caller.0.id, "user added");
    Ok((
        StatusCode::CREATED,
        Json(UserResponse {
            user: UserView::from(&user),
        }),
    ))
}

/// The tenant's users, sorted by name, disabled ones included.
#[utoipa::path(get, path = "/v1/admin/users", operation_id = "list_users", tag = "admin",
    responses((status = 200, description = "Sorted by name", body = UsersResponse)))]
pub async fn list_users(State(state): State<AppState>, caller: Admin) -> Result<Json<UsersResponse>, ApiError> {
    let users = accounts(&state, &caller).list().await?;
    Ok(Json(UsersResponse {
        users: users.iter().map(UserView::from).collect(),
    }))
}

/// Sets a user's password and ends every session of theirs.
#[utoipa::path(put, path = "/v1/admin/users/{username}/password", operation_id = "set_user_password", tag = "admin",
    params(("username" = String, Path, min_length = 1, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$", description = USER_PATTERN)),
    request_body = SetPasswordRequest,
    responses(
        (status = 204, description = "Set; the user's sessions ended"),
        (status = 400, response = super::doc::UserRefused),
        (status = 404, response = super::doc::UserNotFound),
    ))]
pub async fn set_password(
    State(state): State<AppState>,
    caller: Admin,
    ApiPath(raw): ApiPath<String>,
    ApiJson(request): ApiJson<SetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let name = name(&raw)?;
    let ended = accounts(&state, &caller)
        .change_password(&name, request.password, None)
        .await?;
    tracing::info!(user = %name, ended, by = %caller.0.id, "password set");
    Ok(StatusCode::NO_CONTENT)
}

/// Stops a user from signing in and ends every session of theirs.
#[utoipa::path(post, path = "/v1/admin/users/{username}/disable", operation_id = "disable_user", tag = "admin",
    params(("username" = String, Path, min_length = 1, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$", description = USER_PATTERN)),
    responses(
        (status = 204, description = "Disabled; the user's sessions ended"),
        (status = 404, response = super::doc::UserNotFound),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Admin,
    ApiPath(raw): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let name = name(&raw)?;
    let ended = accounts(&state, &caller).set_disabled(&name, true).await?;
    tracing::info!(user = %name, ended, by = %caller.0.id, "user disabled");
    Ok(StatusCode::NO_CONTENT)
}

/// Lets a disabled user sign in again.
#[utoipa::path(post, path = "/v1/admin/users/{username}/enable", operation_id = "enable_user", tag = "admin",
    params(("username" = String, Path, min_length = 1, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$", description = USER_PATTERN)),
    responses(
        (status = 204, description = "Enabled"),
        (status = 404, response = super::doc::UserNotFound),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Admin,
    ApiPath(raw): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let name = name(&raw)?;
    accounts(&state, &caller).set_disabled(&name, false).await?;
    tracing::info!(user = %name, by = %caller.0.id, "user enabled");
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a user and ends every session of theirs.
#[utoipa::path(delete, path = "/v1/admin/users/{username}", operation_id = "delete_user", tag = "admin",
    params(("username" = String, Path, min_length = 1, pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$", description = USER_PATTERN)),
    responses(
        (status = 204, description = "Deleted; the user's sessions ended"),
        (status = 404, response = super::doc::UserNotFound),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: Admin,
    ApiPath(raw): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let name = name(&raw)?;
    let ended = accounts(&state, &caller).delete(&name).await?;
    tracing::info!(user = %name, ended, by = %caller.0.id, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}
