//! What the admin routes (`/v1/admin/…`) carry: API keys and, later,
//! users. Requests refuse unknown fields, as every request does.

use serde::{Deserialize, Serialize};
use sessiond_core::KeyRecord;
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
