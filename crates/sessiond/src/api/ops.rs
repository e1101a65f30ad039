//! Operations endpoints (no API key): liveness, readiness, metrics, OpenAPI.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", security(),
    responses((status = 200, description = "Up", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The store answers; 503 otherwise.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", security(),
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, description = "Store unreachable", body = String, content_type = "text/plain"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.manager.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "operations", security(),
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "operations", security(),
    responses((status = 200, description = "This document, OpenAPI 3.1", body = Object, content_type = "application/json")))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    let mut response = state.openapi.as_ref().clone().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
