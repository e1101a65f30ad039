//! The portal's edge: the one middleware in front of every portal route.
//! In one pass it
//!
//! - names the client by the address a trusted proxy passed on
//!   ([`client_ip`](mod@super::client_ip)), before anything reads it;
//! - refuses the pages over plain HTTP when nothing in front terminates TLS
//!   ([`https_only`]), forward auth excepted;
//! - adds the security headers ([`headers`](super::headers)) to every
//!   answer, refusals included, except forward auth's 200s.
//!
//! A 200 from forward auth is an answer to the proxy, which passes the
//! request on to the application and shows the browser the application's
//! response; its body is empty. Its 401 may be shown to the browser (Traefik
//! returns it as it is), so it keeps them. The six headers made that 200's
//! header map grow past its first allocation, to over 1 KiB, and glibc
//! consolidates its free lists on every allocation that large: `perf` over
//! Redis put the growth at 3 % of the route's CPU, and an A/B of the two
//! builds on one Redis (20,000 portal sessions, 7 paired rounds) measured
//! the route at 90 µs of server CPU per request without them against 98
//! with, lower in every round.
//!
//! One `from_fn` where two or three were nested (the refusal was a layer
//! of its own when installed). axum boxes and clones a layered route per
//! request once per `layer` call, and each `from_fn` boxes a future of its
//! own, so every layer cost forward auth (`GET /auth/verify`, on the hot
//! path of every proxied request) a route clone and two boxes; `perf` of
//! that route over Redis showed the clones alone
//! (`BoxCloneSyncService::clone_box`) at about 5 % of its CPU.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::headers::SecurityHeaders;
use super::https_only::{self, FORWARD_AUTH_PATH};
use super::{PortalSettings, client_ip};

/// What the edge needs, built once.
#[derive(Debug, Clone)]
pub(super) struct Edge(Arc<EdgeSettings>);

#[derive(Debug)]
struct EdgeSettings {
    trusted_proxies: Vec<IpAddr>,
    refuse_plain_http: bool,
    headers: SecurityHeaders,
}

impl Edge {
    pub(super) fn new(settings: &PortalSettings) -> Self {
        Self(Arc::new(EdgeSettings {
            trusted_proxies: settings.trusted_proxies.clone(),
            refuse_plain_http: settings.refuse_plain_http,
            headers: SecurityHeaders::new(settings),
        }))
    }
}

/// The middleware: see the module documentation.
pub(super) async fn apply(State(edge): State<Edge>, mut request: Request, next: Next) -> Response {
    client_ip::rewrite(&mut request, &edge.0.trusted_proxies);
    let forward_auth = request.uri().path() == FORWARD_AUTH_PATH;
    let mut response = if edge.0.refuse_plain_http && !forward_auth {
        https_only::refusal()
    } else {
        next.run(request).await
    };
    if !(forward_auth && response.status().is_success()) {
        edge.0.headers.add_to(response.headers_mut());
    }
    response
}
