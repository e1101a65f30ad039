//! `GET /v1/admin/webhooks/failures`: the recent failed deliveries of the
//! caller's tenant's events, newest first, from the records every node
//! shares (see `crate::webhooks::state`). Nothing crosses tenants, and no
//! secret is shown: an endpoint is named by its URL without user,
//! password or query.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;

use super::AppState;
use super::error::ApiError;
use super::extract::Admin;

/// One failed delivery attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookFailureView {
    /// The endpoint, without credentials or query.
    pub url: String,
    /// The event (also its `webhook-id`).
    pub event_id: String,
    /// The event's kind (empty when the event was pruned from the log).
    pub kind: String,
    /// When the attempt failed.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Which attempt (1 for the first).
    pub attempt: u32,
    /// What went wrong: `HTTP <status>`, `timeout`, `connection failed`, ...
    pub error: String,
    /// True when no attempt follows (24 hours of retries, or the event was
    /// pruned from the log first).
    pub gave_up: bool,
}

/// The answer of `GET /v1/admin/webhooks/failures`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookFailuresResponse {
    /// Newest first; at most the last 30 per endpoint.
    pub failures: Vec<WebhookFailureView>,
}

/// The recent failed webhook deliveries of the caller's tenant.
#[utoipa::path(get, path = "/v1/admin/webhooks/failures", operation_id = "list_webhook_failures", tag = "admin",
    responses((status = 200, description = "Newest first", body = WebhookFailuresResponse)))]
pub async fn failures(
    State(state): State<AppState>,
    Admin(caller): Admin,
) -> Result<Json<WebhookFailuresResponse>, ApiError> {
    let listed = state.webhooks.failures(&caller.tenant).await.map_err(|error| {
        if error.is_unavailable() {
            ApiError::StoreUnavailable
        } else {
            tracing::error!(%error, "cannot read the webhook failures");
            ApiError::Internal
        }
    })?;
    let failures = listed
        .into_iter()
        .map(|listed| {
            let f = listed.failure;
            WebhookFailureView {
                url: listed.url,
                event_id: f.event_id,
                kind: f.kind,
                at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(f.at) * 1_000_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                attempt: f.attempt,
                error: f.error,
                gave_up: f.gave_up,
            }
        })
        .collect();
    Ok(Json(WebhookFailuresResponse { failures }))
}
