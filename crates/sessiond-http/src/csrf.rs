//! CSRF defence, in two independent parts, both required for unsafe methods:
//!
//! 1. **Where the request came from.** `Sec-Fetch-Site` when the browser
//!    sends it (`cross-site` is refused; `same-site` only if configured);
//!    otherwise `Origin` against the allowed origins. An unsafe request with
//!    neither is refused unless configured, because a browser always sends
//!    one of them on a cross-origin POST and old clients are the exception.
//! 2. **A synchronizer token** bound to the session: HMAC-SHA256 under a
//!    server secret of the session token's hash. It needs no storage, is
//!    useless for another session, and changes whenever the token rotates.
//!    Compared in constant time.
//!
//! Routes that other sites must be able to POST to (webhooks, a SAML
//! assertion consumer) can be exempted from both by path
//! ([`SessionLayerBuilder::csrf_exempt`](crate::SessionLayerBuilder::csrf_exempt));
//! an exempt unsafe request is then served as if it carried no session
//! cookie, so a forged one carries no session's authority either.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Method, header, request};
use sessiond_core::Token;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::HttpError;

/// Header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Form field a `<form>` sends the CSRF token in.
pub const CSRF_FIELD: &str = "csrf_token";

/// Length of an encoded CSRF token (32 bytes of base64url, no padding).
pub const CSRF_TOKEN_LEN: usize = 43;

/// Decodes a presented CSRF token; `None` unless it is exactly the
/// canonical encoding of 32 bytes. Panic-free on any input.
pub fn parse_csrf_token(input: &str) -> Option<[u8; 32]> {
    if input.len() != CSRF_TOKEN_LEN {
        return None;
    }
    let mut bytes = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(input, &mut bytes) {
        Ok(32) => Some(bytes),
        _ => None,
    }
}

/// Finds the `csrf_token` field of an `application/x-www-form-urlencoded`
/// body. Two such fields are no token (strict, like cookies). The token's
/// alphabet needs no percent-encoding, so the value is taken as written; an
/// encoded one simply fails to parse.
pub fn find_form_token(body: &[u8]) -> Option<&str> {
    let mut found = None;
    for pair in body.split(|&b| b == b'&') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if &pair[..eq] != CSRF_FIELD.as_bytes() {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(&pair[eq + 1..]);
    }
    found.and_then(|v| std::str::from_utf8(v).ok())
}

/// Methods that must not change state and so need no CSRF check.
pub(crate) fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Paths whose unsafe requests skip both CSRF checks: exact paths, and
/// prefixes written `/prefix/*`. Compared with the path as sent (still
/// percent-encoded, dot segments kept), which is what axum routes on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exemptions {
    exact: Vec<String>,
    /// Each ends with `/`: `/webhooks/*` is kept as `/webhooks/`.
    prefixes: Vec<String>,
}

impl Exemptions {
    /// Adds `pattern`, or returns why it is refused.
    pub(crate) fn add(&mut self, pattern: &str) -> Result<(), &'static str> {
        let (path, prefix) = match pattern.strip_suffix("/*") {
            Some(stem) => (stem, true),
            None => (pattern, false),
        };
        if prefix && path.is_empty() {
            return Err("'/*' would exempt every route; list the routes that need it");
        }
        if !path.starts_with('/') {
            return Err("a path must start with '/'");
        }
        if path.contains('*') {
            return Err("'*' is allowed only as a trailing '/*'");
        }
        if !path.bytes().all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#') {
            return Err("a path has no query, fragment, space or non-ASCII character (percent-encode it)");
        }
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        // `/` alone is one empty segment; anywhere else an empty segment is `//`.
        if path != "/" && segments.iter().any(|s| s.is_empty()) {
            return Err("a path has no empty segment ('//') and no trailing '/'");
        }
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err("a path has no '.' or '..' segment");
        }
        if prefix {
            self.prefixes.push(format!("{path}/"));
        } else {
            self.exact.push(path.to_owned());
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Whether requests to `path` are exempt.
    pub(crate) fn matches(&self, path: &str) -> bool {
        self.exact.iter().any(|p| p == path) || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// The CSRF settings and secret of one layer.
#[derive(Clone)]
pub(crate) struct CsrfGuard {
    /// One per secret; the first signs, every one verifies.
    macs: Vec<Hmac<Sha256>>,
    /// Exact origins (`scheme://host[:port]`, lower case); empty = derive
    /// from the request's `Host`.
    allowed_origins: Vec<String>,
    allow_same_site: bool,
    allow_missing_origin: bool,
    /// Scheme of derived origins: `http` only in development mode.
    scheme: &'static str,
}

impl std::fmt::Debug for CsrfGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfGuard")
            .field("allowed_origins", &self.allowed_origins)
            .field("allow_same_site", &self.allow_same_site)
            .field("allow_missing_origin", &self.allow_missing_origin)
            .finish_non_exhaustive()
    }
}

impl CsrfGuard {
    /// `secrets` must not be empty (the builder makes one if none is given);
    /// if it is, tokens are signed with a key of zeros and nothing verifies
    /// differently, so this stays free of a panic.
    pub(crate) fn new(
        secrets: &[[u8; 32]],
        allowed_origins: Vec<String>,
        allow_same_site: bool,
        allow_missing_origin: bool,
        dev: bool,
    ) -> Self {
        // A 32-byte key is always a valid HMAC key; the fallback is unreachable
        // but keeps this free of `expect`.
        let mut macs: Vec<_> = secrets
            .iter()
            .map(|secret| {
                <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
                    .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()))
            })
            .collect();
        if macs.is_empty() {
            macs.push(<Hmac<Sha256> as KeyInit>::new(&Default::default()));
        }
        Self {
            macs,
            allowed_origins,
            allow_same_site,
            allow_missing_origin,
            scheme: if dev { "http" } else { "https" },
        }
    }

    fn mac_of(mac: &Hmac<Sha256>, session_token: &Token) -> [u8; 32] {
        let mut mac = mac.clone();
        mac.update(b"sessiond-csrf-v1\0");
        mac.update(session_token.hash().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The CSRF token for the session `session_token` names.
    pub(crate) fn token_for(&self, session_token: &Token) -> String {
        let signer = &self.macs[0];
        URL_SAFE_NO_PAD.encode(Self::mac_of(signer, session_token))
    }

    /// Whether `presented` is the CSRF token of `session_token`'s session.
    pub(crate) fn verify(&self, session_token: &Token, presented: &str) -> bool {
        match parse_csrf_token(presented) {
            // Every secret is tried, so the time taken does not say which
            // one matched.
            Some(bytes) => self.macs.iter().fold(false, |found, mac| {
                found | bool::from(bytes.ct_eq(&Self::mac_of(mac, session_token)))
            }),
            None => false,
        }
    }

    /// Step 1: the request comes from our own site.
    pub(crate) fn check_origin(&self, parts: &request::Parts) -> Result<(), HttpError> {
        let headers = &parts.headers;
        if let Some(site) = single(headers, "sec-fetch-site") {
            return match site {
                b"same-origin" | b"none" => Ok(()),
                b"same-site" if self.allow_same_site => Ok(()),
                _ => Err(HttpError::CrossSite),
            };
        }
        if headers.get_all("sec-fetch-site").iter().next().is_some() {
            // Several Sec-Fetch-Site headers: not something a browser sends.
            return Err(HttpError::CrossSite);
        }
        match single(headers, header::ORIGIN.as_str()) {
            Some(origin) => match std::str::from_utf8(origin) {
                Ok(origin) if self.origin_allowed(origin, parts) => Ok(()),
                _ => Err(HttpError::CrossSite),
            },
            None if headers.get_all(header::ORIGIN).iter().next().is_none() && self.allow_missing_origin => Ok(()),
            None => Err(HttpError::CrossSite),
        }
    }

    fn origin_allowed(&self, origin: &str, parts: &request::Parts) -> bool {
        if self.allowed_origins.is_empty() {
            let Some(host) = request_host(parts) else {
                return false;
            };
            origin
                .strip_prefix(self.scheme)
                .and_then(|rest| rest.strip_prefix("://"))
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        } else {
            self.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
        }
    }
}

/// The host (and port) the client addressed: `Host`, or the URI authority
/// in HTTP/2.
pub(crate) fn request_host(parts: &request::Parts) -> Option<&str> {
    match single(&parts.headers, header::HOST.as_str()) {
        Some(host) => std::str::from_utf8(host).ok(),
        None => parts.uri.authority().map(|a| a.as_str()),
    }
}

/// The value of a header that must appear exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Some(value.as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exemptions_match_exact_paths_and_whole_segment_prefixes() {
        let mut exempt = Exemptions::default();
        assert!(exempt.is_empty());
        exempt.add("/webhooks/*").unwrap();
        exempt.add("/saml/acs").unwrap();
        for yes in ["/webhooks/stripe", "/webhooks/a/b", "/webhooks/", "/saml/acs"] {
            assert!(exempt.matches(yes), "{yes}");
        }
        for no in [
            "/webhooks",
            "/webhooksX",
            "/webhooksX/a",
            "/saml/acs/",
            "/saml/acsX",
            "/Saml/acs",
            "/",
        ] {
            assert!(!exempt.matches(no), "{no}");
        }
    }

    #[test]
    fn malformed_exemptions_are_refused() {
        for bad in [
            "",
            "webhooks/*",
            "*",
            "/*",
            "/web*",
            "/a/*/b",
            "/a/**",
            "/a?b=1",
            "/a#b",
            "/a b",
            "/a//b",
            "/a/",
            "/a/../b",
            "/./a",
            "/caf\u{e9}",
        ] {
            assert!(Exemptions::default().add(bad).is_err(), "{bad:?}");
        }
        for good in ["/", "/a", "/a/*", "/a/b/*", "/a%20b", "/a-b_c.d~e"] {
            assert!(Exemptions::default().add(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn form_token_is_found_strictly() {
        assert_eq!(find_form_token(b"a=1&csrf_token=abc&b=2"), Some("abc"));
        assert_eq!(find_form_token(b"csrf_token=a&csrf_token=a"), None);
        assert_eq!(find_form_token(b"csrf%5Ftoken=abc"), None);
        assert_eq!(find_form_token(b""), None);
    }

    #[test]
    fn tokens_are_bound_to_the_session_and_the_secret() {
        let guard = CsrfGuard::new(&[[7; 32]], Vec::new(), false, false, false);
        let other_secret = CsrfGuard::new(&[[8; 32]], Vec::new(), false, false, false);
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        let token = guard.token_for(&a);
        assert_eq!(token.len(), CSRF_TOKEN_LEN);
        assert!(guard.verify(&a, &token));
        assert!(!guard.verify(&b, &token));
        assert!(!other_secret.verify(&a, &token));
        assert!(!guard.verify(&a, &token[1..]));
        assert!(!guard.verify(&a, ""));
    }

    #[test]
    fn the_first_secret_signs_and_every_secret_verifies() {
        let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
        let old = CsrfGuard::new(&[[7; 32]], Vec::new(), false, false, false);
        let rotated = CsrfGuard::new(&[[9; 32], [7; 32]], Vec::new(), false, false, false);
        let new = CsrfGuard::new(&[[9; 32]], Vec::new(), false, false, false);
        // A page signed before the rotation still posts after it.
        assert!(rotated.verify(&a, &old.token_for(&a)));
        // New pages are signed with the new secret only.
        assert_eq!(rotated.token_for(&a), new.token_for(&a));
        assert!(!old.verify(&a, &rotated.token_for(&a)));
        // Once the old secret is dropped, its tokens stop working.
        assert!(!new.verify(&a, &old.token_for(&a)));
        assert!(!rotated.verify(&b, &old.token_for(&a)));
    }
}
