//! Per-request bookkeeping in one middleware: the header size limit and the
//! request metrics (`sessiond_http_requests_total` and
//! `sessiond_http_request_duration_seconds` by route, method and status).
//!
//! Metric handles are registered once per (route, method, status) and kept
//! here: a registry lookup by name and labels, with the label strings it
//! allocates, cost more per request than the session lookup itself.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};

use super::error::ApiError;

/// Handles by route, then by (method, status); a route has few of those,
/// so a short list beats a second map.
type Handles = HashMap<Box<str>, Vec<(Method, StatusCode, Counter, Histogram)>>;

fn handles() -> &'static RwLock<Handles> {
    static HANDLES: OnceLock<RwLock<Handles>> = OnceLock::new();
    HANDLES.get_or_init(Default::default)
}

fn record(route: &str, method: &Method, status: StatusCode, seconds: f64) {
    let found = handles().read().ok().and_then(|map| {
        map.get(route)?
            .iter()
            .find(|(m, s, _, _)| m == method && *s == status)
            .map(|(_, _, c, h)| (c.clone(), h.clone()))
    });
    let (counter, histogram) = match found {
        Some(pair) => pair,
        None => register(route, method, status),
    };
    counter.increment(1);
    histogram.record(seconds);
}

#[cold]
fn register(route: &str, method: &Method, status: StatusCode) -> (Counter, Histogram) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.as_str().to_owned()),
        ("status", status.as_str().to_owned()),
    ];
    let counter = metrics::counter!("sessiond_http_requests_total", &labels);
    let labels = [labels[0].clone(), labels[2].clone()];
    let histogram = metrics::histogram!("sessiond_http_request_duration_seconds", &labels);
    let mut map = handles().write().unwrap_or_else(|p| p.into_inner());
    map.entry(route.into())
        .or_default()
        .push((method.clone(), status, counter.clone(), histogram.clone()));
    (counter, histogram)
}

/// Refuses oversized headers (431) and records the request's metrics.
pub async fn observe(req: Request, next: Next, header_limit: usize) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let response = if size > header_limit {
        ApiError::HeadersTooLarge.into_response()
    } else {
        next.run(req).await
    };
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    record(route, &method, response.status(), started.elapsed().as_secs_f64());
    response
}
