//! The session layer's cross-site check of unsafe requests, against the
//! rule it is meant to implement.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use http::{HeaderValue, Request};
use sessiond_core::{MemoryStore, SessionManager};
use sessiond_http::SessionLayer;
use tower::ServiceExt as _;

/// A production layer (HTTPS, origin derived from `Host`) over a route
/// that answers 200, and a runtime to drive it.
fn app() -> Option<&'static (Router, tokio::runtime::Runtime)> {
    static APP: OnceLock<Option<(Router, tokio::runtime::Runtime)>> = OnceLock::new();
    APP.get_or_init(|| {
        let manager = SessionManager::builder(Arc::new(MemoryStore::new())).build().ok()?;
        let layer = SessionLayer::in_process(manager).build().ok()?;
        let router = Router::new().route("/", post(|| async { "ok" })).layer(layer);
        let runtime = tokio::runtime::Builder::new_current_thread().build().ok()?;
        Some((router, runtime))
    })
    .as_ref()
}

/// The `Sec-Fetch-Site` a request carries, chosen by the input's first byte.
const FETCH_SITES: [Option<&str>; 5] = [
    None,
    Some("same-origin"),
    Some("none"),
    Some("same-site"),
    Some("cross-site"),
];

/// Checks one unsafe request built from `data`: its first byte picks the
/// `Sec-Fetch-Site` header, the rest is `Origin`, a 0xFF byte, then
/// `Host` (either left out when it is not a valid header value). The layer
/// must refuse it as cross-site exactly when the rule says so. Panics (a
/// finding) otherwise.
pub fn origin_host(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fetch_site = FETCH_SITES[usize::from(selector) % FETCH_SITES.len()];
    let (origin, host) = match rest.iter().position(|&b| b == 0xFF) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let origin = HeaderValue::from_bytes(origin).ok();
    let host = host.and_then(|h| HeaderValue::from_bytes(h).ok());

    let mut request = Request::post("/");
    if let Some(site) = fetch_site {
        request = request.header("sec-fetch-site", site);
    }
    if let Some(origin) = &origin {
        request = request.header("origin", origin.clone());
    }
    if let Some(host) = &host {
        request = request.header("host", host.clone());
    }
    let Ok(request) = request.body(Body::empty()) else {
        return;
    };
    let expected = match fetch_site {
        Some(site) => site == "same-origin" || site == "none",
        None => match (&origin, &host) {
            (Some(origin), Some(host)) => {
                let (origin, host) = (origin.as_bytes(), host.as_bytes());
                // Browsers write the scheme in lower case; the host is
                // compared as DNS does, without regard to case.
                origin.len() == host.len() + "https://".len()
                    && origin.starts_with(b"https://")
                    && origin["https://".len()..].eq_ignore_ascii_case(host)
            }
            _ => false,
        },
    };

    let Some((router, runtime)) = app() else {
        return;
    };
    let answer = runtime.block_on(async {
        let response = router.clone().oneshot(request).await.ok()?;
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.ok()?;
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        Some((status, code))
    });
    let Some((status, code)) = answer else {
        panic!("no answer for {fetch_site:?} {origin:?} {host:?}");
    };
    let refused = code.as_deref() == Some("cross_site_request");
    assert_eq!(
        !refused, expected,
        "Sec-Fetch-Site {fetch_site:?}, Origin {origin:?}, Host {host:?}: answered {status} {code:?}"
    );
    if !refused {
        assert_eq!(status, 200, "{fetch_site:?} {origin:?} {host:?}: {code:?}");
    } else {
        assert_eq!(status, 403);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn case(site: u8, origin: &str, host: &str) -> Vec<u8> {
        [&[site][..], origin.as_bytes(), &[0xFF], host.as_bytes()].concat()
    }

    #[test]
    fn the_seeds_hold() {
        for (origin, host) in [
            ("https://shop.example", "shop.example"),
            ("https://SHOP.example", "shop.EXAMPLE"),
            ("HTTPS://shop.example", "shop.example"),
            ("http://shop.example", "shop.example"),
            ("https://shop.example:8443", "shop.example:8443"),
            ("https://shop.example:8443", "shop.example"),
            ("https://shop.example.", "shop.example"),
            ("https://shop.example", "shop.example, evil.example"),
            ("https://evil.example", "evil.example"),
            ("null", "shop.example"),
            ("", ""),
            ("https://", ""),
        ] {
            for site in 0..5 {
                origin_host(&case(site, origin, host));
            }
        }
        origin_host(b"\x00https://shop.example");
        origin_host(b"");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn near_misses(
            site in 0u8..5,
            scheme in prop::sample::select(vec!["https://", "http://", "HTTPS://", "https:/", ""]),
            origin_host_part in "[a-zA-Z0-9.:\\-\\[\\]]{0,20}",
            host in "[a-zA-Z0-9.:\\-\\[\\] ,]{0,20}",
            same in any::<bool>(),
        ) {
            let origin = if same { format!("{scheme}{host}") } else { format!("{scheme}{origin_host_part}") };
            origin_host(&case(site, &origin, &host));
        }

        #[test]
        fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..64)) {
            origin_host(&data);
        }
    }
}
