//! What the admin routes (`/v1/admin/…`) carry: API keys and portal
//! users. Requests refuse unknown fields, as every request does.

use serde::{Deserialize, Serialize};
use sessiond_core::{KeyRecord, UserRecord};
use time::OffsetDateTime;

/// `POST /v1/admin/keys`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// A label, at most 64 bytes, no control characters (default empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"))]
    pub name: Option<String>,
    /// `app` (default): the session calls; `admin`: also these routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^(app|admin)$"))]
    pub role: Option<String>,
    /// When the key stops working (RFC 3339, in the future).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<OffsetDateTime>,
}

/// The answer to `POST /v1/admin/keys`: the key, shown this once.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedKeyResponse {
    /// The key itself (`sdk_…`): stored nowhere, shown only here.
    pub key: String,
    /// Its public handle.
    pub id: String,
    /// `app` or `admin`.
    pub role: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working, or null.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A key as `GET /v1/admin/keys` lists it: never the key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyView {
    /// Its public handle.
    pub id: String,
    /// Its label.
    pub name: String,
    /// `app` or `admin`.
    pub role: String,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working, or null.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When a node last saw it used (written at most about once a minute
    /// per node), or null.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<&KeyRecord> for KeyView {
    fn from(key: &KeyRecord) -> Self {
        Self {
            id: key.id.to_string(),
            name: key.name.clone(),
            role: key.role.to_string(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// The answer to `GET /v1/admin/keys`: the tenant's keys, oldest first.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysResponse {
    /// The keys.
    pub keys: Vec<KeyView>,
}

/// `POST /v1/admin/users`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// The login name, also the subject of the user's sessions: 1 to 256
    /// bytes of UTF-8 without the characters a subject refuses (400
    /// `invalid_request`; `maxLength` would count characters, not bytes).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            pattern = "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200a\\u200e\\u200f\\u2028-\\u202f\\u205f\\u2066-\\u2069\\u3000\"',;<>\\\\]+$"
        )
    )]
    pub username: String,
    /// At least 8 characters, at most 1024 bytes (else 400 `weak_password`).
    #[cfg_attr(feature = "openapi", schema(min_length = 8))]
    pub password: String,
}

/// `PUT /v1/admin/users/{username}/password`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// At least 8 characters, at most 1024 bytes (else 400 `weak_password`).
    #[cfg_attr(feature = "openapi", schema(min_length = 8))]
    pub password: String,
}

/// A portal user as the admin routes show it: never the password hash.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// The login name.
    pub username: String,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// When the account was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the password was last set.
    #[serde(with = "time::serde::rfc3339")]
    pub password_changed_at: OffsetDateTime,
}

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        Self {
            username: user.name.to_string(),
            disabled: user.disabled,
            created_at: user.created_at,
            password_changed_at: user.password_changed_at,
        }
    }
}

/// The answer to `POST /v1/admin/users`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserResponse {
    /// The new user.
    pub user: UserView,
}

/// The answer to `GET /v1/admin/users`: the tenant's users by name.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsersResponse {
    /// The users, sorted by name.
    pub users: Vec<UserView>,
}
