//! The client's IP behind a trusted reverse proxy. The session layer and
//! login throttling read the connection's peer address; behind nginx that
//! is nginx. When the peer is a configured proxy, the address it appended
//! to `X-Forwarded-For` (the last entry: earlier ones are whatever the
//! client sent) replaces it. From any other peer the header is ignored, so
//! a client cannot choose the IP it is throttled or listed under.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};

/// Makes the request's peer address (`ConnectInfo`) the client's: the one
/// a `trusted` proxy passed on, when the peer is such a proxy.
pub(super) fn rewrite(request: &mut Request, trusted: &[IpAddr]) {
    if !trusted.is_empty()
        && let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied()
    {
        let client = client_ip(peer.ip(), request.headers(), trusted);
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
    }
}

/// The client's address: `peer`, or, when `peer` is one of the `trusted`
/// proxies, the address that proxy appended to `X-Forwarded-For`. The
/// server's per-client request budget counts by the same address the
/// portal throttles by.
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if trusted.contains(&peer)
        && let Some(client) = forwarded_client(headers)
    {
        client
    } else {
        peer
    }
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

    #[test]
    fn only_a_trusted_peer_names_the_client() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert_eq!(client_ip(proxy, &h, &[proxy]), "203.0.113.9".parse::<IpAddr>().unwrap());
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(client_ip(other, &h, &[proxy]), other);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
