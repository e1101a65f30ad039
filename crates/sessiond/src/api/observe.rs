//! Per-request bookkeeping in one hand-written middleware, [`Guard`]: in one
//! pass, with one boxed future, where six tower layers used to nest (each a
//! boxed, cloned service and most a boxed future of their own):
//!
//! - `Authorization` and `Cookie` marked sensitive (kept out of logs);
//! - the request id (`x-request-id`): kept if the caller sent one, else a
//!   random per-process prefix and a counter, 16 hex digits; set on the
//!   request and on the response;
//! - a `request` span (request id, method, path) and the debug events
//!   "started processing request" / "finished processing request";
//! - the header size limit (431 `headers_too_large`);
//! - the in-flight budget of the route's class, and on the public routes the
//!   client address's share of it ([`super::budget`]), with load shedding
//!   (503 `overloaded` or 429 `too_many_requests` at once);
//! - the body-read deadline (408 `body_timeout`, [`super::body_deadline`]);
//! - the request timeout (503 `timeout`);
//! - the request metrics (`sessiond_http_requests_total` and
//!   `sessiond_http_request_duration_seconds` by route, method and status).
//!
//! Metric handles are registered once per (route, method, status) and kept
//! by each wrapped route: a registry lookup by name and labels, with the
//! label strings it allocates, costs more per request than the session
//! lookup itself.
//!
//! Why hand-written: `scripts/load` (embedded store, 100,000 sessions, 64
//! connections, no touch writes, 3 interleaved rounds, 2026-11-29) measured
//! verify through the six tower / tower-http layers this replaced
//! (`SetSensitiveRequestHeaders`, `SetRequestId`/`PropagateRequestId`,
//! `Trace`, a `from_fn` metrics middleware, `GlobalConcurrencyLimit` with
//! `LoadShed` and `Timeout`) at 24,199 req/s against 27,861 and 30,159 for
//! two runs of this build (−13 % to −20 %), and 50 µs of server CPU per
//! request against 38–41 µs.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use metrics::{Counter, Histogram};
use tower::{Layer, Service};
use tracing::Instrument as _;

use super::body_deadline::DeadlineBody;
use super::budget::{Budgets, Refusal, RouteClass};
use super::error::ApiError;
use super::layers::Limits;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers never logged.
const SENSITIVE: [HeaderName; 2] = [header::AUTHORIZATION, header::COOKIE];

/// What every wrapped route shares.
#[derive(Debug)]
struct Settings {
    header_limit: usize,
    timeout: Duration,
    body_timeout: Duration,
    budgets: Budgets,
    trusted_proxies: Vec<IpAddr>,
    id_prefix: [u8; 8],
    next_id: AtomicU32,
}

/// The layer: see the module documentation.
#[derive(Debug, Clone)]
pub struct Guard {
    settings: Arc<Settings>,
}

impl Guard {
    /// The guard for `limits` (shared by every route it wraps).
    pub fn new(limits: &Limits) -> Self {
        let mut random = [0u8; 4];
        // Without randomness ids are still unique within the process.
        let _ = getrandom::fill(&mut random);
        Self {
            settings: Arc::new(Settings {
                header_limit: limits.header_bytes,
                timeout: limits.timeout,
                body_timeout: limits.body_timeout,
                budgets: Budgets::new(limits.budgets),
                trusted_proxies: limits.trusted_proxies.clone(),
                id_prefix: hex8(u32::from_le_bytes(random)),
                next_id: AtomicU32::new(0),
            }),
        }
    }
}

impl<S> Layer<S> for Guard {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            inner,
            settings: self.settings.clone(),
            handles: Arc::default(),
        }
    }
}

/// One (route, method, status) and its metric handles.
struct Handle {
    route: Box<str>,
    method: &'static str,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
}

/// The metric handles of one wrapped route: a few (method, status) pairs, so
/// a short list beats a map.
type Handles = Arc<RwLock<Vec<Handle>>>;

/// A route wrapped in [`Guard`].
#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    settings: Arc<Settings>,
    handles: Handles,
}

impl<S> std::fmt::Debug for GuardService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardService").finish_non_exhaustive()
    }
}

/// Eight lower-case hex digits of `n`.
fn hex8(n: u32) -> [u8; 8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, digit) in out.iter_mut().enumerate() {
        let shift = 28 - 4 * i;
        *digit = HEX[((n >> shift) & 0xf) as usize];
    }
    out
}

impl Settings {
    fn make_request_id(&self) -> Option<HeaderValue> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.id_prefix);
        id[8..].copy_from_slice(&hex8(n));
        HeaderValue::from_bytes(&id).ok()
    }
}

/// The method as a metric label: the standard ones by name, any other as
/// `other`, so a client cannot mint new time series (and memory) by
/// inventing methods.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

fn record(handles: &Handles, route: &str, method: &Method, status: StatusCode, seconds: f64) {
    let method = method_label(method);
    if let Ok(list) = handles.read()
        && let Some(handle) = list
            .iter()
            .find(|h| h.status == status && h.method == method && *h.route == *route)
    {
        handle.requests.increment(1);
        handle.duration.record(seconds);
        return;
    }
    let (requests, duration) = register(handles, route, method, status);
    requests.increment(1);
    duration.record(seconds);
}

#[cold]
fn register(handles: &Handles, route: &str, method: &'static str, status: StatusCode) -> (Counter, Histogram) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.as_str().to_owned()),
    ];
    let requests = metrics::counter!("sessiond_http_requests_total", &labels);
    let labels = [labels[0].clone(), labels[2].clone()];
    let duration = metrics::histogram!("sessiond_http_request_duration_seconds", &labels);
    let mut list = handles.write().unwrap_or_else(|p| p.into_inner());
    list.push(Handle {
        route: route.into(),
        method,
        status,
        requests: requests.clone(),
        duration: duration.clone(),
    });
    (requests, duration)
}

impl<S> Service<Request> for GuardService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        // The clone is not ready; the one polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        let handles = self.handles.clone();

        let headers = req.headers_mut();
        for name in SENSITIVE {
            if let header::Entry::Occupied(mut entry) = headers.entry(name) {
                for value in entry.iter_mut() {
                    value.set_sensitive(true);
                }
            }
        }
        let request_id = match headers.get(REQUEST_ID) {
            Some(id) => Some(id.clone()),
            None => settings.make_request_id().inspect(|id| {
                headers.insert(REQUEST_ID, id.clone());
            }),
        };
        let size: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let class = RouteClass::of(req.uri().path());
        // The public routes count requests per client address: the one the
        // portal throttles by (behind a trusted proxy, the one it names).
        let client = match class {
            RouteClass::Public => req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| {
                    sessiond_portal::client_ip(peer.ip(), req.headers(), &settings.trusted_proxies)
                }),
            RouteClass::Api | RouteClass::Ops => None,
        };
        // The path may hold a session id (public) but never a token.
        let span = tracing::info_span!(
            "request",
            request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            method = %method,
            path = %req.uri().path(),
        );

        let future = async move {
            tracing::debug!("started processing request");
            let mut response = if size > settings.header_limit {
                ApiError::HeadersTooLarge.into_response()
            } else {
                match settings.budgets.admit(class, client) {
                    Err(Refusal::Overloaded) => ApiError::Overloaded.into_response(),
                    Err(Refusal::TooManyFromClient) => ApiError::TooManyRequests.into_response(),
                    Ok(admission) => {
                        // A body still to come must arrive before its
                        // deadline; one that came with the head (or none)
                        // is left as it is.
                        let expired = (!req.body().is_end_stream()).then(|| {
                            let deadline = tokio::time::Instant::from_std(started) + settings.body_timeout;
                            let body = std::mem::replace(req.body_mut(), Body::empty());
                            let (body, expired) = DeadlineBody::new(body, deadline);
                            *req.body_mut() = Body::new(body);
                            expired
                        });
                        let answered = tokio::time::timeout(settings.timeout, inner.call(req)).await;
                        drop(admission);
                        match answered {
                            _ if expired.is_some_and(|e| e.happened()) => {
                                let mut response = ApiError::BodyTimeout.into_response();
                                // The rest of the body is unread: the
                                // connection cannot carry another request.
                                response
                                    .headers_mut()
                                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                                response
                            }
                            Ok(Ok(response)) => response,
                            Ok(Err(never)) => match never {},
                            Err(_) => ApiError::Timeout.into_response(),
                        }
                    }
                }
            };
            if let Some(id) = request_id
                && !response.headers().contains_key(REQUEST_ID)
            {
                response.headers_mut().insert(REQUEST_ID, id);
            }
            let elapsed = started.elapsed();
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            record(&handles, route, &method, response.status(), elapsed.as_secs_f64());
            tracing::debug!(
                latency = format_args!("{} ms", elapsed.as_millis()),
                status = response.status().as_u16(),
                "finished processing request"
            );
            Ok(response)
        };
        Box::pin(future.instrument(span))
    }
}
