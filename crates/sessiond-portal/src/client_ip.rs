//! The client's IP behind a trusted reverse proxy. The session layer and
//! login throttling read the connection's peer address; behind nginx that
//! is nginx. When the peer is a configured proxy, the address it appended
//! to `X-Forwarded-For` (the last entry: earlier ones are whatever the
//! client sent) replaces it. From any other peer the header is ignored, so
//! a client cannot choose the IP it is throttled or listed under.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone)]
pub(super) struct TrustedProxies(Arc<Vec<IpAddr>>);

impl TrustedProxies {
    pub(super) fn new(proxies: Vec<IpAddr>) -> Self {
        Self(Arc::new(proxies))
    }
}

pub(super) async fn apply(State(trusted): State<TrustedProxies>, mut request: Request, next: Next) -> Response {
    if !trusted.0.is_empty()
        && let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied()
        && trusted.0.contains(&peer.ip())
        && let Some(client) = forwarded_client(request.headers())
    {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
    }
    next.run(request).await
}

/// The last address of the last `X-Forwarded-For` header.
fn forwarded_client(headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    last.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

/// The client's IP as the layers left it.
pub(super) fn of(request: &axum::http::request::Parts) -> Option<IpAddr> {
    request
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn the_proxy_appended_address_is_the_last_one() {
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_client(&h), None);
        h.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.9"));
        assert_eq!(forwarded_client(&h), Some("203.0.113.9".parse().unwrap()));
        h.append("x-forwarded-for", HeaderValue::from_static("2001:db8::1"));
        assert_eq!(forwarded_client(&h), Some("2001:db8::1".parse().unwrap()));
        h.insert("x-forwarded-for", HeaderValue::from_static("not an ip"));
        assert_eq!(forwarded_client(&h), None);
    }
}
