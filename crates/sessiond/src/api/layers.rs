//! The layers around every route, outermost first: sensitive headers kept
//! out of logs, request ids, tracing, metrics and the header limit, load
//! shedding and timeouts, the body limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use super::error::ApiError;
use super::observe::observe;

/// Request limits from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body in bytes.
    pub body_bytes: usize,
    /// Largest total header size in bytes.
    pub header_bytes: usize,
    /// Longest time a request may take.
    pub timeout: Duration,
    /// Most requests in flight.
    pub concurrency: usize,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `Cache-Control: no-store` on every response of the layer's routes.
pub fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Request ids: a random per-process prefix and a counter, 16 hex digits.
/// Unique across restarts without a system call per request.
#[derive(Clone)]
struct CountingRequestId {
    prefix: u32,
    next: Arc<AtomicU32>,
}

impl CountingRequestId {
    fn new() -> Self {
        let mut bytes = [0u8; 4];
        // Without randomness ids are still unique within the process.
        let _ = getrandom::fill(&mut bytes);
        Self {
            prefix: u32::from_le_bytes(bytes),
            next: Arc::new(AtomicU32::new(0)),
        }
    }
}

impl MakeRequestId for CountingRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{:08x}{n:08x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// Wraps the router in every layer.
pub fn apply(router: Router, limits: &Limits) -> Router {
    let header_limit = limits.header_bytes;
    let shedding = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|error: tower::BoxError| async move {
            if error.is::<tower::load_shed::error::Overloaded>() {
                ApiError::Overloaded
            } else if error.is::<tower::timeout::error::Elapsed>() {
                ApiError::Timeout
            } else {
                tracing::error!(%error, "middleware failed");
                ApiError::Internal
            }
        }))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(limits.concurrency))
        .timeout(limits.timeout);
    router
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(shedding)
        .layer(middleware::from_fn(move |req: Request, next: Next| observe(req, next, header_limit)))
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, CountingRequestId::new()))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &axum::http::Request<_>| {
                            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                            // The path may hold a session id (public) but never a token.
                            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                        })
                        // Failures are logged once, where they are mapped to a response.
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
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
            concurrency,
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
}
