//! Security headers on every portal response (forward auth's 200s, answers
//! to the proxy, excepted: see `edge.rs`): a CSP that allows no inline
//! script or style and no framing, `X-Frame-Options` for old browsers, a
//! `Referrer-Policy: same-origin` (return addresses must not leak to other
//! sites; `no-referrer` would also make Chromium send `Origin: null` on the
//! portal's own forms, failing the CSRF origin check where Fetch Metadata is
//! missing),
//! `nosniff`, and HSTS unless in plain-HTTP development mode (outside it the
//! session cookie is `Secure`, so the portal is only usable over HTTPS).

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

use super::PortalSettings;

/// The headers, built once.
#[derive(Debug)]
pub(super) struct SecurityHeaders(Vec<(HeaderName, HeaderValue)>);

impl SecurityHeaders {
    pub(super) fn new(settings: &PortalSettings) -> Self {
        // Chrome applies form-action to the redirect after a login too, so
        // the origins a login may return to must be listed.
        let mut form_action = String::from("'self'");
        for origin in settings.redirects.allowed_origins() {
            form_action.push(' ');
            form_action.push_str(origin);
        }
        let csp = format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        let mut headers = vec![
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ];
        // Origins were validated as URL origins, which are header-safe.
        if let Ok(csp) = HeaderValue::from_str(&csp) {
            headers.push((header::CONTENT_SECURITY_POLICY, csp));
        }
        if !settings.dev {
            headers.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            ));
        }
        Self(headers)
    }

    /// Sets the headers on a response's `map`, room made for them at once
    /// (the map would otherwise grow, and rehash, as they go in).
    pub(super) fn add_to(&self, map: &mut HeaderMap) {
        map.reserve(self.0.len());
        for (name, value) in &self.0 {
            map.insert(name.clone(), value.clone());
        }
    }
}
