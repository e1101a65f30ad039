//! The portal's edge: the one middleware in front of every portal route.
//! In one pass it
//!
//! - names the client by the address a trusted proxy passed on
//!   ([`client_ip`](mod@super::client_ip)), before anything reads it;
//! - refuses the pages over plain HTTP when nothing in front terminates TLS
//!   ([`https_only`]), forward auth excepted;
//! - adds the security headers ([`headers`](super::headers)) to every
//!   answer, refusals included.
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
    let mut response = if edge.0.refuse_plain_http && request.uri().path() != FORWARD_AUTH_PATH {
        https_only::refusal()
    } else {
        next.run(request).await
    };
    edge.0.headers.add_to(response.headers_mut());
    response
}
