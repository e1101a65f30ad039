//! `server.tls.client_ca_file`: `/v1` only over a connection whose client
//! certificate rustls verified.
//!
//! The TLS layer cannot require the certificate itself: the portal's pages
//! and the operations routes (probes, Prometheus) share the listener and
//! serve clients without one. So the handshake accepts clients without a
//! certificate (while refusing one from another CA), and this layer answers
//! `/v1` requests over such a connection with `401
//! client_certificate_required` before any API key is looked at: without
//! the certificate a stolen key is worth nothing, and the answer tells a
//! client without it nothing about keys.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::ApiError;
use super::budget::RouteClass;
use crate::listen::TlsClient;

/// Refuses `/v1` requests that did not come with a verified client
/// certificate (see the module comment); passes every other request.
pub(super) async fn require(request: Request, next: Next) -> Response {
    let verified = request
        .extensions()
        .get::<TlsClient>()
        .is_some_and(|tls| tls.certificate_verified);
    // The same line the budgets draw: `/v1/…` is the API.
    if !verified && RouteClass::of(request.uri().path()) == RouteClass::Api {
        return ApiError::ClientCertificateRequired.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    async fn status(path: &str, tls: Option<TlsClient>) -> (u16, String) {
        let app = Router::new()
            .route("/v1/sessions", get(|| async { "api" }))
            .route("/v1x", get(|| async { "not the api" }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(require));
        let mut request = Request::get(path).body(Body::empty()).unwrap();
        if let Some(tls) = tls {
            request.extensions_mut().insert(tls);
        }
        let response = app.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        (status, code)
    }

    #[tokio::test]
    async fn the_api_needs_a_verified_certificate_and_nothing_else_does() {
        let verified = Some(TlsClient {
            certificate_verified: true,
        });
        let without = Some(TlsClient {
            certificate_verified: false,
        });
        let refused = (401, "client_certificate_required".to_owned());
        assert_eq!(status("/v1/sessions", verified).await, (200, "api".to_owned()));
        assert_eq!(status("/v1/sessions", without).await, refused);
        // Plain HTTP carries no TlsClient at all: refused as well.
        assert_eq!(status("/v1/sessions", None).await, refused);
        assert_eq!(status("/v1x", without).await, (200, "not the api".to_owned()));
        assert_eq!(status("/healthz", without).await, (200, "ok".to_owned()));
    }
}
