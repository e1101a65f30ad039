//! The layers around every route, outermost first: [`Guard`] (sensitive
//! headers kept out of logs, request ids, tracing, metrics and the header
//! limit, load shedding and timeouts), then the body limit.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

pub use super::budget::BudgetSizes;
use super::observe::Guard;

/// Request limits from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body in bytes.
    pub body_bytes: usize,
    /// Largest total header size in bytes.
    pub header_bytes: usize,
    /// Longest time a request may take.
    pub timeout: Duration,
    /// Longest time the body of a request may take to arrive.
    pub body_timeout: Duration,
    /// Requests in flight per route class and client.
    pub budgets: BudgetSizes,
    /// Proxies whose `X-Forwarded-For` names the client (the portal's).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `/v1` requires a verified client certificate
    /// (`server.tls.client_ca_file`).
    pub client_certificates: bool,
}

/// `Cache-Control: no-store` on every response of the layer's routes.
pub fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Wraps every route in [`Guard`] (sensitive headers, request id, trace
/// span, header limit, load shedding, timeout, metrics) and the body limit,
/// in one `Router::layer` call: axum boxes and clones each layered route per
/// request, once per call.
pub fn apply(router: Router, limits: &Limits) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(Guard::new(limits))
            .layer(DefaultBodyLimit::max(limits.body_bytes)),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    use axum::routing::get;
    use tokio::sync::Notify;
    use tower::ServiceExt as _;

    use super::*;

    fn limits(concurrency: usize, timeout: Duration) -> Limits {
        Limits {
            body_bytes: 1024,
            header_bytes: 1024,
            timeout,
            body_timeout: timeout,
            budgets: BudgetSizes {
                api: concurrency,
                public: concurrency,
                public_per_client: concurrency,
            },
            trusted_proxies: Vec::new(),
            client_certificates: false,
        }
    }

    async fn code(response: Response) -> (u16, String) {
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        (status, body["code"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test]
    async fn requests_beyond_the_concurrency_limit_are_shed_at_once() {
        let entered = Arc::new(Notify::new());
        let release = Arc::new(Notify::new());
        let (e, r) = (entered.clone(), release.clone());
        let router = Router::new().route(
            "/slow",
            get(move || {
                let (e, r) = (e.clone(), r.clone());
                async move {
                    e.notify_one();
                    r.notified().await;
                    "done"
                }
            }),
        );
        let app = apply(router, &limits(1, Duration::from_secs(60)));
        let first = tokio::spawn(app.clone().oneshot(Request::get("/slow").body(Body::empty()).unwrap()));
        entered.notified().await;
        let second = app
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(code(second).await, (503, "overloaded".to_owned()));
        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_over_the_timeout_gets_503_timeout() {
        let router = Router::new().route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "late"
            }),
        );
        let app = apply(router, &limits(8, Duration::from_secs(2)));
        let response = app
            .oneshot(Request::get("/stuck").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(code(response).await, (503, "timeout".to_owned()));
    }

    #[tokio::test]
    async fn every_response_carries_a_request_id() {
        let app = apply(
            Router::new().route("/", get(|| async { "hi" })),
            &limits(8, Duration::from_secs(5)),
        );
        let response = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let id = response.headers().get("x-request-id").unwrap().to_str().unwrap();
        assert_eq!(id.len(), 16);
    }

    #[tokio::test]
    async fn a_callers_request_id_is_kept_and_oversized_headers_get_431() {
        let app = apply(
            Router::new().route("/", get(|| async { "hi" })),
            &limits(8, Duration::from_secs(5)),
        );
        let response = app
            .clone()
            .oneshot(
                Request::get("/")
                    .header("x-request-id", "caller-1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "caller-1");
        let big = "x".repeat(2048);
        let response = app
            .oneshot(Request::get("/").header("x-big", big).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"].len(), 16);
        assert_eq!(code(response).await, (431, "headers_too_large".to_owned()));
    }
}
